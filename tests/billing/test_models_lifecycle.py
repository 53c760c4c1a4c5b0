"""Subscription lifecycle: creation, renewals, calendar periods, trials, incomplete, cancel."""

from __future__ import annotations

import itertools
import re

import pytest

from mocks.billing.errors import BillingError
from mocks.billing.periods import add_interval, period_end_after
from tests.billing.test_models_support import (
    DAY,
    HOUR,
    customer_with_card,
    make_state,
    monthly_price,
    subscribe,
    ts,
    types,
)


def test_ids_carry_stripe_prefixes_and_14_base62_chars():
    state, _ = make_state()
    sub = subscribe(state)
    invoice = state.get_invoice(sub["latest_invoice"])
    for value, prefix in [(sub["id"], "sub"), (sub["customer"], "cus"), (sub["items"]["data"][0]["id"], "si"),
                          (invoice["id"], "in"), (invoice["lines"]["data"][0]["id"], "il"),
                          (invoice["payment_intent"], "pi"), (invoice["charge"], "ch"),
                          (state.list_events()[0]["id"], "evt")]:
        assert re.fullmatch(prefix + r"_[0-9A-Za-z]{14}", value), value
    assert sub["livemode"] is False and sub["metadata"] == {}


def test_visa_subscription_renews_three_times_with_calendar_periods():
    state, _ = make_state(start=ts(2026, 1, 1))
    sub = subscribe(state)
    assert sub["status"] == "active"
    first = state.get_invoice(sub["latest_invoice"])
    assert (first["billing_reason"], first["status"], first["amount_paid"], first["paid"]) == (
        "subscription_create", "paid", 1000, True)
    assert state.get_payment_intent(first["payment_intent"])["status"] == "succeeded"
    boundaries = [ts(2026, 2, 1), ts(2026, 3, 1), ts(2026, 4, 1), ts(2026, 5, 1)]
    for start, end in itertools.pairwise(boundaries):
        state.advance_clock(start + 30 * 60)  # renewal draft exists, not yet finalized
        current = state.get_subscription(sub["id"])
        assert (current["current_period_start"], current["current_period_end"]) == (start, end)
        assert current["items"]["data"][0]["current_period_start"] == start
        assert current["items"]["data"][0]["current_period_end"] == end
        draft = state.get_invoice(current["latest_invoice"])
        assert (draft["status"], draft["billing_reason"]) == ("draft", "subscription_cycle")
        assert draft["lines"]["data"][0]["period"] == {"start": start, "end": end}
        state.advance_clock(start + HOUR)
        paid = state.get_invoice(current["latest_invoice"])
        assert (paid["status"], paid["amount_paid"], paid["attempt_count"]) == ("paid", 1000, 1)
        assert paid["status_transitions"]["finalized_at"] == start + HOUR
        assert paid["status_transitions"]["paid_at"] == start + HOUR
    invoices = state.list_invoices(subscription=sub["id"])
    assert [i["status"] for i in invoices] == ["paid"] * 4
    assert len({i["number"] for i in invoices}) == 4
    assert state.get_subscription(sub["id"])["status"] == "active"


def test_renewal_events_come_in_causal_order():
    state, published = make_state()
    sub = subscribe(state)
    before = len(published)
    state.advance_clock(sub["current_period_end"] + HOUR)
    assert [e["type"] for e in published[before:]] == [
        "customer.subscription.updated", "invoice.created", "payment_intent.created", "invoice.finalized",
        "charge.succeeded", "payment_intent.succeeded", "invoice.paid", "invoice.payment_succeeded",
    ]
    updated = published[before]
    assert updated["data"]["previous_attributes"] == {"current_period_start": sub["current_period_start"],
                                                      "current_period_end": sub["current_period_end"]}
    assert updated["created"] == sub["current_period_end"]
    assert published == list(reversed(state.list_events()))


def test_month_end_anchor_clamps_like_stripe():
    jan31 = ts(2026, 1, 31, 12)
    assert add_interval(jan31, "month", 1, 1) == ts(2026, 2, 28, 12)
    assert add_interval(jan31, "month", 1, 2) == ts(2026, 3, 31, 12)
    assert add_interval(ts(2028, 1, 31), "month", 1, 1) == ts(2028, 2, 29)
    assert add_interval(ts(2028, 2, 29), "year", 1, 1) == ts(2029, 2, 28)
    assert period_end_after(jan31, "month", 1, ts(2026, 2, 28, 12)) == ts(2026, 3, 31, 12)
    state, _ = make_state(start=jan31)
    sub = subscribe(state)
    assert sub["current_period_end"] == ts(2026, 2, 28, 12)
    state.advance_clock(ts(2026, 3, 1))
    assert state.get_subscription(sub["id"])["current_period_end"] == ts(2026, 3, 31, 12)


def test_yearly_price_renews_a_year_later():
    state, _ = make_state(start=ts(2026, 3, 15))
    customer, _ = customer_with_card(state)
    price = monthly_price(state, 12000, interval="year")
    sub = state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}]})
    assert sub["current_period_end"] == ts(2027, 3, 15)
    state.advance_clock(ts(2027, 3, 15) + HOUR)
    assert state.get_subscription(sub["id"])["current_period_end"] == ts(2028, 3, 15)
    assert state.list_invoices(subscription=sub["id"])[0]["amount_paid"] == 12000


def test_trial_starts_trialing_with_zero_invoice_then_bills_at_trial_end():
    state, _ = make_state()
    now = state.clock.now_int()
    sub = subscribe(state, trial_period_days=14)
    assert sub["status"] == "trialing"
    assert (sub["trial_start"], sub["trial_end"], sub["current_period_end"]) == (now, now + 14 * DAY, now + 14 * DAY)
    zero = state.get_invoice(sub["latest_invoice"])
    assert (zero["amount_due"], zero["status"], zero["payment_intent"]) == (0, "paid", None)
    state.advance_clock(now + 11 * DAY - 1)
    assert "customer.subscription.trial_will_end" not in types(state)
    state.advance_clock(now + 11 * DAY)
    assert "customer.subscription.trial_will_end" in types(state)
    state.advance_clock(now + 14 * DAY + HOUR)
    current = state.get_subscription(sub["id"])
    assert current["status"] == "active"
    assert current["current_period_start"] == now + 14 * DAY
    invoice = state.get_invoice(current["latest_invoice"])
    assert (invoice["billing_reason"], invoice["status"], invoice["amount_paid"]) == (
        "subscription_cycle", "paid", 1000)


def test_failing_card_leaves_subscription_incomplete_then_expired_after_23h():
    state, _ = make_state(start=ts(2026, 1, 1))
    sub = subscribe(state, "pm_card_chargeCustomerFail")
    assert sub["status"] == "incomplete"
    invoice = state.get_invoice(sub["latest_invoice"])
    assert (invoice["status"], invoice["attempt_count"], invoice["next_payment_attempt"]) == ("open", 1, None)
    pi = state.get_payment_intent(invoice["payment_intent"])
    assert pi["status"] == "requires_payment_method"
    assert pi["last_payment_error"]["decline_code"] == "generic_decline"
    state.advance_clock(ts(2026, 1, 1) + 23 * HOUR - 1)
    assert state.get_subscription(sub["id"])["status"] == "incomplete"
    state.advance_clock(ts(2026, 1, 1) + 23 * HOUR)
    expired = state.get_subscription(sub["id"])
    assert (expired["status"], expired["ended_at"]) == ("incomplete_expired", ts(2026, 1, 1) + 23 * HOUR)
    assert state.get_invoice(invoice["id"])["status"] == "void"
    assert state.list_subscriptions(customer=sub["customer"]) == []
    assert len(state.list_subscriptions(customer=sub["customer"], status="all")) == 1
    state.advance_clock(ts(2026, 3, 1))
    assert len(state.list_invoices(subscription=sub["id"])) == 1  # never renewed


def test_incomplete_becomes_active_when_first_invoice_is_paid_with_a_new_card():
    state, _ = make_state()
    sub = subscribe(state, "pm_card_chargeCustomerFail")
    visa = state.attach_payment_method("pm_card_visa", sub["customer"])
    paid = state.pay_invoice(sub["latest_invoice"], {"payment_method": visa["id"]})
    assert paid["status"] == "paid" and paid["attempt_count"] == 2
    assert state.get_subscription(sub["id"])["status"] == "active"
    state.advance_clock(state.clock.now() + DAY)
    assert state.get_subscription(sub["id"])["status"] == "active"


def test_three_d_secure_card_requires_action_until_confirmed():
    state, _ = make_state()
    sub = subscribe(state, "pm_card_threeDSecure2Required")
    assert sub["status"] == "incomplete"
    invoice = state.get_invoice(sub["latest_invoice"])
    pi = state.get_payment_intent(invoice["payment_intent"])
    assert pi["status"] == "requires_action" and pi["next_action"]["type"] == "use_stripe_sdk"
    assert "payment_intent.requires_action" in types(state)
    confirmed = state.confirm_payment_intent(pi["id"])
    assert confirmed["status"] == "succeeded"
    assert state.get_subscription(sub["id"])["status"] == "active"
    state.advance_clock(sub["current_period_end"] + HOUR)  # later off-session renewals go through
    assert state.list_invoices(subscription=sub["id"])[0]["status"] == "paid"


def test_error_if_incomplete_raises_card_error_and_creates_nothing():
    state, _ = make_state()
    customer, _ = customer_with_card(state, "pm_card_chargeCustomerFail")
    price = monthly_price(state)
    with pytest.raises(BillingError) as err:
        state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}],
                                   "payment_behavior": "error_if_incomplete"})
    assert (err.value.status, err.value.type, err.value.code, err.value.decline_code) == (
        402, "card_error", "card_declined", "generic_decline")
    assert state.list_subscriptions(status="all") == [] and state.list_invoices() == []


def test_default_incomplete_waits_for_confirmation():
    state, _ = make_state()
    sub = subscribe(state, payment_behavior="default_incomplete")
    assert sub["status"] == "incomplete"
    invoice = state.get_invoice(sub["latest_invoice"])
    assert invoice["attempt_count"] == 0
    pi = state.get_payment_intent(invoice["payment_intent"])
    assert pi["status"] == "requires_confirmation"
    state.confirm_payment_intent(pi["id"])
    assert state.get_subscription(sub["id"])["status"] == "active"


def test_cancel_now_with_proration_and_final_invoice():
    state, _ = make_state(start=ts(2026, 4, 1))
    sub = subscribe(state)
    state.advance_clock(ts(2026, 4, 16))
    canceled = state.cancel_subscription(sub["id"], {"invoice_now": True, "prorate": True})
    assert (canceled["status"], canceled["canceled_at"], canceled["ended_at"]) == (
        "canceled", ts(2026, 4, 16), ts(2026, 4, 16))
    final = state.get_invoice(canceled["latest_invoice"])
    assert final["total"] == -500 and final["amount_due"] == 0 and final["status"] == "paid"
    assert state.get_customer(sub["customer"])["balance"] == -500
    assert "customer.subscription.deleted" in types(state)
    state.advance_clock(ts(2026, 6, 1))
    assert len(state.list_invoices(subscription=sub["id"])) == 2
    with pytest.raises(BillingError):
        state.cancel_subscription(sub["id"])


def test_cancel_at_period_end_ends_at_the_boundary_without_new_invoice():
    state, _ = make_state()
    sub = subscribe(state)
    updated = state.update_subscription(sub["id"], {"cancel_at_period_end": True})
    assert updated["cancel_at"] == sub["current_period_end"] and updated["status"] == "active"
    state.advance_clock(sub["current_period_end"] - 1)
    assert state.get_subscription(sub["id"])["status"] == "active"
    state.advance_clock(sub["current_period_end"] + 2 * HOUR)
    ended = state.get_subscription(sub["id"])
    assert (ended["status"], ended["ended_at"]) == ("canceled", sub["current_period_end"])
    assert len(state.list_invoices(subscription=sub["id"])) == 1
