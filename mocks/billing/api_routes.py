"""Billing's operations, one row each: declared parameters and a handler calling the tenant's state.

Handlers stay thin: they pick params and call `BillingState`. Filters the model does not take as keyword
arguments (`created[gte]` and friends) are applied here on the returned objects.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from mocks.billing import forms
from mocks.billing.api import Ctx, Op
from mocks.billing.errors import BillingError, missing
from mocks.billing.forms import Any_, Arr, Bool, Decimal, Enum, Int, Metadata, Obj, Range, Str

__all__ = ["OPS"]

Json = dict[str, Any]

# ---- shared parameter shapes ------------------------------------------------------------------------------

ADDRESS = Obj(city=Str(), country=Str(), line1=Str(), line2=Str(), postal_code=Str(), state=Str())
SHIPPING = Obj(address=ADDRESS, name=Str(), phone=Str())
INTERVAL = Enum("day", "week", "month", "year")
RECURRING = Obj(interval=INTERVAL, interval_count=Int(minimum=1), usage_type=Enum("licensed", "metered"),
                aggregate_usage=Enum("last_during_period", "last_ever", "max", "sum"))
PRORATION = Enum("always_invoice", "create_prorations", "none")
PAYMENT_BEHAVIOR = Enum("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
COLLECTION = Enum("charge_automatically", "send_invoice")
TAX_BEHAVIOR = Enum("exclusive", "inclusive", "unspecified")
PRICE_DATA = Obj(currency=Str(), product=Str(), recurring=RECURRING, unit_amount=Int(minimum=0),
                 unit_amount_decimal=Decimal(), tax_behavior=TAX_BEHAVIOR)
INVOICE_SETTINGS = Obj(default_payment_method=Str(), footer=Str(), custom_fields=Any_(),
                       rendering_options=Any_())
SUB_STATUS = Enum("active", "all", "canceled", "ended", "incomplete", "incomplete_expired", "past_due", "paused",
                  "trialing", "unpaid")
INVOICE_STATUS = Enum("draft", "open", "paid", "uncollectible", "void")

CUSTOMER_FIELDS: dict[str, forms.Spec] = {
    "address": ADDRESS, "balance": Int(), "description": Str(), "email": Str(max_length=512),
    "invoice_prefix": Str(max_length=12), "invoice_settings": INVOICE_SETTINGS, "metadata": Metadata(),
    "name": Str(max_length=256), "phone": Str(max_length=20), "preferred_locales": Arr(Str()),
    "shipping": SHIPPING, "tax_exempt": Enum("exempt", "none", "reverse"),
}
PRODUCT_FIELDS: dict[str, forms.Spec] = {
    "active": Bool(), "description": Str(), "images": Arr(Str(), max_items=8), "metadata": Metadata(),
    "name": Str(), "statement_descriptor": Str(max_length=22), "unit_label": Str(max_length=12),
    "url": Str(), "tax_code": Str(), "shippable": Bool(),
}


# ---- helpers ------------------------------------------------------------------------------------------------


def _path(ctx: Ctx, name: str) -> str:
    return ctx.path[name]


@functools.lru_cache(maxsize=256)
def _accepted(fn: Callable[..., Any]) -> frozenset[str]:
    func = getattr(fn, "__func__", fn)
    return frozenset(inspect.signature(func).parameters)


def call_with(fn: Callable[..., Any], params: Json) -> Any:
    """Calls a model method with the keyword params it takes (others are this layer's business)."""
    accepted = _accepted(fn)
    return fn(**{k: v for k, v in params.items() if v is not None and k in accepted})


def call_list(fn: Callable[..., list[Json]], params: Json, *, skip: tuple[str, ...] = ()) -> list[Json]:
    """Calls a model's list method with the filters it takes; applies range filters it does not take."""
    accepted = _accepted(fn)
    kwargs = {k: v for k, v in params.items() if v is not None and k in accepted and k not in skip}
    if "copy" in accepted:
        # The stored objects themselves: the API pages first and renders copy-on-write, so only the page is
        # ever copied (a copy of every invoice for each page of 100 made paging a month-end quadratic).
        kwargs["copy"] = False
    rows = fn(**kwargs)
    for name, value in params.items():
        if value is None or name in accepted or name in skip:
            continue
        if isinstance(value, dict) and set(value) <= set(Range.OPS):
            rows = [r for r in rows if _in_range(r.get(name), value)]
        elif not isinstance(value, dict | list):
            rows = [r for r in rows if r.get(name) == value]
    return rows


def _in_range(value: Any, bounds: Json) -> bool:
    if not isinstance(value, int | float):
        return False
    checks = {"gt": value.__gt__, "gte": value.__ge__, "lt": value.__lt__, "lte": value.__le__}
    return all(bounds.get(op) is None or checks[op](bounds[op]) for op in checks)


def _state_method(ctx: Ctx, name: str) -> Callable[..., Any]:
    fn = getattr(ctx.state, name, None)
    if fn is None:
        raise BillingError(f"This operation is not supported by the billing sandbox ({name}).", status=404)
    return fn


# ---- customers ---------------------------------------------------------------------------------------------


def create_customer(ctx: Ctx) -> Json:
    return ctx.state.create_customer(ctx.params)


def get_customer(ctx: Ctx) -> Json:
    return ctx.state.get_customer(_path(ctx, "customer"))


def update_customer(ctx: Ctx) -> Json:
    return ctx.state.update_customer(_path(ctx, "customer"), ctx.params)


def delete_customer(ctx: Ctx) -> Json:
    return ctx.state.delete_customer(_path(ctx, "customer"))


def list_customers(ctx: Ctx) -> list[Json]:
    return call_list(ctx.state.list_customers, ctx.params)


def list_customer_payment_methods(ctx: Ctx) -> list[Json]:
    params = {"type": None, **ctx.params}
    return ctx.state.list_payment_methods(_path(ctx, "customer"), type=params["type"])


def get_customer_payment_method(ctx: Ctx) -> Json:
    pm = ctx.state.get_payment_method(_path(ctx, "payment_method"))
    if pm.get("customer") != _path(ctx, "customer"):
        raise missing("PaymentMethod", _path(ctx, "payment_method"), "payment_method")
    return pm


# ---- products and prices -------------------------------------------------------------------------------


def create_product(ctx: Ctx) -> Json:
    return ctx.state.create_product(ctx.params)


def get_product(ctx: Ctx) -> Json:
    return ctx.state.get_product(_path(ctx, "id"))


def update_product(ctx: Ctx) -> Json:
    return ctx.state.update_product(_path(ctx, "id"), ctx.params)


def delete_product(ctx: Ctx) -> Json:
    return _state_method(ctx, "delete_product")(_path(ctx, "id"))


def list_products(ctx: Ctx) -> list[Json]:
    rows = call_list(ctx.state.list_products, ctx.params, skip=("ids",))
    ids = ctx.params.get("ids")
    return [r for r in rows if r["id"] in ids] if ids else rows


def create_price(ctx: Ctx) -> Json:
    return ctx.state.create_price(ctx.params)


def get_price(ctx: Ctx) -> Json:
    return ctx.state.get_price(_path(ctx, "price"))


def update_price(ctx: Ctx) -> Json:
    return ctx.state.update_price(_path(ctx, "price"), ctx.params)


def list_prices(ctx: Ctx) -> list[Json]:
    params = dict(ctx.params)
    recurring = params.pop("recurring", None) or {}
    rows = call_list(ctx.state.list_prices, params)
    for key, value in recurring.items():
        if value is not None:
            rows = [r for r in rows if (r.get("recurring") or {}).get(key) == value]
    return rows


# ---- payment methods and intents ---------------------------------------------------------------------------


def get_payment_method(ctx: Ctx) -> Json:
    return ctx.state.get_payment_method(_path(ctx, "payment_method"))


def attach_payment_method(ctx: Ctx) -> Json:
    return ctx.state.attach_payment_method(_path(ctx, "payment_method"), ctx.params["customer"])


def detach_payment_method(ctx: Ctx) -> Json:
    return ctx.state.detach_payment_method(_path(ctx, "payment_method"))


def list_payment_methods(ctx: Ctx) -> list[Json]:
    customer = ctx.params.get("customer")
    if customer is None:
        return []  # Stripe lists only a customer's (or unattached Treasury) methods here
    return ctx.state.list_payment_methods(customer, type=ctx.params.get("type"))


def get_payment_intent(ctx: Ctx) -> Json:
    return ctx.state.get_payment_intent(_path(ctx, "intent"))


def list_payment_intents(ctx: Ctx) -> list[Json]:
    return call_list(ctx.state.list_payment_intents, ctx.params)


# ---- subscriptions -------------------------------------------------------------------------------------------


def create_subscription(ctx: Ctx) -> Json:
    return ctx.state.create_subscription(ctx.params)


def get_subscription(ctx: Ctx) -> Json:
    return ctx.state.get_subscription(_path(ctx, "subscription_exposed_id"))


def update_subscription(ctx: Ctx) -> Json:
    return ctx.state.update_subscription(_path(ctx, "subscription_exposed_id"), ctx.params)


def cancel_subscription(ctx: Ctx) -> Json:
    return ctx.state.cancel_subscription(_path(ctx, "subscription_exposed_id"), ctx.params)


def list_subscriptions(ctx: Ctx) -> list[Json]:
    params = dict(ctx.params)
    ended = params.get("status") == "ended"
    if ended:
        params["status"] = "all"
    rows = call_list(ctx.state.list_subscriptions, params)
    if ended:
        rows = [r for r in rows if r["status"] in ("canceled", "incomplete_expired")]
    return rows


# ---- invoice items and invoices ------------------------------------------------------------------------------


def create_invoice_item(ctx: Ctx) -> Json:
    return ctx.state.create_invoice_item(ctx.params)


def get_invoice_item(ctx: Ctx) -> Json:
    return ctx.state.get_invoice_item(_path(ctx, "invoiceitem"))


def delete_invoice_item(ctx: Ctx) -> Json:
    return ctx.state.delete_invoice_item(_path(ctx, "invoiceitem"))


def list_invoice_items(ctx: Ctx) -> list[Json]:
    return call_list(ctx.state.list_invoice_items, ctx.params)


def create_invoice(ctx: Ctx) -> Json:
    return ctx.state.create_invoice(ctx.params)


def get_invoice(ctx: Ctx) -> Json:
    return ctx.state.get_invoice(_path(ctx, "invoice"))


def list_invoices(ctx: Ctx) -> list[Json]:
    return call_list(ctx.state.list_invoices, ctx.params)


def list_invoice_lines(ctx: Ctx) -> list[Json]:
    invoice = ctx.state.get_invoice(_path(ctx, "invoice"))
    return list((invoice.get("lines") or {}).get("data") or [])


def finalize_invoice(ctx: Ctx) -> Json:
    return ctx.state.finalize_invoice(_path(ctx, "invoice"), ctx.params)


def pay_invoice(ctx: Ctx) -> Json:
    return ctx.state.pay_invoice(_path(ctx, "invoice"), ctx.params)


def void_invoice(ctx: Ctx) -> Json:
    return ctx.state.void_invoice(_path(ctx, "invoice"))


def mark_uncollectible(ctx: Ctx) -> Json:
    return ctx.state.mark_uncollectible(_path(ctx, "invoice"))


def upcoming_invoice(ctx: Ctx) -> Json:
    params = dict(ctx.params)
    if params.get("customer") is None:
        raise BillingError("Missing required param: customer.", param="customer", code="parameter_missing")
    if "subscription_proration_date" in params:
        params["proration_date"] = params.pop("subscription_proration_date")
    return call_with(ctx.state.upcoming_invoice, params)


def create_preview(ctx: Ctx) -> Json:
    """Endive's create_preview: the same preview as `upcoming`, with the item changes nested."""
    params = dict(ctx.params)
    details = params.pop("subscription_details", None) or {}
    if details.get("items") is not None:
        params["subscription_items"] = details["items"]
    if details.get("proration_behavior") is not None:
        params["subscription_proration_behavior"] = details["proration_behavior"]
    if details.get("proration_date") is not None:
        params["subscription_proration_date"] = details["proration_date"]
    if details.get("cancel_at_period_end") is not None:
        params["subscription_cancel_at_period_end"] = details["cancel_at_period_end"]
    ctx.params = params
    return upcoming_invoice(ctx)


# ---- test clocks --------------------------------------------------------------------------------------------------


def create_test_clock(ctx: Ctx) -> Json:
    return ctx.state.create_test_clock(ctx.params["frozen_time"], ctx.params.get("name"))


def get_test_clock(ctx: Ctx) -> Json:
    return ctx.state.get_test_clock(_path(ctx, "test_clock"))


def list_test_clocks(ctx: Ctx) -> list[Json]:
    return call_list(ctx.state.list_test_clocks, ctx.params)


def advance_test_clock(ctx: Ctx) -> Json:
    clock_id = _path(ctx, "test_clock")
    out = ctx.state.advance_test_clock(clock_id, ctx.params["frozen_time"])
    state = ctx.state
    # Stripe answers `advancing` at once and runs the advance in the background.
    ctx.after.append(lambda: state.complete_test_clock_advance(clock_id))
    return out


def delete_test_clock(ctx: Ctx) -> Json:
    return ctx.state.delete_test_clock(_path(ctx, "test_clock"))


# ---- events ----------------------------------------------------------------------------------------------------------


def _with_version(event: Json, version: str) -> Json:
    # Events are rendered in the requested version, so that is the version they declare. A copy when it
    # changes: listed events are the stored ones (the page is rendered copy-on-write, never mutated).
    if event.get("api_version") is None:
        return {**event, "api_version": version}
    return event


def get_event(ctx: Ctx) -> Json:
    return _with_version(ctx.state.get_event(_path(ctx, "id")), ctx.version)


def list_events(ctx: Ctx) -> list[Json]:
    params = dict(ctx.params)
    created = params.pop("created", None) or {}
    params.pop("delivery_success", None)
    rows = ctx.state.list_events(
        # Empty form values decode to None ("unset" in Stripe's encoding): no filter, not a filter on None.
        type=params.get("type") or None, types=[t for t in params.get("types") or [] if t] or None,
        created_gte=created.get("gte"), created_gt=created.get("gt"),
        created_lte=created.get("lte"), created_lt=created.get("lt"), copy=False,
    )
    return [_with_version(e, ctx.version) for e in rows]


# ---- webhook endpoints (live in the kernel's dispatcher) ------------------------------------------------------------

from mocks.billing import api_webhooks  # noqa: E402  (kept next to its routes for reading order)

LIST = True

OPS: list[Op] = [
    # customers
    Op("POST", "/v1/customers", create_customer,
       {**CUSTOMER_FIELDS, "payment_method": Str(), "test_clock": Str()}, "customer", "Create a customer"),
    Op("GET", "/v1/customers", list_customers,
       {"email": Str(max_length=512), "created": Range(), "test_clock": Str()}, "customer", "List customers",
       is_list=LIST),
    Op("GET", "/v1/customers/{customer}", get_customer, {}, "customer", "Retrieve a customer"),
    Op("POST", "/v1/customers/{customer}", update_customer, {**CUSTOMER_FIELDS, "default_source": Str()},
       "customer", "Update a customer"),
    Op("DELETE", "/v1/customers/{customer}", delete_customer, {}, "customer", "Delete a customer",
       expandable=False),
    Op("GET", "/v1/customers/{customer}/payment_methods", list_customer_payment_methods,
       {"type": Enum("card")}, "payment_method", "List a customer's payment methods", is_list=LIST),
    Op("GET", "/v1/customers/{customer}/payment_methods/{payment_method}", get_customer_payment_method, {},
       "payment_method", "Retrieve a customer's payment method"),
    # products
    Op("POST", "/v1/products", create_product,
       {**PRODUCT_FIELDS, "id": Str(), "default_price_data": Obj(
           currency=Str(), unit_amount=Int(minimum=0), unit_amount_decimal=Decimal(), recurring=RECURRING,
           tax_behavior=TAX_BEHAVIOR)}, "product", "Create a product", required=("name",)),
    Op("GET", "/v1/products", list_products,
       {"active": Bool(), "created": Range(), "ids": Arr(Str()), "shippable": Bool(), "url": Str()},
       "product", "List products", is_list=LIST),
    Op("GET", "/v1/products/{id}", get_product, {}, "product", "Retrieve a product"),
    Op("POST", "/v1/products/{id}", update_product, {**PRODUCT_FIELDS, "default_price": Str()}, "product",
       "Update a product"),
    Op("DELETE", "/v1/products/{id}", delete_product, {}, "product", "Delete a product", expandable=False),
    # prices
    Op("POST", "/v1/prices", create_price,
       {"currency": Str(max_length=3), "unit_amount": Int(minimum=0), "unit_amount_decimal": Decimal(),
        "product": Str(), "product_data": Obj(name=Str(), active=Bool(), metadata=Metadata(),
                                               statement_descriptor=Str(), unit_label=Str(), tax_code=Str()),
        "recurring": RECURRING, "nickname": Str(), "lookup_key": Str(max_length=200),
        "transfer_lookup_key": Bool(), "active": Bool(), "metadata": Metadata(), "tax_behavior": TAX_BEHAVIOR,
        "billing_scheme": Enum("per_unit", "tiered")},
       "price", "Create a price", required=("currency",)),
    Op("GET", "/v1/prices", list_prices,
       {"active": Bool(), "currency": Str(max_length=3), "product": Str(), "type": Enum("one_time", "recurring"),
        "lookup_keys": Arr(Str()), "recurring": Obj(interval=INTERVAL, usage_type=Enum("licensed", "metered")),
        "created": Range()}, "price", "List prices", is_list=LIST),
    Op("GET", "/v1/prices/{price}", get_price, {}, "price", "Retrieve a price"),
    Op("POST", "/v1/prices/{price}", update_price,
       {"active": Bool(), "nickname": Str(), "lookup_key": Str(max_length=200), "transfer_lookup_key": Bool(),
        "metadata": Metadata(), "tax_behavior": TAX_BEHAVIOR}, "price", "Update a price"),
    # payment methods and intents
    Op("GET", "/v1/payment_methods", list_payment_methods, {"customer": Str(), "type": Enum("card")},
       "payment_method", "List payment methods", is_list=LIST),
    Op("GET", "/v1/payment_methods/{payment_method}", get_payment_method, {}, "payment_method",
       "Retrieve a payment method"),
    Op("POST", "/v1/payment_methods/{payment_method}/attach", attach_payment_method, {"customer": Str()},
       "payment_method", "Attach a payment method to a customer", required=("customer",)),
    Op("POST", "/v1/payment_methods/{payment_method}/detach", detach_payment_method, {}, "payment_method",
       "Detach a payment method"),
    Op("GET", "/v1/payment_intents", list_payment_intents, {"customer": Str(), "created": Range()},
       "payment_intent", "List payment intents", is_list=LIST),
    Op("GET", "/v1/payment_intents/{intent}", get_payment_intent, {"client_secret": Str()}, "payment_intent",
       "Retrieve a payment intent"),
    # subscriptions
    Op("POST", "/v1/subscriptions", create_subscription,
       {"customer": Str(), "items": Arr(Obj(price=Str(), quantity=Int(minimum=0), metadata=Metadata(),
                                            price_data=PRICE_DATA), max_items=20),
        "default_payment_method": Str(), "payment_behavior": PAYMENT_BEHAVIOR, "proration_behavior": PRORATION,
        "trial_period_days": Int(minimum=0, maximum=730), "trial_end": Any_(), "billing_cycle_anchor": Int(),
        "backdate_start_date": Int(), "cancel_at_period_end": Bool(), "cancel_at": Int(),
        "collection_method": COLLECTION, "days_until_due": Int(minimum=0), "description": Str(),
        "metadata": Metadata(), "off_session": Bool(), "currency": Str(max_length=3),
        "payment_settings": Any_(), "trial_from_plan": Bool()},
       "subscription", "Create a subscription", required=("customer",)),
    Op("GET", "/v1/subscriptions", list_subscriptions,
       {"customer": Str(), "price": Str(), "status": SUB_STATUS, "test_clock": Str(), "created": Range(),
        "current_period_end": Range(), "current_period_start": Range(), "collection_method": COLLECTION},
       "subscription", "List subscriptions", is_list=LIST),
    Op("GET", "/v1/subscriptions/{subscription_exposed_id}", get_subscription, {}, "subscription",
       "Retrieve a subscription"),
    Op("POST", "/v1/subscriptions/{subscription_exposed_id}", update_subscription,
       {"items": Arr(Obj(id=Str(), price=Str(), quantity=Int(minimum=0), deleted=Bool(), clear_usage=Bool(),
                         metadata=Metadata(), price_data=PRICE_DATA), max_items=20),
        "proration_behavior": PRORATION, "proration_date": Int(), "default_payment_method": Str(),
        "cancel_at_period_end": Bool(), "cancel_at": Int(), "metadata": Metadata(), "description": Str(),
        "trial_end": Any_(), "payment_behavior": PAYMENT_BEHAVIOR,
        "billing_cycle_anchor": Enum("now", "unchanged"), "pause_collection": Any_(),
        "collection_method": COLLECTION, "days_until_due": Int(minimum=0), "off_session": Bool(),
        "cancellation_details": Obj(comment=Str(), feedback=Str())},
       "subscription", "Update a subscription"),
    Op("DELETE", "/v1/subscriptions/{subscription_exposed_id}", cancel_subscription,
       {"invoice_now": Bool(), "prorate": Bool(), "cancellation_details": Obj(comment=Str(), feedback=Str())},
       "subscription", "Cancel a subscription"),
    # invoice items
    Op("POST", "/v1/invoiceitems", create_invoice_item,
       {"customer": Str(), "amount": Int(), "currency": Str(max_length=3), "description": Str(), "price": Str(),
        "quantity": Int(minimum=0), "unit_amount": Int(), "invoice": Str(), "subscription": Str(),
        "period": Obj(start=Int(), end=Int()), "metadata": Metadata(), "discountable": Bool(),
        "price_data": Obj(currency=Str(), product=Str(), unit_amount=Int(), unit_amount_decimal=Decimal(),
                          tax_behavior=TAX_BEHAVIOR)},
       "invoiceitem", "Create an invoice item", required=("customer",)),
    Op("GET", "/v1/invoiceitems", list_invoice_items,
       {"customer": Str(), "invoice": Str(), "pending": Bool(), "created": Range()}, "invoiceitem",
       "List invoice items", is_list=LIST),
    Op("GET", "/v1/invoiceitems/{invoiceitem}", get_invoice_item, {}, "invoiceitem", "Retrieve an invoice item"),
    Op("DELETE", "/v1/invoiceitems/{invoiceitem}", delete_invoice_item, {}, "invoiceitem",
       "Delete an invoice item", expandable=False),
    # invoices: the fixed paths come before /v1/invoices/{invoice}
    Op("POST", "/v1/invoices", create_invoice,
       {"customer": Str(), "auto_advance": Bool(), "collection_method": COLLECTION,
        "days_until_due": Int(minimum=0), "description": Str(), "metadata": Metadata(), "subscription": Str(),
        "pending_invoice_items_behavior": Enum("exclude", "include", "include_and_require"),
        "default_payment_method": Str(), "currency": Str(max_length=3), "due_date": Int()},
       "invoice", "Create an invoice"),
    Op("GET", "/v1/invoices", list_invoices,
       {"customer": Str(), "subscription": Str(), "status": INVOICE_STATUS, "collection_method": COLLECTION,
        "created": Range(), "due_date": Range()}, "invoice", "List invoices", is_list=LIST),
    Op("GET", "/v1/invoices/upcoming", upcoming_invoice,
       {"customer": Str(), "subscription": Str(),
        "subscription_items": Arr(Obj(id=Str(), price=Str(), quantity=Int(minimum=0), deleted=Bool(),
                                      clear_usage=Bool(), metadata=Metadata(), price_data=PRICE_DATA)),
        "subscription_proration_behavior": PRORATION, "subscription_proration_date": Int(),
        "subscription_cancel_at_period_end": Bool()},
       "invoice", "Retrieve an upcoming invoice (2023-08-16)"),
    Op("POST", "/v1/invoices/create_preview", create_preview,
       {"customer": Str(), "subscription": Str(),
        "subscription_details": Obj(
            items=Arr(Obj(id=Str(), price=Str(), quantity=Int(minimum=0), deleted=Bool(), clear_usage=Bool(),
                          metadata=Metadata(), price_data=PRICE_DATA)),
            proration_behavior=PRORATION, proration_date=Int(), cancel_at_period_end=Bool())},
       "invoice", "Create a preview invoice (2026-10-28.endive)"),
    Op("GET", "/v1/invoices/{invoice}", get_invoice, {}, "invoice", "Retrieve an invoice"),
    Op("GET", "/v1/invoices/{invoice}/lines", list_invoice_lines, {}, "line_item", "List an invoice's lines",
       is_list=LIST),
    Op("POST", "/v1/invoices/{invoice}/finalize", finalize_invoice, {"auto_advance": Bool()}, "invoice",
       "Finalize an invoice"),
    Op("POST", "/v1/invoices/{invoice}/pay", pay_invoice,
       {"paid_out_of_band": Bool(), "payment_method": Str(), "forgive": Bool(), "off_session": Bool()},
       "invoice", "Pay an invoice"),
    Op("POST", "/v1/invoices/{invoice}/void", void_invoice, {}, "invoice", "Void an invoice"),
    Op("POST", "/v1/invoices/{invoice}/mark_uncollectible", mark_uncollectible, {}, "invoice",
       "Mark an invoice uncollectible"),
    # test clocks
    Op("POST", "/v1/test_helpers/test_clocks", create_test_clock, {"frozen_time": Int(minimum=0), "name": Str()},
       "test_helpers.test_clock", "Create a test clock", required=("frozen_time",)),
    Op("GET", "/v1/test_helpers/test_clocks", list_test_clocks, {}, "test_helpers.test_clock",
       "List test clocks", is_list=LIST),
    Op("GET", "/v1/test_helpers/test_clocks/{test_clock}", get_test_clock, {}, "test_helpers.test_clock",
       "Retrieve a test clock"),
    Op("DELETE", "/v1/test_helpers/test_clocks/{test_clock}", delete_test_clock, {}, "test_helpers.test_clock",
       "Delete a test clock", expandable=False),
    Op("POST", "/v1/test_helpers/test_clocks/{test_clock}/advance", advance_test_clock,
       {"frozen_time": Int(minimum=0)}, "test_helpers.test_clock", "Advance a test clock",
       required=("frozen_time",)),
    # webhook endpoints
    *api_webhooks.OPS,
    # events
    Op("GET", "/v1/events", list_events,
       {"type": Str(), "types": Arr(Str(), max_items=20), "created": Range(), "delivery_success": Bool()},
       "event", "List events", is_list=LIST),
    Op("GET", "/v1/events/{id}", get_event, {}, "event", "Retrieve an event"),
]
