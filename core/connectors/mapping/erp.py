"""ERP (NetSuite REST record service) <-> canonical, per pinned API version.

Versions: `2024.2` and `2025.1`. The declared breaking change: select fields — `status` of sales orders and
invoices, `creditHoldOverride` of customers — are plain strings on 2024.2 and `{"id", "refName"}` references
on 2025.1, on output and on input. A value of the other shape is drift.

Decisions:
- NetSuite omits null fields from a GET: optional fields are read with `opt`, required ones with `req`.
- Amounts are major units (floats); currency is the `currency.refName` ISO code. Quantities must be whole
  numbers to become canonical order lines.
- Sales order status -> canonical: Pending Approval -> pending_approval, Pending Fulfillment -> approved,
  Billed / Closed -> fulfilled, Cancelled -> cancelled. Invoice: Open -> open, Paid In Full -> paid,
  Voided -> void.
- A customer's country comes from its tax registration; otherwise the caller passes it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.connectors.mapping.common import Reader, major_to_money, unsupported_version
from core.model import Account, AccountStatus, Order, OrderLine, OrderStatus, SourceRef

__all__ = [
    "V2024_2",
    "V2025_1",
    "VERSIONS",
    "CustomerInput",
    "ErpCustomer",
    "ErpInvoice",
    "ErpLine",
    "ErpSalesOrder",
    "LineInput",
    "credit_hold_value",
    "customer_body",
    "lines_body",
    "parse_customer",
    "parse_invoice",
    "parse_sales_order",
]

SYSTEM = "erp"
V2024_2 = "2024.2"
V2025_1 = "2025.1"
VERSIONS: tuple[str, ...] = (V2024_2, V2025_1)

ORDER_STATUS = {"Pending Approval": OrderStatus.PENDING_APPROVAL, "Pending Fulfillment": OrderStatus.APPROVED,
                "Billed": OrderStatus.FULFILLED, "Closed": OrderStatus.FULFILLED, "Cancelled": OrderStatus.CANCELLED}
INVOICE_STATUS = {"Open": "open", "Paid In Full": "paid", "Voided": "void"}
CREDIT_HOLD = {"AUTO": "AUTO", "ON": "ON", "OFF": "OFF"}
# 2025.1 select ids of the same values (NetSuite's transaction status letters).
ORDER_STATUS_IDS = {"A": "Pending Approval", "B": "Pending Fulfillment", "C": "Cancelled", "G": "Billed",
                    "H": "Closed"}
INVOICE_STATUS_IDS = {"A": "Open", "B": "Paid In Full", "V": "Voided"}


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


def _check_version(obj: str, version: str) -> None:
    if version not in VERSIONS:
        raise unsupported_version(SYSTEM, obj, version, VERSIONS)


def _select(r: Reader, field: str, values: dict[str, Any], ids: dict[str, str] | None = None,
            present: bool = True) -> Any:
    """A select field as the pinned version spells it: a string (2024.2) or {"id", "refName"} (2025.1)."""
    if r.version == V2024_2:
        return r.enum(field, values, present=present)
    ref = r.sub(field, present=present)
    if ref is None:
        return None
    key = ref.req("id", str)
    name = ids.get(key) if ids is not None else key
    if name not in values:
        raise r.drift(field, f"unknown value {key!r}; the pinned version knows {sorted(ids or values)}")
    return values[name]


def credit_hold_value(override: str, version: str) -> Any:
    """The `creditHoldOverride` body value of the pinned version."""
    _check_version("customer", version)
    if override not in CREDIT_HOLD:
        raise ValueError(f"credit hold override must be one of {sorted(CREDIT_HOLD)}")
    return override if version == V2024_2 else {"id": override}


def _ref_id(r: Reader, field: str, present: bool = True) -> str | None:
    ref = r.sub(field, present=present)
    return None if ref is None else ref.req("id", str)


class ErpCustomer(_View):
    id: str
    external_id: str | None
    company_name: str
    legal_name: str | None
    email: str | None
    subsidiary_id: str
    currency: str
    credit_hold_override: str
    on_credit_hold: bool
    balance: Decimal
    credit_limit: Decimal | None
    tax_country: str | None
    tax_number: str | None
    inactive: bool
    created: datetime
    modified: datetime

    def to_canonical(self, *, id: str, country: str | None = None, seen_at: datetime | None = None) -> Account:
        code = self.tax_country or country
        if code is None:
            raise ValueError(f"customer {self.id} has no tax registration country; pass country=")
        seen = max(seen_at or datetime.now(UTC), self.modified)
        return Account(
            id=id, name=self.company_name, legal_name=self.legal_name or self.company_name, country=code,
            currency=self.currency, billing_email=self.email, tax_registration=self.tax_number,
            credit_hold=self.on_credit_hold,
            status=AccountStatus.CHURNED if self.inactive else AccountStatus.ACTIVE,
            created_at=self.created, updated_at=seen,
            source_refs=[SourceRef(system=SYSTEM, native_id=self.id, version_tag=self.modified.isoformat(),
                                   last_seen=seen)],
        )


class ErpLine(_View):
    line: int | None
    item_id: str
    item_name: str | None
    description: str | None
    quantity: Decimal
    rate: Decimal | None
    amount: Decimal


def _lines(r: Reader) -> list[ErpLine] | None:
    """The `item` sublist when the response expanded it (`expandSubResources=true`), else None."""
    sub = r.sub("item", present=False)
    if sub is None or "items" not in sub.payload:
        return None
    out = []
    for row in sub.items("items"):
        item = row.sub("item")
        assert item is not None
        out.append(ErpLine(line=row.opt("line", int), item_id=item.req("id", str), item_name=item.opt("refName", str),
                           description=row.opt("description", str), quantity=row.number("quantity"),
                           rate=row.number("rate", present=False), amount=row.number("amount")))
    return out


class ErpSalesOrder(_View):
    id: str
    tran_id: str
    external_id: str | None
    customer_id: str
    status: OrderStatus
    currency: str
    tran_date: date
    total: Decimal
    revision: int
    lines: list[ErpLine] | None = None
    created: datetime
    modified: datetime

    def to_canonical(self, *, id: str, account_id: str, opportunity_id: str | None = None,
                     seen_at: datetime | None = None) -> Order:
        if self.lines is None:
            raise ValueError("read the order with its lines (get_sales_order expands them)")
        lines = []
        for ln in self.lines:
            if ln.quantity != ln.quantity.to_integral_value():
                raise ValueError(f"line {ln.line}: quantity {ln.quantity} is not a whole number")
            unit = ln.rate if ln.rate is not None else ln.amount / ln.quantity
            lines.append(OrderLine(sku=ln.item_name or ln.item_id, description=ln.description or ln.item_name
                                   or ln.item_id, quantity=int(ln.quantity),
                                   unit_price=major_to_money(unit, self.currency)))
        seen = max(seen_at or datetime.now(UTC), self.modified)
        return Order(
            id=id, account_id=account_id, opportunity_id=opportunity_id, number=self.tran_id, status=self.status,
            currency=self.currency, order_date=self.tran_date, lines=lines, created_at=self.created,
            updated_at=seen,
            source_refs=[SourceRef(system=SYSTEM, native_id=self.id, version_tag=str(self.revision),
                                   last_seen=seen)],
        )


class ErpInvoice(_View):
    id: str
    tran_id: str
    external_id: str | None
    customer_id: str
    order_id: str
    status: str
    currency: str
    tran_date: date
    due_date: date | None
    total: Decimal
    amount_paid: Decimal
    amount_remaining: Decimal
    lines: list[ErpLine] | None = None
    created: datetime
    modified: datetime


def _currency(r: Reader) -> str:
    ref = r.sub("currency")
    assert ref is not None
    code = ref.req("refName", str)
    if len(code) != 3:
        raise ref.drift("refName", f"not an ISO currency code: {code!r}")
    return code


def parse_customer(payload: Any, version: str) -> ErpCustomer:
    _check_version("customer", version)
    r = Reader(SYSTEM, "customer", payload, version)
    tax = r.sub("taxRegistration", present=False)
    return ErpCustomer(
        id=r.req("id", str), external_id=r.opt("externalId", str), company_name=r.req("companyName", str),
        legal_name=r.opt("legalName", str), email=r.opt("email", str), subsidiary_id=_ref_id(r, "subsidiary"),
        currency=_currency(r), credit_hold_override=_select(r, "creditHoldOverride", CREDIT_HOLD),
        on_credit_hold=r.req("isOnCreditHold", bool), balance=r.number("balance"),
        credit_limit=r.number("creditLimit", present=False),
        tax_country=tax.req("country", str) if tax else None, tax_number=tax.req("number", str) if tax else None,
        inactive=r.req("isInactive", bool), created=r.datetime("dateCreated"), modified=r.datetime("lastModifiedDate"),
    )


def parse_sales_order(payload: Any, version: str) -> ErpSalesOrder:
    _check_version("salesOrder", version)
    r = Reader(SYSTEM, "salesOrder", payload, version)
    return ErpSalesOrder(
        id=r.req("id", str), tran_id=r.req("tranId", str), external_id=r.opt("externalId", str),
        customer_id=_ref_id(r, "entity"), status=_select(r, "status", ORDER_STATUS, ORDER_STATUS_IDS),
        currency=_currency(r), tran_date=r.date("tranDate"), total=r.number("total"), revision=r.req("revision", int),
        lines=_lines(r), created=r.datetime("createdDate"), modified=r.datetime("lastModifiedDate"),
    )


def parse_invoice(payload: Any, version: str) -> ErpInvoice:
    _check_version("invoice", version)
    r = Reader(SYSTEM, "invoice", payload, version)
    return ErpInvoice(
        id=r.req("id", str), tran_id=r.req("tranId", str), external_id=r.opt("externalId", str),
        customer_id=_ref_id(r, "entity"), order_id=_ref_id(r, "createdFrom"),
        status=_select(r, "status", INVOICE_STATUS, INVOICE_STATUS_IDS), currency=_currency(r),
        tran_date=r.date("tranDate"), due_date=r.date("dueDate", present=False), total=r.number("total"),
        amount_paid=r.number("amountPaid"), amount_remaining=r.number("amountRemaining"), lines=_lines(r),
        created=r.datetime("createdDate"), modified=r.datetime("lastModifiedDate"),
    )


# ---- writes --------------------------------------------------------------------------------------------------


class CustomerInput(BaseModel):
    """A customer as the flows write it; unset fields are not sent (PATCH / upsert semantics)."""

    model_config = ConfigDict(frozen=True)

    company_name: str | None = None
    legal_name: str | None = None
    email: str | None = None
    subsidiary_id: str | None = None
    currency_id: str | None = None
    terms_id: str | None = None
    credit_limit: Decimal | None = None
    tax_country: str | None = None
    tax_number: str | None = None
    # Default billing address: ISO country plus optional city / addr1 / zip.
    address: dict[str, str] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_account(cls, account: Account, *, subsidiary_id: str | None = None, **more: Any) -> CustomerInput:
        return cls(company_name=account.name, legal_name=account.legal_name, email=account.billing_email,
                   subsidiary_id=subsidiary_id, tax_country=account.country if account.tax_registration else None,
                   tax_number=account.tax_registration, **more)


def customer_body(data: CustomerInput, version: str) -> dict[str, Any]:
    _check_version("customer", version)
    fields = data.model_fields_set
    body: dict[str, Any] = {}
    for attr, name in (("company_name", "companyName"), ("legal_name", "legalName"), ("email", "email")):
        if attr in fields:
            body[name] = getattr(data, attr)
    for attr, name in (("subsidiary_id", "subsidiary"), ("currency_id", "currency"), ("terms_id", "terms")):
        if attr in fields and getattr(data, attr) is not None:
            body[name] = {"id": getattr(data, attr)}
    if "credit_limit" in fields:
        body["creditLimit"] = float(data.credit_limit) if data.credit_limit is not None else None
    if data.tax_number is not None:
        body["taxRegistration"] = {"country": data.tax_country, "number": data.tax_number}
    if data.address is not None:
        body["addressBook"] = {"items": [{"defaultBilling": True, "defaultShipping": True,
                                          "addressBookAddress": dict(data.address)}]}
    body.update(data.extra)
    return body


class LineInput(BaseModel):
    """One order / invoice line: the item by external id (or internal id), quantity, rate in major units."""

    model_config = ConfigDict(frozen=True)

    item_external_id: str | None = None
    item_id: str | None = None
    quantity: Decimal | int = 1
    rate: Decimal | None = None
    description: str | None = None


def lines_body(lines: list[LineInput]) -> dict[str, Any]:
    items = []
    for ln in lines:
        if (ln.item_external_id is None) == (ln.item_id is None):
            raise ValueError("a line names its item by exactly one of item_external_id / item_id")
        item = {"externalId": ln.item_external_id} if ln.item_external_id else {"id": ln.item_id}
        row: dict[str, Any] = {"item": item, "quantity": float(ln.quantity) if isinstance(ln.quantity, Decimal)
                               else ln.quantity}
        if ln.rate is not None:
            row["rate"] = float(ln.rate)
        if ln.description is not None:
            row["description"] = ln.description
        items.append(row)
    return {"items": items}
