"""Test clocks, determinism, dump/load."""

from __future__ import annotations

import json
import random

import pytest

from mocks.billing.errors import BillingError
from mocks.billing.models import BillingState
from mocks.kernel.clock import SandboxClock
from tests.billing.test_models_support import DAY, HOUR, make_state, monthly_price, ts


def _clock_customer(state, clock_id):
    customer = state.create_customer({"email": "clock@example.com", "test_clock": clock_id})
    pm = state.attach_payment_method("pm_card_visa", customer["id"])
    state.update_customer(customer["id"], {"invoice_settings": {"default_payment_method": pm["id"]}})
    return customer


def test_test_clock_objects_take_its_time_and_only_its_jobs_run():
    state, published = make_state(start=ts(2026, 1, 1))
    clock = state.create_test_clock(ts(2025, 6, 1), name="june")
    assert (clock["status"], clock["frozen_time"], clock["object"]) == ("ready", ts(2025, 6, 1),
                                                                        "test_helpers.test_clock")
    price = monthly_price(state)
    on_clock = _clock_customer(state, clock["id"])
    assert on_clock["created"] == ts(2025, 6, 1) and on_clock["test_clock"] == clock["id"]
    sub_c = state.create_subscription({"customer": on_clock["id"], "items": [{"price": price["id"]}]})
    assert (sub_c["created"], sub_c["current_period_end"], sub_c["test_clock"]) == (
        ts(2025, 6, 1), ts(2025, 7, 1), clock["id"])
    assert state.get_invoice(sub_c["latest_invoice"])["test_clock"] == clock["id"]
    plain = _clock_customer(state, None)
    sub_t = state.create_subscription({"customer": plain["id"], "items": [{"price": price["id"]}]})
    assert sub_t["current_period_end"] == ts(2026, 2, 1)

    # the tenant clock moving does not touch the test clock's subscription (whose period ended long ago)
    state.advance_clock(ts(2026, 2, 1) + HOUR)
    assert len(state.list_invoices(subscription=sub_t["id"])) == 2
    assert len(state.list_invoices(subscription=sub_c["id"])) == 1
    assert state.get_subscription(sub_c["id"])["current_period_end"] == ts(2025, 7, 1)

    advancing = state.advance_test_clock(clock["id"], ts(2025, 8, 1) + 2 * HOUR)
    assert advancing["status"] == "advancing" and state.get_test_clock(clock["id"])["status"] == "advancing"
    assert state.get_test_clock(clock["id"])["frozen_time"] == ts(2025, 6, 1)
    with pytest.raises(BillingError) as err:
        state.delete_test_clock(clock["id"])
    assert err.value.status == 429 and "advancement underway" in err.value.message
    before_tenant = len(state.list_invoices(subscription=sub_t["id"]))
    n = len(published)
    ready = state.complete_test_clock_advance(clock["id"])
    assert (ready["status"], ready["frozen_time"]) == ("ready", ts(2025, 8, 1) + 2 * HOUR)
    invoices = state.list_invoices(subscription=sub_c["id"])
    assert [i["status"] for i in invoices] == ["paid", "paid", "paid"]
    assert invoices[0]["created"] == ts(2025, 8, 1)
    assert len(state.list_invoices(subscription=sub_t["id"])) == before_tenant
    kinds = [e["type"] for e in published[n:]]
    assert kinds[-1] == "test_helpers.test_clock.ready"
    assert all(e["created"] == state.clock.now_int() for e in published[n:])  # events use tenant time
    assert state.list_customers(test_clock=clock["id"])[0]["id"] == on_clock["id"]


def test_advance_must_move_forward_and_delete_removes_its_customers():
    state, _ = make_state()
    clock = state.create_test_clock(ts(2025, 6, 1))
    customer = _clock_customer(state, clock["id"])
    price = monthly_price(state)
    sub = state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}]})
    with pytest.raises(BillingError) as err:
        state.advance_test_clock(clock["id"], ts(2025, 5, 1))
    assert err.value.param == "frozen_time"
    assert state.delete_test_clock(clock["id"]) == {"id": clock["id"], "object": "test_helpers.test_clock",
                                                    "deleted": True}
    assert state.get_customer(customer["id"]) == {"id": customer["id"], "object": "customer", "deleted": True}
    assert state.get_subscription(sub["id"])["status"] == "canceled"
    with pytest.raises(BillingError) as err:
        state.get_test_clock(clock["id"])
    assert err.value.status == 404
    with pytest.raises(BillingError):
        state.create_customer({"test_clock": clock["id"]})


def _scenario(state: BillingState) -> None:
    price = monthly_price(state)
    pro = monthly_price(state, 2000, name="Pro Plus")
    good = state.create_customer({"email": "g@example.com"})
    pm = state.attach_payment_method("pm_card_visa", good["id"])
    state.create_subscription({"customer": good["id"], "items": [{"price": price["id"]}],
                               "default_payment_method": pm["id"]})
    bad = state.create_customer({"email": "b@example.com"})
    bpm = state.attach_payment_method("pm_card_visa", bad["id"])
    sub = state.create_subscription({"customer": bad["id"], "items": [{"price": price["id"]}],
                                     "default_payment_method": bpm["id"]})
    failing = state.attach_payment_method("pm_card_chargeCustomerFail", bad["id"])
    state.update_subscription(sub["id"], {"default_payment_method": failing["id"]})
    clock = state.create_test_clock(state.clock.now_int())
    tc_customer = state.create_customer({"test_clock": clock["id"]})
    tpm = state.attach_payment_method("pm_card_mastercard", tc_customer["id"])
    tsub = state.create_subscription({"customer": tc_customer["id"], "items": [{"price": price["id"]}],
                                      "default_payment_method": tpm["id"]})
    state.advance_clock(state.clock.now() + 10 * DAY)
    state.update_subscription(tsub["id"], {"items": [{"id": tsub["items"]["data"][0]["id"], "price": pro["id"]}]})


def _continue(state: BillingState) -> None:
    state.advance_clock(state.clock.now() + 40 * DAY)
    clock = state.list_test_clocks()[0]
    state.advance_test_clock(clock["id"], clock["frozen_time"] + 45 * DAY)
    state.complete_test_clock_advance(clock["id"])


def test_same_seed_same_operations_same_dump():
    a, _ = make_state(seed=42)
    b, _ = make_state(seed=42)
    c, _ = make_state(seed=43)
    for state in (a, b, c):
        _scenario(state)
        _continue(state)
    assert json.dumps(a.dump(), sort_keys=True) == json.dumps(b.dump(), sort_keys=True)
    assert a.dump() != c.dump()
    assert a.list_subscriptions(status="all")[0]["id"] != c.list_subscriptions(status="all")[0]["id"]


def test_dump_load_roundtrip_then_continue_matches_uninterrupted_run():
    straight, _ = make_state(seed=5)
    _scenario(straight)
    snapshot = json.loads(json.dumps(straight.dump()))  # JSON-able
    restored = BillingState(clock=SandboxClock(0), rng=random.Random(999))
    restored.load(snapshot)
    assert restored.dump() == snapshot
    _continue(straight)
    _continue(restored)
    assert restored.dump() == straight.dump()
    assert any(e["type"] == "invoice.payment_failed" for e in restored.list_events())
