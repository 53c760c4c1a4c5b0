"""Billing's API versions as data: two renderings of one internal model.

The internal model carries the fields of both versions (a subscription has `current_period_*` on itself
and on its items; an invoice has `payment_intent` / `charge` / `paid` and `payments`). Each version
removes what it does not have:

- `2023-08-16` (the account's pinned version, Stripe's published spec in fidelity/): periods on the
  subscription, the payment intent on the invoice, `GET /v1/invoices/upcoming`.
- `2026-10-28.endive` (what stripe-python 16.x sends): periods on the items only, invoice `payments`
  instead of `payment_intent` / `charge` / `paid`, `POST /v1/invoices/create_preview` instead of upcoming.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mocks.kernel.versions import AddOperation, ApiVersion, Custom, Remove, RemoveOperation, VersionRegistry

__all__ = ["DEFAULT", "ENDIVE", "V2023", "billing_versions"]

V2023 = "2023-08-16"
ENDIVE = "2026-10-28.endive"
DEFAULT = V2023

# Internal object type (the `object` field) -> component schema name in the OpenAPI document.
SCHEMA_NAMES = {
    "customer": "customer",
    "product": "product",
    "price": "price",
    "payment_method": "payment_method",
    "subscription": "subscription",
    "subscription_item": "subscription_item",
    "invoiceitem": "invoiceitem",
    "invoice": "invoice",
    "line_item": "line_item",
    "payment_intent": "payment_intent",
    "test_helpers.test_clock": "test_helpers.test_clock",
    "webhook_endpoint": "webhook_endpoint",
    "event": "event",
}

PERIOD_FIELDS = ("current_period_start", "current_period_end")
INVOICE_PAYMENT_FIELDS = ("payment_intent", "charge", "paid")


# Optional fields 2023-08-16 omits when unset (its spec has them non-nullable); the internal model keeps null.
OMITTED_WHEN_NULL = {
    "line_item": ("invoice_item",),
    "invoice": ("subscription_proration_date", "threshold_reason"),
}


def _drop_nulls(fields: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def render(data: dict[str, Any]) -> dict[str, Any]:
        for name in fields:
            if name in data and data[name] is None:
                del data[name]
        return data

    return render


def billing_versions() -> VersionRegistry:
    v2023 = ApiVersion(
        V2023,
        released="2023-08-16",
        description="Stripe's published spec of 2023-09: billing periods on the subscription.",
        changes=[
            *(Remove("subscription_item", f) for f in PERIOD_FIELDS),
            Remove("invoice", "payments"),
            *(Custom(obj, _drop_nulls(fields), None, f"{obj}: {', '.join(fields)} omitted when null",
                     breaking=False) for obj, fields in OMITTED_WHEN_NULL.items()),
        ],
    )
    endive = ApiVersion(
        ENDIVE,
        released="2026-10-28",
        description="stripe-python 16.x: periods on subscription items, invoice payments, create_preview.",
        changes=[
            *(Remove("subscription", f) for f in PERIOD_FIELDS),
            *(Remove("invoice", f) for f in INVOICE_PAYMENT_FIELDS),
            RemoveOperation("GET", "/v1/invoices/upcoming"),
            AddOperation("POST", "/v1/invoices/create_preview"),
        ],
    )
    return VersionRegistry("billing", [v2023, endive], default=DEFAULT, schema_names=SCHEMA_NAMES)
