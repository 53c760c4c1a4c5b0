"""Customers, catalog, payment methods, one-off invoices, events."""

from __future__ import annotations

import pytest

from mocks.billing.errors import BillingError
from tests.billing.test_models_support import HOUR, customer_with_card, make_state, monthly_price


@pytest.mark.parametrize(("token", "code", "decline_code"), [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
])
def test_declining_tokens_fail_at_attach_with_402(token, code, decline_code):
    state, _ = make_state()
    customer = state.create_customer({})
    with pytest.raises(BillingError) as err:
        state.attach_payment_method(token, customer["id"])
    assert (err.value.status, err.value.type, err.value.code, err.value.decline_code) == (
        402, "card_error", code, decline_code)
    assert state.list_payment_methods(customer["id"]) == []


def test_attach_creates_a_card_and_validates_customer():
    state, published = make_state()
    customer = state.create_customer({})
    pm = state.attach_payment_method("pm_card_mastercard", customer["id"])
    assert pm["id"].startswith("pm_") and pm["id"] != "pm_card_mastercard"
    assert (pm["card"]["brand"], pm["card"]["last4"], pm["customer"], pm["type"]) == (
        "mastercard", "4444", customer["id"], "card")
    assert published[-1]["type"] == "payment_method.attached"
    assert [p["id"] for p in state.list_payment_methods(customer["id"])] == [pm["id"]]
    with pytest.raises(BillingError) as err:
        state.attach_payment_method("pm_card_visa", "cus_missing")
    assert (err.value.status, err.value.code, err.value.param) == (404, "resource_missing", "customer")
    detached = state.detach_payment_method(pm["id"])
    assert detached["customer"] is None
    with pytest.raises(BillingError):
        state.attach_payment_method(pm["id"], customer["id"])


def test_customer_crud_and_events_with_previous_attributes():
    state, published = make_state()
    customer = state.create_customer({"email": "a@example.com", "metadata": {"crm": "1"}})
    assert (customer["object"], customer["balance"], customer["metadata"]) == ("customer", 0, {"crm": "1"})
    assert customer["created"] == state.clock.now_int()
    state.update_customer(customer["id"], {"email": "b@example.com", "metadata": {"crm": ""}})
    event = published[-1]
    assert event["type"] == "customer.updated"
    assert event["data"]["previous_attributes"] == {"email": "a@example.com", "metadata": {"crm": "1"}}
    assert event["data"]["object"]["email"] == "b@example.com"
    assert event["api_version"] is None and event["livemode"] is False and event["pending_webhooks"] == 0
    assert state.get_event(event["id"]) == event
    assert state.list_customers(email="b@example.com")[0]["id"] == customer["id"]
    assert state.delete_customer(customer["id"]) == {"id": customer["id"], "object": "customer", "deleted": True}
    assert state.get_customer(customer["id"])["deleted"] is True
    assert state.list_customers() == []
    with pytest.raises(BillingError) as err:
        state.update_customer(customer["id"], {"name": "x"})
    assert err.value.status == 404
    with pytest.raises(BillingError) as err:
        state.get_customer("cus_nope")
    assert (err.value.status, err.value.param) == (404, "id")


def test_events_filtering_and_ordering():
    state, _ = make_state()
    customer_with_card(state)
    t1 = state.clock.now_int() + 10
    state.advance_clock(t1)
    state.create_customer({"email": "late@example.com"})
    assert [e["type"] for e in state.list_events(created_gte=t1)] == ["customer.created"]
    assert {e["type"] for e in state.list_events(type="customer.*")} == {"customer.created", "customer.updated"}
    assert len(state.list_events(types=["payment_method.attached", "customer.updated"])) == 2
    created = [e["created"] for e in state.list_events()]
    assert created == sorted(created, reverse=True)


def test_catalog_rules():
    state, _ = make_state()
    price = monthly_price(state, 1500)
    assert (price["type"], price["recurring"]["interval"], price["unit_amount"]) == ("recurring", "month", 1500)
    product = state.get_product(price["product"])
    assert product["name"] == "Pro" and product["active"] is True
    assert [p["id"] for p in state.list_prices(product=product["id"])] == [price["id"]]
    with pytest.raises(BillingError) as err:
        state.create_price({"currency": "usd", "product": product["id"]})
    assert err.value.param == "unit_amount"
    with pytest.raises(BillingError) as err:
        state.create_price({"unit_amount": 5, "currency": "usd", "product": "prod_missing"})
    assert (err.value.status, err.value.param) == (404, "product")
    one_time = state.create_price({"unit_amount": 5, "currency": "usd", "product": product["id"]})
    customer = state.create_customer({})
    with pytest.raises(BillingError) as err:
        state.create_subscription({"customer": customer["id"], "items": [{"price": one_time["id"]}]})
    assert err.value.param == "items[0][price]"
    state.update_price(price["id"], {"active": False})
    assert state.list_prices(active=True) == [state.get_price(one_time["id"])]
    state.update_product(product["id"], {"name": "Pro 2"})
    assert state.get_product(product["id"])["name"] == "Pro 2"
    with pytest.raises(BillingError) as err:
        state.create_subscription({"customer": "cus_missing", "items": [{"price": price["id"]}]})
    assert (err.value.status, err.value.param) == (404, "customer")


def test_one_off_invoice_auto_advances_and_can_be_voided_or_marked_uncollectible():
    state, _ = make_state()
    customer, _ = customer_with_card(state)
    state.create_invoice_item({"customer": customer["id"], "amount": 700, "currency": "usd"})
    invoice = state.create_invoice({"customer": customer["id"], "pending_invoice_items_behavior": "include"})
    assert (invoice["status"], invoice["total"], invoice["amount_due"]) == ("draft", 700, 700)
    assert state.list_invoice_items(invoice=invoice["id"])[0]["invoice"] == invoice["id"]
    state.advance_clock(state.clock.now() + HOUR)
    paid = state.get_invoice(invoice["id"])
    assert (paid["status"], paid["amount_paid"], paid["number"].endswith("-0001")) == ("paid", 700, True)
    with pytest.raises(BillingError):
        state.pay_invoice(invoice["id"])
    second = state.create_invoice({"customer": customer["id"], "auto_advance": False})
    state.create_invoice_item({"customer": customer["id"], "amount": 300, "currency": "usd",
                               "invoice": second["id"]})
    opened = state.finalize_invoice(second["id"])
    assert (opened["status"], opened["amount_due"]) == ("open", 300)
    with pytest.raises(BillingError):
        state.finalize_invoice(second["id"])
    assert state.mark_uncollectible(second["id"])["status"] == "uncollectible"
    assert state.void_invoice(second["id"])["status"] == "void"
    assert state.list_invoices(customer=customer["id"], status="void")[0]["id"] == second["id"]


def test_pay_invoice_failure_raises_card_error_and_records_attempt():
    state, published = make_state()
    customer, _ = customer_with_card(state, "pm_card_chargeCustomerFail")
    state.create_invoice_item({"customer": customer["id"], "amount": 700, "currency": "usd"})
    invoice = state.create_invoice({"customer": customer["id"], "pending_invoice_items_behavior": "include",
                                    "auto_advance": False})
    with pytest.raises(BillingError) as err:
        state.pay_invoice(invoice["id"])
    assert (err.value.status, err.value.type, err.value.decline_code) == (402, "card_error", "generic_decline")
    after = state.get_invoice(invoice["id"])
    assert (after["status"], after["attempt_count"], after["attempted"]) == ("open", 1, True)
    assert published[-1]["type"] in ("invoice.payment_failed", "customer.updated")
    assert state.get_invoice(invoice["id"])["payments"]["data"][0]["status"] == "open"
