"""Prorations on mid-period changes, always_invoice, none, proration_date, upcoming invoice."""

from __future__ import annotations

import pytest

from mocks.billing.errors import BillingError
from mocks.billing.periods import prorate, round_half_away
from tests.billing.test_models_support import DAY, HOUR, customer_with_card, make_state, monthly_price, ts

APRIL = ts(2026, 4, 1)  # April: a 30-day period


def _setup(state, amount=1000):
    customer, _ = customer_with_card(state)
    price = monthly_price(state, amount)
    sub = state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}]})
    return customer, sub


def _pending(state, customer):
    return sorted(i["amount"] for i in state.list_invoice_items(customer=customer["id"], pending=True))


def test_upgrade_halfway_prorates_minus_500_plus_1000_exactly():
    state, _ = make_state(start=APRIL)
    customer, sub = _setup(state)
    assert sub["current_period_end"] - sub["current_period_start"] == 30 * DAY
    pro = monthly_price(state, 2000, name="Pro Plus")
    state.advance_clock(APRIL + 15 * DAY)
    item = sub["items"]["data"][0]
    updated = state.update_subscription(sub["id"], {"items": [{"id": item["id"], "price": pro["id"]}]})
    assert updated["items"]["data"][0]["price"]["id"] == pro["id"]
    assert updated["current_period_end"] == ts(2026, 5, 1)
    items = state.list_invoice_items(customer=customer["id"], pending=True)
    assert sorted(i["amount"] for i in items) == [-500, 1000]
    assert all(i["proration"] and i["subscription"] == sub["id"] for i in items)
    assert all(i["period"] == {"start": APRIL + 15 * DAY, "end": ts(2026, 5, 1)} for i in items)
    upcoming = state.upcoming_invoice(customer["id"])
    assert upcoming["amount_due"] == 2500 and "id" not in upcoming
    state.advance_clock(ts(2026, 5, 1) + HOUR)
    renewal = state.get_invoice(state.get_subscription(sub["id"])["latest_invoice"])
    assert (renewal["total"], renewal["amount_paid"], renewal["status"]) == (2500, 2500, "paid")
    assert sorted(line["amount"] for line in renewal["lines"]["data"]) == [-500, 1000, 2000]
    assert _pending(state, customer) == []


def test_quantity_change_prorates():
    state, _ = make_state(start=APRIL)
    customer, sub = _setup(state)
    state.advance_clock(APRIL + 15 * DAY)
    state.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"], "quantity": 3}]})
    assert _pending(state, customer) == [-500, 1500]
    assert state.get_subscription(sub["id"])["items"]["data"][0]["quantity"] == 3


def test_always_invoice_bills_and_collects_prorations_now():
    state, _ = make_state(start=APRIL)
    customer, sub = _setup(state)
    pro = monthly_price(state, 2000, name="Pro Plus")
    state.advance_clock(APRIL + 15 * DAY)
    updated = state.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"],
                                                               "price": pro["id"]}],
                                                    "proration_behavior": "always_invoice"})
    invoice = state.get_invoice(updated["latest_invoice"])
    assert (invoice["billing_reason"], invoice["total"], invoice["status"], invoice["amount_paid"]) == (
        "subscription_update", 500, "paid", 500)
    assert _pending(state, customer) == []
    assert updated["current_period_end"] == ts(2026, 5, 1)


def test_proration_none_creates_nothing():
    state, _ = make_state(start=APRIL)
    customer, sub = _setup(state)
    pro = monthly_price(state, 2000, name="Pro Plus")
    state.advance_clock(APRIL + 15 * DAY)
    state.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"], "price": pro["id"]}],
                                          "proration_behavior": "none"})
    assert _pending(state, customer) == []


def test_proration_date_is_honoured_and_each_line_rounded():
    state, _ = make_state(start=APRIL)
    customer, sub = _setup(state)
    pro = monthly_price(state, 2000, name="Pro Plus")
    state.advance_clock(APRIL + 15 * DAY)
    state.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"], "price": pro["id"]}],
                                          "proration_date": APRIL + 10 * DAY})
    # 20 of 30 days left: -666.67 -> -667, +1333.33 -> +1333
    assert _pending(state, customer) == [-667, 1333]
    with pytest.raises(BillingError) as err:
        state.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"], "quantity": 2}],
                                              "proration_date": APRIL - DAY})
    assert err.value.param == "proration_date"


def test_rounding_helpers():
    assert prorate(1000, 0, 30, 15) == 500
    assert prorate(1000, 0, 31, 21) == 323  # 322.58
    assert prorate(1, 0, 2, 1) == 1  # half rounds away from zero
    assert round_half_away(-prorate(1, 0, 2, 1) * 1) == -1


def test_upcoming_invoice_previews_item_change_without_storing():
    state, _ = make_state(start=APRIL)
    customer, sub = _setup(state)
    pro = monthly_price(state, 2000, name="Pro Plus")
    state.advance_clock(APRIL + 15 * DAY)
    n_items = len(state.list_invoice_items())
    preview = state.upcoming_invoice(customer["id"], subscription=sub["id"], subscription_items=[
        {"id": sub["items"]["data"][0]["id"], "price": pro["id"]}])
    assert sorted(line["amount"] for line in preview["lines"]["data"]) == [-500, 1000, 2000]
    assert preview["subscription_proration_date"] == APRIL + 15 * DAY
    assert preview["amount_due"] == 2500
    assert len(state.list_invoice_items()) == n_items
    assert state.get_subscription(sub["id"])["items"]["data"][0]["price"]["id"] != pro["id"]
    other = state.create_customer({})
    with pytest.raises(BillingError) as err:
        state.upcoming_invoice(other["id"])
    assert err.value.status == 404 and err.value.code == "invoice_upcoming_none"


def test_downgrade_credit_is_applied_to_the_next_invoice():
    state, _ = make_state(start=APRIL)
    customer, sub = _setup(state, 2000)
    basic = monthly_price(state, 1000, name="Basic")
    state.advance_clock(APRIL + 15 * DAY)
    updated = state.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"],
                                                               "price": basic["id"]}],
                                                    "proration_behavior": "always_invoice"})
    credit = state.get_invoice(updated["latest_invoice"])
    assert (credit["total"], credit["amount_due"], credit["status"]) == (-500, 0, "paid")
    assert state.get_customer(customer["id"])["balance"] == -500
    state.advance_clock(ts(2026, 5, 1) + HOUR)
    renewal = state.get_invoice(state.get_subscription(sub["id"])["latest_invoice"])
    assert (renewal["starting_balance"], renewal["amount_due"], renewal["amount_paid"]) == (-500, 500, 500)
    assert state.get_customer(customer["id"])["balance"] == 0


def test_interval_change_resets_the_billing_cycle():
    state, _ = make_state(start=APRIL)
    _, sub = _setup(state)
    yearly = monthly_price(state, 10000, name="Pro yearly", interval="year")
    state.advance_clock(APRIL + 15 * DAY)
    updated = state.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"],
                                                               "price": yearly["id"]}]})
    assert (updated["current_period_start"], updated["current_period_end"]) == (APRIL + 15 * DAY,
                                                                               ts(2027, 4, 16))
    invoice = state.get_invoice(updated["latest_invoice"])
    assert (invoice["total"], invoice["status"]) == (10000 - 500, "paid")


def test_trialing_subscription_changes_do_not_prorate():
    state, _ = make_state(start=APRIL)
    customer, _ = customer_with_card(state)
    price = monthly_price(state)
    sub = state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}],
                                     "trial_period_days": 10})
    state.advance_clock(APRIL + 5 * DAY)
    state.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"], "quantity": 2}]})
    assert _pending(state, customer) == []
