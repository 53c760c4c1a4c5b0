"""Billing (Stripe API) <-> canonical, per pinned API version.

Versions and what differs (the mapping checks exactly what the pinned version promises):
- `2023-08-16`: `current_period_start` / `current_period_end` on the subscription; an invoice carries
  `paid`, `payment_intent` and `charge`.
- `2026-10-28.endive`: the periods live on each subscription item; an invoice carries `payments` instead.

Native views (`BillingCustomer`, `BillingSubscription`, `BillingInvoice`) are version-free: flows work on
them, and `to_canonical(...)` turns them into canonical records once the crosswalk supplied the ids.
Decisions:
- SKU of a subscription item: the item's `metadata.sku`, else the price's `lookup_key`, else its product id.
- Currency codes are upper-cased (Stripe speaks `usd`).
- An invoice line's unit amount is `amount / quantity` when that divides evenly, else the line is one unit
  of `amount` (Stripe's proration lines are not per-unit).
- An invoice is "issued" when finalized (`status_transitions.finalized_at`), else at `created`; its due
  date is `due_date`, else the issue date (charge_automatically invoices have none).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.connectors.mapping.common import Reader, unsupported_version
from core.model import (
    BillingInterval,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    SourceRef,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)

__all__ = [
    "ENDIVE",
    "V2023",
    "VERSIONS",
    "BillingCustomer",
    "BillingInvoice",
    "BillingInvoiceLine",
    "BillingSubscription",
    "BillingSubscriptionItem",
    "map_billing_invoice",
    "map_billing_subscription",
    "parse_customer",
    "parse_invoice",
    "parse_subscription",
]

SYSTEM = "billing"
V2023 = "2023-08-16"
ENDIVE = "2026-10-28.endive"
VERSIONS: tuple[str, ...] = (V2023, ENDIVE)

SUB_STATUS = {s.value: s for s in SubscriptionStatus}
INVOICE_STATUS = {s.value: s for s in InvoiceStatus}
INTERVALS = {"month": BillingInterval.MONTH, "year": BillingInterval.YEAR}


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class BillingCustomer(_View):
    id: str
    name: str | None
    email: str | None
    currency: str | None
    delinquent: bool
    metadata: dict[str, str]
    created: datetime
    default_payment_method: str | None = None


class BillingSubscriptionItem(_View):
    id: str
    price_id: str
    product_id: str
    sku: str
    quantity: int
    unit_amount: int
    currency: str
    interval: BillingInterval


class BillingSubscription(_View):
    id: str
    customer_id: str
    status: SubscriptionStatus
    currency: str
    items: list[BillingSubscriptionItem]
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    trial_end: datetime | None
    latest_invoice_id: str | None
    metadata: dict[str, str]
    created: datetime

    def to_canonical(self, *, id: str, account_id: str, seen_at: datetime | None = None,
                     contract_id: str | None = None) -> Subscription:
        seen = seen_at or datetime.now(UTC)
        items = [SubscriptionItem(sku=i.sku, quantity=i.quantity,
                                  unit_amount=Money(amount_minor=i.unit_amount, currency=self.currency),
                                  interval=i.interval) for i in self.items]
        return Subscription(
            id=id, account_id=account_id, contract_id=contract_id, status=self.status, currency=self.currency,
            items=items, current_period_start=self.current_period_start,
            current_period_end=self.current_period_end, cancel_at_period_end=self.cancel_at_period_end,
            trial_end=self.trial_end, created_at=self.created, updated_at=max(seen, self.created),
            source_refs=[SourceRef(system=SYSTEM, native_id=self.id, last_seen=max(seen, self.created))],
        )


class BillingInvoiceLine(_View):
    id: str
    description: str
    quantity: int
    amount: int
    proration: bool
    period_start: datetime | None
    period_end: datetime | None


class BillingInvoice(_View):
    id: str
    customer_id: str
    subscription_id: str | None
    number: str | None
    status: InvoiceStatus
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    attempt_count: int
    lines: list[BillingInvoiceLine]
    created: datetime
    finalized_at: datetime | None
    paid_at: datetime | None
    due_date: datetime | None
    # 2023-08-16: the payment intent; endive: ids of the invoice payments.
    payment_refs: list[str] = Field(default_factory=list)

    @property
    def issued_at(self) -> datetime:
        return self.finalized_at or self.created

    def to_canonical(self, *, id: str, account_id: str, subscription_id: str | None = None,
                     seen_at: datetime | None = None) -> Invoice:
        seen = max(seen_at or datetime.now(UTC), self.created)
        lines = []
        for line in self.lines:
            quantity = line.quantity if line.quantity > 0 and line.amount % line.quantity == 0 else 1
            lines.append(InvoiceLine(
                description=line.description, quantity=quantity,
                unit_amount=Money(amount_minor=line.amount // quantity, currency=self.currency),
                proration=line.proration, period_start=line.period_start, period_end=line.period_end))
        paid_at = self.paid_at if self.status is InvoiceStatus.PAID else None
        if self.status is InvoiceStatus.PAID and paid_at is None:
            paid_at = self.issued_at
        due: date = (self.due_date or self.issued_at).date()
        return Invoice(
            id=id, account_id=account_id, subscription_id=subscription_id, number=self.number, status=self.status,
            currency=self.currency, lines=lines, amount_paid=Money(amount_minor=self.amount_paid,
                                                                   currency=self.currency),
            issued_at=self.issued_at, due_date=due, paid_at=paid_at, created_at=self.created, updated_at=seen,
            source_refs=[SourceRef(system=SYSTEM, native_id=self.id, last_seen=seen)],
        )


# ---- parsing (vendor -> native view), per version ---------------------------------------------------------


def _reader(obj: str, payload: Any, version: str) -> Reader:
    if version not in VERSIONS:
        raise unsupported_version(SYSTEM, obj, version, VERSIONS)
    r = Reader(SYSTEM, obj, payload, version)
    kind = r.req("object", str)
    if kind != obj:
        raise r.drift("object", f"expected {obj!r}, got {kind!r}")
    return r


def _metadata(r: Reader) -> dict[str, str]:
    meta = r.req("metadata", dict)
    return {str(k): str(v) for k, v in meta.items()}


def _currency(r: Reader, field: str = "currency") -> str:
    value = r.req(field, str)
    if len(value) != 3:
        raise r.drift(field, f"not a currency code: {value!r}")
    return value.upper()


def parse_customer(payload: Any, version: str) -> BillingCustomer:
    r = _reader("customer", payload, version)
    settings = r.sub("invoice_settings")
    cur = r.req("currency", str, nullable=True)
    return BillingCustomer(
        id=r.req("id", str), name=r.req("name", str, nullable=True), email=r.req("email", str, nullable=True),
        currency=cur.upper() if cur else None, delinquent=r.req("delinquent", bool), metadata=_metadata(r),
        created=r.epoch("created"),
        default_payment_method=settings.req("default_payment_method", str, nullable=True) if settings else None,
    )


def _item(r: Reader) -> tuple[BillingSubscriptionItem, tuple[datetime, datetime] | None]:
    price = r.sub("price")
    assert price is not None
    recurring = price.sub("recurring")
    assert recurring is not None
    interval = recurring.enum("interval", INTERVALS | {"day": None, "week": None})
    if interval is None or recurring.req("interval_count", int) != 1:
        raise recurring.drift("interval", "only monthly and yearly prices have a canonical interval")
    metadata = r.req("metadata", dict)
    product = price.req("product", str, dict)
    product_id = product if isinstance(product, str) else Reader(SYSTEM, "subscription", product, r.version,
                                                                  f"{price.path}.product").req("id", str)
    sku = metadata.get("sku") or price.req("lookup_key", str, nullable=True) or product_id
    period = None
    if r.version == ENDIVE:
        end = r.epoch("current_period_end")
        period = (r.epoch("current_period_start"), end)
    item = BillingSubscriptionItem(
        id=r.req("id", str), price_id=price.req("id", str), product_id=product_id, sku=str(sku),
        quantity=r.req("quantity", int), unit_amount=price.req("unit_amount", int),
        currency=_currency(price), interval=interval)
    return item, period


def parse_subscription(payload: Any, version: str) -> BillingSubscription:
    r = _reader("subscription", payload, version)
    items_list = r.sub("items")
    assert items_list is not None
    parsed = [_item(i) for i in items_list.items("data")]
    if not parsed:
        raise items_list.drift("data", "a subscription without items")
    if version == V2023:
        end, start = r.epoch("current_period_end"), r.epoch("current_period_start")
    else:
        periods = [p for _, p in parsed if p is not None]
        start, end = min(p[0] for p in periods), max(p[1] for p in periods)
    latest = r.req("latest_invoice", str, dict, nullable=True)
    return BillingSubscription(
        id=r.req("id", str), customer_id=_ref(r, "customer"), status=r.enum("status", SUB_STATUS),
        currency=_currency(r), items=[i for i, _ in parsed], current_period_start=start, current_period_end=end,
        cancel_at_period_end=r.req("cancel_at_period_end", bool), trial_end=r.epoch("trial_end", nullable=True),
        latest_invoice_id=latest if isinstance(latest, str) or latest is None else str(latest.get("id")),
        metadata=_metadata(r), created=r.epoch("created"),
    )


def _ref(r: Reader, field: str, nullable: bool = False) -> Any:
    """An id field that may have been expanded into its object."""
    value = r.req(field, str, dict, nullable=nullable)
    if isinstance(value, dict):
        sub = r.sub(field)
        assert sub is not None
        return sub.req("id", str)
    return value


def parse_invoice(payload: Any, version: str) -> BillingInvoice:
    r = _reader("invoice", payload, version)
    lines_list = r.sub("lines")
    assert lines_list is not None
    lines = []
    for ln in lines_list.items("data"):
        period = ln.sub("period", nullable=True)
        lines.append(BillingInvoiceLine(
            id=ln.req("id", str), description=ln.req("description", str, nullable=True) or "(no description)",
            quantity=ln.req("quantity", int, nullable=True) or 1, amount=ln.req("amount", int),
            proration=ln.req("proration", bool),
            period_start=period.epoch("start") if period else None,
            period_end=period.epoch("end") if period else None))
    transitions = r.sub("status_transitions")
    assert transitions is not None
    if version == V2023:
        r.req("paid", bool)
        r.req("charge", str, dict, nullable=True)
        intent = _ref(r, "payment_intent", nullable=True)
        refs = [intent] if intent else []
    else:
        payments = r.sub("payments")
        assert payments is not None
        refs = [p.req("id", str) for p in payments.items("data")]
    return BillingInvoice(
        id=r.req("id", str), customer_id=_ref(r, "customer"), subscription_id=_ref(r, "subscription", True),
        number=r.req("number", str, nullable=True), status=r.enum("status", INVOICE_STATUS),
        currency=_currency(r), total=r.req("total", int), amount_due=r.req("amount_due", int),
        amount_paid=r.req("amount_paid", int), amount_remaining=r.req("amount_remaining", int),
        attempt_count=r.req("attempt_count", int), lines=lines, created=r.epoch("created"),
        finalized_at=transitions.epoch("finalized_at", nullable=True),
        paid_at=transitions.epoch("paid_at", nullable=True), due_date=r.epoch("due_date", nullable=True),
        payment_refs=refs,
    )


def map_billing_subscription(payload: Mapping[str, Any], version: str, *, id: str, account_id: str,
                             seen_at: datetime | None = None) -> Subscription:
    """A Stripe subscription at the pinned `version` -> canonical Subscription (ids from the crosswalk)."""
    return parse_subscription(payload, version).to_canonical(id=id, account_id=account_id, seen_at=seen_at)


def map_billing_invoice(payload: Mapping[str, Any], version: str, *, id: str, account_id: str,
                        subscription_id: str | None = None, seen_at: datetime | None = None) -> Invoice:
    return parse_invoice(payload, version).to_canonical(id=id, account_id=account_id,
                                                        subscription_id=subscription_id, seen_at=seen_at)
