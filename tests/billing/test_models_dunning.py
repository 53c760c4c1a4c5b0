"""Dunning: past_due, retries on schedule, terminal action, recovery, hard declines."""

from __future__ import annotations

from tests.billing.test_models_support import DAY, HOUR, customer_with_card, make_state, monthly_price, types


def _failing_renewal(state, token="pm_card_visa"):
    """A subscription paid at creation whose card then starts failing every charge."""
    customer, pm = customer_with_card(state, token)
    price = monthly_price(state)
    sub = state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}],
                                     "default_payment_method": pm["id"]})
    bad = state.attach_payment_method("pm_card_chargeCustomerFail", customer["id"])
    state.update_subscription(sub["id"], {"default_payment_method": bad["id"]})
    return sub, bad


def test_failed_renewal_goes_past_due_retries_on_schedule_then_cancels():
    state, _ = make_state()
    sub, _ = _failing_renewal(state)
    t0 = sub["current_period_end"] + HOUR
    state.advance_clock(t0)
    invoice = state.get_invoice(state.get_subscription(sub["id"])["latest_invoice"])
    assert (invoice["status"], invoice["attempt_count"], invoice["next_payment_attempt"]) == ("open", 1, t0 + 3 * DAY)
    assert state.get_subscription(sub["id"])["status"] == "past_due"
    assert state.get_customer(sub["customer"])["delinquent"] is True
    attempts = {1: t0}
    for n, at in [(2, t0 + 3 * DAY), (3, t0 + 8 * DAY), (4, t0 + 15 * DAY)]:
        state.advance_clock(at - 1)
        assert state.get_invoice(invoice["id"])["attempt_count"] == n - 1
        state.advance_clock(at)
        assert state.get_invoice(invoice["id"])["attempt_count"] == n
        attempts[n] = at
    final = state.get_invoice(invoice["id"])
    assert (final["status"], final["next_payment_attempt"]) == ("open", None)
    ended = state.get_subscription(sub["id"])
    assert (ended["status"], ended["ended_at"]) == ("canceled", t0 + 15 * DAY)
    assert ended["cancellation_details"]["reason"] == "payment_failed"
    assert types(state).count("invoice.payment_failed") == 4
    assert len(state.list_charges(customer=sub["customer"])) == 5  # 1 ok at creation + 4 failed
    state.advance_clock(t0 + 60 * DAY)
    assert state.get_invoice(invoice["id"])["attempt_count"] == 4


def test_custom_schedule_and_mark_unpaid_keeps_renewing_as_drafts():
    state, _ = make_state(retry_schedule_days=[1, 2], after_retries="mark_unpaid")
    sub, _ = _failing_renewal(state)
    t0 = sub["current_period_end"] + HOUR
    state.advance_clock(t0 + 3 * DAY)
    unpaid = state.get_subscription(sub["id"])
    assert unpaid["status"] == "unpaid"
    invoice = state.get_invoice(unpaid["latest_invoice"])
    assert (invoice["attempt_count"], invoice["status"]) == (3, "open")
    state.advance_clock(unpaid["current_period_end"] + 2 * HOUR)
    later = state.get_subscription(sub["id"])
    assert later["status"] == "unpaid" and later["latest_invoice"] != invoice["id"]
    draft = state.get_invoice(later["latest_invoice"])
    assert (draft["status"], draft["auto_advance"]) == ("draft", False)


def test_recovery_mid_dunning_after_customer_updates_card():
    state, _ = make_state()
    customer, _ = customer_with_card(state, "pm_card_chargeCustomerFail")
    # the first invoice is paid once with a working card override, then the default card fails
    visa0 = state.attach_payment_method("pm_card_visa", customer["id"])
    price = monthly_price(state)
    sub = state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}],
                                     "default_payment_method": visa0["id"]})
    state.update_subscription(sub["id"], {"default_payment_method": ""})
    state.detach_payment_method(visa0["id"])
    t0 = sub["current_period_end"] + HOUR
    state.advance_clock(t0)
    assert state.get_subscription(sub["id"])["status"] == "past_due"
    visa = state.attach_payment_method("pm_card_visa", customer["id"])
    state.update_customer(customer["id"], {"invoice_settings": {"default_payment_method": visa["id"]}})
    state.advance_clock(t0 + 3 * DAY)
    sub_now = state.get_subscription(sub["id"])
    invoice = state.get_invoice(sub_now["latest_invoice"])
    assert (invoice["status"], invoice["attempt_count"], invoice["next_payment_attempt"]) == ("paid", 2, None)
    assert sub_now["status"] == "active"
    assert state.get_customer(customer["id"])["delinquent"] is False
    previous = [e["data"]["previous_attributes"] for e in state.list_events(type="customer.subscription.updated")]
    assert {"status": "past_due"} in previous
    state.advance_clock(t0 + 20 * DAY)  # no leftover retry job cancels or re-charges anything
    assert state.get_subscription(sub["id"])["status"] == "active"
    assert state.get_invoice(invoice["id"])["attempt_count"] == 2


def test_manual_pay_during_dunning_heals_subscription():
    state, _ = make_state()
    sub, _ = _failing_renewal(state)
    state.advance_clock(sub["current_period_end"] + HOUR)
    invoice_id = state.get_subscription(sub["id"])["latest_invoice"]
    visa = state.attach_payment_method("pm_card_visa", sub["customer"])
    assert state.pay_invoice(invoice_id, {"payment_method": visa["id"]})["status"] == "paid"
    assert state.get_subscription(sub["id"])["status"] == "active"
    state.advance_clock(sub["current_period_end"] + 20 * DAY)
    assert state.get_subscription(sub["id"])["status"] == "active"


def test_hard_decline_is_not_retried_and_ends_when_the_window_closes():
    state, _ = make_state()
    customer, pm = customer_with_card(state)
    price = monthly_price(state)
    sub = state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}]})
    state.expire_card(pm["id"])
    t0 = sub["current_period_end"] + HOUR
    state.advance_clock(t0)
    invoice = state.get_invoice(state.get_subscription(sub["id"])["latest_invoice"])
    assert (invoice["attempt_count"], invoice["next_payment_attempt"]) == (1, None)
    charge = state.get_charge(invoice["charge"])
    assert (charge["status"], charge["failure_code"]) == ("failed", "expired_card")
    assert state.get_subscription(sub["id"])["status"] == "past_due"
    state.advance_clock(t0 + 15 * DAY - 1)
    assert state.get_invoice(invoice["id"])["attempt_count"] == 1
    assert state.get_subscription(sub["id"])["status"] == "past_due"
    state.advance_clock(t0 + 15 * DAY)
    assert state.get_subscription(sub["id"])["status"] == "canceled"
    assert state.get_invoice(invoice["id"])["attempt_count"] == 1


def test_fail_next_charge_soft_declines_once():
    state, _ = make_state()
    customer, _ = customer_with_card(state)
    price = monthly_price(state)
    sub = state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}]})
    state.fail_next_charge(customer["id"], "insufficient_funds")
    t0 = sub["current_period_end"] + HOUR
    state.advance_clock(t0)
    invoice = state.get_invoice(state.get_subscription(sub["id"])["latest_invoice"])
    pi = state.get_payment_intent(invoice["payment_intent"])
    assert pi["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert invoice["next_payment_attempt"] == t0 + 3 * DAY
    state.advance_clock(t0 + 3 * DAY)
    assert state.get_invoice(invoice["id"])["status"] == "paid"
    assert state.get_subscription(sub["id"])["status"] == "active"


def test_voiding_the_failed_invoice_stops_dunning():
    state, _ = make_state()
    sub, _ = _failing_renewal(state)
    t0 = sub["current_period_end"] + HOUR
    state.advance_clock(t0)
    invoice_id = state.get_subscription(sub["id"])["latest_invoice"]
    voided = state.void_invoice(invoice_id)
    assert voided["status"] == "void" and voided["status_transitions"]["voided_at"] == t0
    assert state.get_subscription(sub["id"])["status"] == "active"
    state.advance_clock(t0 + 4 * DAY)
    assert state.get_invoice(invoice_id)["attempt_count"] == 1
