"""Flow 4, contract amendment: a subscription upgrade / downgrade / quantity change -> ERP amended sales order +
prorated invoice sync -> CS entitlement and ARR update.

Trigger: `billing:customer.subscription.updated` whose `previous_attributes` has `items` (a price or
quantity change; period rolls, status and metadata changes are not amendments).
Business key: `amendment:<subscription id>:<event id>` — one update call is one amendment (Stripe emits
one event per update; a duplicate delivery carries the same event id).

Every step re-reads the subscription from billing, so an older amendment arriving late writes the current
items, never the event's copy. Steps:
1. resolve (crosswalk): subscription -> ERP sales order, customer -> account refs (waits for lead-to-cash).
2. ERP: amend the order to the current items (absolute lines: item matched by SKU to the order's items, else
   its first item; quantity; ANNUAL unit rate, so the order total is the contract's ARR, as lead-to-cash
   books the deal). NetSuite keeps a revision per change. When a downgrade
   would put the order below what was already billed, a "billed before amendment" line keeps the total at
   the billed amount (NetSuite refuses less).
3. Proration invoice: when billing invoiced the change at once (`always_invoice`, or a new interval), the
   subscription's latest invoice is synced with the invoice-sync steps (idempotent by external id; the
   invoice-sync flow may do the same). With `create_prorations` the prorations ride on the next cycle
   invoice, which invoice sync handles when it comes.
4. CS: company ARR / MRR (integer minor units from the items: unit amount x quantity x 12 per month,
   x 1 per year; MRR = ARR / 12 rounded half up) and renewal date (current period end), written to the
   company whose ExternalId is the canonical account id (lead-to-cash's convention; else found by Gsid); the
   entitlement change logged as a timeline activity keyed `<business key>:entitlement`.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS

from core.connectors.errors import NotFoundError, VendorError
from core.connectors.mapping.billing import BillingSubscription
from core.connectors.mapping.cs import CompanyInput
from core.connectors.mapping.erp import ErpSalesOrder, LineInput
from core.flows._common import cs_company_by_gsid
from core.flows.invoice_sync import (
    STEP,
    WAIT,
    NotLinkedError,
    major,
    note,
    order_for_subscription,
    resolve_account,
    sync_invoice,
)
from core.intake.envelopes import IntakeEvent
from core.intake.router import register_flow
from core.model import BillingInterval, InvoiceStatus, Money
from core.wiring import connections

__all__ = ["FLOW", "amendment", "arr_minor"]

FLOW = "amendment"
BELOW_BILLED = "cannot be less than the amount already billed"
PER_YEAR = {BillingInterval.MONTH: 12, BillingInterval.YEAR: 1}


def business_key(event: IntakeEvent) -> str | None:
    data = event.payload.get("data", {})
    obj, previous = data.get("object", {}), data.get("previous_attributes") or {}
    if not obj.get("id") or "items" not in previous:
        return None
    return f"amendment:{obj['id']}:{event.event_id}"


def arr_minor(sub: BillingSubscription) -> int:
    """Annual recurring revenue of the subscription's items, integer minor units."""
    return sum(item.unit_amount * item.quantity * PER_YEAR[item.interval] for item in sub.items)


def _items_summary(sub: BillingSubscription) -> str:
    return ", ".join(f"{i.sku} x{i.quantity} @ {major(i.unit_amount, sub.currency)} {sub.currency}/{i.interval.value}"
                     for i in sub.items)


@DBOS.step(name="amendment.resolve", **WAIT)
async def resolve(subscription_id: str) -> dict[str, Any] | None:
    sub = await connections().billing.get_subscription(subscription_id)
    refs = resolve_account("billing", sub.customer_id)
    if refs is None:
        return None
    order = await order_for_subscription(subscription_id)
    if order is None:
        raise NotLinkedError(f"billing subscription {subscription_id} has no linked ERP sales order yet")
    return {**refs, "customer_id": sub.customer_id, "sales_order": order}


def _item_for(order: ErpSalesOrder, sku: str) -> str:
    lines = order.lines or []
    for ln in lines:
        if sku in (ln.item_name, ln.item_id) or (ln.description and sku in ln.description):
            return ln.item_id
    if not lines:
        raise NotLinkedError(f"ERP sales order {order.id} has no lines to amend")
    return lines[0].item_id


async def _amount_billed(order_id: str) -> float:
    # The connector's order view has no amountBilled: read it off the record (a read-only NetSuite field).
    erp = connections().erp
    resp = await erp._request("GET", f"/services/rest/record/v1/salesOrder/{order_id}")
    value = erp._json(resp, "salesOrder").get("amountBilled")
    return float(value or 0.0)


@DBOS.step(name="amendment.erp_order", **STEP)
async def erp_amend(subscription_id: str, order_id: str) -> dict[str, Any]:
    erp = connections().erp
    sub = await connections().billing.get_subscription(subscription_id)
    order = await erp.get_sales_order(order_id)
    lines = [LineInput(item_id=_item_for(order, i.sku), quantity=i.quantity,
                       rate=major(i.unit_amount * PER_YEAR[i.interval], sub.currency),
                       description=f"{i.sku} x{i.quantity}, annual [{i.id}]") for i in sub.items]
    memo = f"lockstep: amended from billing subscription {sub.id}: {_items_summary(sub)}"[:999]
    try:
        amended = await erp.amend_sales_order(order_id, lines=lines, memo=memo)
    except VendorError as exc:
        if BELOW_BILLED not in exc.message:
            raise
        billed = await _amount_billed(order_id)
        new_total = sum(float(ln.rate or 0) * float(ln.quantity) for ln in lines)
        gap = round(billed - new_total, 2)
        lines.append(LineInput(item_id=lines[0].item_id, quantity=1, rate=max(gap, 0.0),
                               description="Billed before amendment"))
        amended = await erp.amend_sales_order(order_id, lines=lines, memo=memo)
    return {"order": amended.id, "revision": amended.revision, "total": str(amended.total)}


@DBOS.step(name="amendment.latest_invoice", **STEP)
async def latest_invoice(subscription_id: str) -> str | None:
    billing = connections().billing
    sub = await billing.get_subscription(subscription_id)
    if not sub.latest_invoice_id:
        return None
    inv = await billing.get_invoice(sub.latest_invoice_id)
    if inv.status is InvoiceStatus.DRAFT or not any(line.proration for line in inv.lines):
        return None
    return inv.id


async def cs_external_id(gsid: str, account: str) -> str:
    cs = connections().cs
    try:
        company = await cs.get_company(account)
        if company.gsid == gsid:
            return account
    except NotFoundError:
        pass
    # Not lead-to-cash's convention: find the company by Gsid and use its ExternalId.
    row = await cs_company_by_gsid(cs, gsid)
    if not row.get("ExternalId"):
        raise NotLinkedError(f"CS company {gsid} has no ExternalId")
    return str(row["ExternalId"])


@DBOS.step(name="amendment.cs_arr", **STEP)
async def cs_update(subscription_id: str, gsid: str, account: str, key: str) -> dict[str, Any]:
    cs = connections().cs
    sub = await connections().billing.get_subscription(subscription_id)
    arr = arr_minor(sub)
    mrr = (arr + 6) // 12
    external_id = await cs_external_id(gsid, account)
    await cs.update_company(external_id, CompanyInput(
        arr=Money(amount_minor=arr, currency=sub.currency), mrr=Money(amount_minor=mrr, currency=sub.currency),
        renewal_date=sub.current_period_end.date()))
    await cs.log_activity(external_id=f"{key}:entitlement", company_id=gsid,
                          subject=f"Entitlement changed: {_items_summary(sub)}"[:250],
                          notes=f"Subscription {sub.id}; ARR {major(arr, sub.currency)} {sub.currency}")
    return {"arr_minor": arr, "mrr_minor": mrr, "currency": sub.currency}


async def amendment(event: dict[str, Any]) -> dict[str, Any]:
    subscription_id = event["payload"]["data"]["object"]["id"]
    refs = await resolve(subscription_id)
    if refs is None:
        note("amendment", "skipped", f"{subscription_id}: billing customer not managed by lockstep")
        return {"subscription": subscription_id, "status": "not managed"}
    out: dict[str, Any] = {"subscription": subscription_id, "account": refs["account"]}
    out["erp"] = await erp_amend(subscription_id, refs["sales_order"])
    proration_invoice = await latest_invoice(subscription_id)
    if proration_invoice:
        out["invoice"] = await sync_invoice(proration_invoice)
    if refs.get("cs"):
        out["cs"] = await cs_update(subscription_id, refs["cs"], refs["account"], event["business_key"])
    return out


register_flow(["billing:customer.subscription.updated"], business_key, amendment, name=FLOW)
