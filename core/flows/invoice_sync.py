"""Flow 2, invoice sync: billing invoice events -> ERP invoice (amounts, billing status) + CRM receivables.

Trigger: `billing:invoice.{finalized,updated,paid,payment_failed,voided,marked_uncollectible}`; not
`invoice.created`: an invoice is always created as a draft, and drafts are not synced, so subscribing to it
would only cost the vendor a delivery and the core an inbox row per invoice.
Business key: `invoice-sync:<invoice id>:<status in the event>` — each status an invoice reaches is one
business transaction (a later status is a new flow, a duplicate delivery or a second event of the same
status is not). Drafts are not synced (their amounts still move); `None` for them.

Ordering: whatever status the event carried, every step re-reads the invoice (and the customer's open
invoices) from billing and writes that, so a stale `open` arriving after `paid` writes `paid` again.

Steps: one (`invoice_sync.sync`: one checkpoint per flow), made of these parts; each part is a read or an
idempotent write, so the step's retries on transient errors redo them safely:
1. resolve (crosswalk): billing customer -> canonical account -> ERP customer / CRM account; the invoice's
   subscription -> ERP sales order (crosswalk entity `subscription`, else `order`, linked to the billing
   subscription id). An unknown billing customer is not ours: the flow ends, noted in the trace. A known
   customer whose subscription is not linked to an order yet (lead-to-cash still running) is retried.
2. ERP invoice: upsert by externalId = billing invoice id, one line carrying the invoice total (NetSuite lines
   can't be negative, proration credits are netted), item = the order's first line item; memo states the
   billing status and amounts. When the order has no room left to bill (a renewal period beyond the
   contract order; a proration invoice racing its amendment, waited for first), a supplementary order keyed
   `invoice:<invoice id>/erp-order` is created for it.
   The ERP mock has no payment record in its REST API (NetSuite's customerPayment): the ERP invoice's
   status stays Open, and billing's status lives in the memo (see the report / README).
3. CRM: AR_Balance__c = sum of `amount_remaining` over the customer's open billing invoices.

Helpers shared by flows 2, 3, 4 and 6 (account / order resolution) live here; generic ones in _common.py.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from typing import Any

from dbos import DBOS

from core.connectors.erp import eid
from core.connectors.errors import NotFoundError, VendorError
from core.connectors.mapping.billing import BillingInvoice
from core.connectors.mapping.crm import AccountUpdate
from core.connectors.mapping.erp import ErpInvoice, LineInput
from core.crosswalk import LinkConflictError
from core.flows._common import crosswalk, idem_key
from core.flows._common import note as _note
from core.flows.shared_reads import SharedRuns
from core.intake.envelopes import IntakeEvent
from core.intake.router import register_flow
from core.model import InvoiceStatus, Money
from core.runtime import transient
from core.wiring import connections

__all__ = ["FLOW", "NotLinkedError", "crosswalk", "invoice_sync", "note", "order_for_subscription", "resolve_account",
           "sync_invoice"]

FLOW = "invoice_sync"
_log = logging.getLogger("lockstep.core.flows.invoice_sync")

# Step retry policy: ~6 s of retries on top of each connector's own in-call retries.
STEP = {"retries_allowed": True, "max_attempts": 6, "interval_seconds": 0.2, "backoff_rate": 2.0,
        "should_retry": transient}
# Waiting for another flow to link records (lead-to-cash) or to amend an order: ~12 s.
WAIT = {"retries_allowed": True, "max_attempts": 8, "interval_seconds": 0.25, "backoff_rate": 1.6,
        "should_retry": transient}

TRIGGERS = [f"billing:invoice.{t}" for t in ("finalized", "updated", "paid", "payment_failed", "voided",
                                             "marked_uncollectible")]
NO_ROOM = "exceeds the amount left to bill"
ORDER_MOVED = "belongs to another customer"
# An upsert that met an existing invoice on another customer / order, or one no longer open.
EXISTS_OTHERWISE = ("cannot be changed", "only memo and externalId can change")


# ---- shared helpers (flows 2, 3, 4, 6) ---------------------------------------------------------------------


class NotLinkedError(Exception):
    """Records another flow links (lead-to-cash) are not linked yet: retried, then parked (replayable)."""

    retryable = True
    dlq_reason = "not linked yet"


class _OrderMoved(Exception):
    """The order changed customer between our read and the write (a merge re-pointing unbilled orders):
    retried, and the retry reads the order's customer again."""

    retryable = True


class _NoRoomYet(Exception):
    """The order has no room for a proration invoice yet: its amendment is probably still running."""

    retryable = True


def resolve_account(system: str, native_id: str) -> dict[str, Any] | None:
    """{"account": canonical id, "crm"/"erp"/"billing"/"cs": native ids} for a native account, or None when
    the crosswalk has never seen it. Reads only (a step's body; call it inside one)."""
    xw = crosswalk()
    account = xw.lookup("account", system, native_id)
    if account is None:
        return None
    return {"account": str(account), **xw.refs(account)}


async def order_for_subscription(subscription_id: str) -> str | None:
    """The ERP sales order behind a billing subscription: linked in the crosswalk (entity `subscription` or
    `order` holding both native ids), else named by the subscription's `erp_sales_order` metadata (what
    lead-to-cash stamps on it)."""
    xw = crosswalk()
    for entity in ("subscription", "order", "contract"):
        canonical = xw.lookup(entity, "billing", subscription_id)
        if canonical is not None:
            native = xw.native(canonical, "erp")
            if native:
                return native
    sub = await connections().billing.get_subscription(subscription_id)
    order = sub.metadata.get("erp_sales_order") or None
    if order:
        # Remember the pair, so the subscription's next invoices resolve it without asking billing again.
        try:
            xw.link(xw.get_or_create("subscription", "billing", subscription_id), "erp", order)
        except LinkConflictError as exc:
            _log.warning("subscription %s names ERP order %s, but the crosswalk disagrees: %s",
                         subscription_id, order, exc)
    return order


def note(action: str, status: str, detail: str | None = None) -> None:
    """A decision of the flow (a skip, a state) in the trace; the connectors log every HTTP call."""
    _note("core", action, status, detail)


def major(amount_minor: int, currency: str) -> Decimal:
    return Money(amount_minor=amount_minor, currency=currency).to_major()


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        _log.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default


# ---- business key ------------------------------------------------------------------------------------------


def business_key(event: IntakeEvent) -> str | None:
    obj = event.payload.get("data", {}).get("object", {})
    status = obj.get("status")
    if not obj.get("id") or not status or status == "draft":
        return None
    return f"invoice-sync:{obj['id']}:{status}"


# ---- steps -------------------------------------------------------------------------------------------------


async def _resolve(inv: BillingInvoice) -> dict[str, Any] | None:
    """Cross-system refs of the invoice's customer (+ its subscription's ERP sales order); None when the
    customer is not managed by lockstep. Raises NotLinkedError while lead-to-cash is still linking."""
    refs = resolve_account("billing", inv.customer_id)
    if refs is None:
        return None
    order = await order_for_subscription(inv.subscription_id) if inv.subscription_id else None
    if inv.subscription_id and order is None:
        raise NotLinkedError(f"billing subscription {inv.subscription_id} has no linked ERP sales order yet")
    if not refs.get("erp"):
        raise NotLinkedError(f"account {refs['account']} has no ERP customer linked yet")
    return {**refs, "customer_id": inv.customer_id, "subscription_id": inv.subscription_id, "sales_order": order}


@DBOS.step(name="invoice_sync.resolve", **WAIT)
async def resolve_invoice(invoice_id: str) -> dict[str, Any] | None:
    """Current invoice facts + cross-system refs; None when the customer is not managed by lockstep."""
    return await _resolve(await connections().billing.get_invoice(invoice_id))


def _memo(inv: BillingInvoice) -> str:
    def fmt(v: int) -> str:
        return f"{major(v, inv.currency)} {inv.currency}"

    return (f"billing {inv.id} ({inv.number or '-'}): status {inv.status.value}; total {fmt(inv.total)}, "
            f"paid {fmt(inv.amount_paid)}, remaining {fmt(inv.amount_remaining)}; attempts {inv.attempt_count}")


async def _erp_line(order_id: str, inv: BillingInvoice) -> tuple[LineInput, str]:
    """The invoice's one line, and the customer the order belongs to (NetSuite bills an order to its own
    customer: after a merge, the loser's already-billed contract order stays on the loser's customer)."""
    order = await connections().erp.get_sales_order(order_id)
    if not order.lines:
        raise NotLinkedError(f"ERP sales order {order_id} has no lines to bill")
    what = "; ".join(ln.description for ln in inv.lines)[:900]
    line = LineInput(item_id=order.lines[0].item_id, quantity=1, rate=major(inv.total, inv.currency),
                     description=f"{inv.number or inv.id}: {what}")
    return line, order.customer_id


async def _upsert(inv: BillingInvoice, refs: dict[str, Any], order_id: str, existing: ErpInvoice | None) -> dict:
    """Writes the ERP invoice with one PUT and no read-back: what was written is known. `existing` None
    means the crosswalk never linked one, so the PUT carries customer and order and may create it."""
    erp = connections().erp
    memo = _memo(inv)
    if existing is not None and (existing.status != "open" or existing.total == major(inv.total, inv.currency)):
        # Paid / voided in the ERP already (NetSuite only lets memo change then), or the amounts already
        # match (a later status of the same invoice): only the memo moves, so the order is not read again.
        await erp.put_invoice(inv.id, memo=memo)
        return {"erp_invoice": existing.id, "sales_order": existing.order_id, "total": str(existing.total)}
    line, customer = await _erp_line(order_id, inv)
    due = (inv.due_date or inv.issued_at).date()
    try:
        created = await erp.put_invoice(inv.id, customer=customer if existing is None else None,
                                        sales_order=order_id if existing is None else None, lines=[line],
                                        tran_date=inv.issued_at.date(), due_date=due, memo=memo)
    except VendorError as exc:
        if existing is not None or not _exists_otherwise(exc):
            raise
        # The invoice exists though the crosswalk never linked it (the core crashed between the write and the
        # link, or its store was reset), on another order or no longer open: write it as the update it is.
        found = await _existing_erp_invoice(inv.id)
        if found is None:
            raise
        return await _upsert(inv, refs, found.order_id, found)
    erp_id = existing.id if existing is not None else created
    if erp_id is None:  # the PUT updated an invoice the crosswalk did not know (see above): ask for its id
        erp_id = (await erp.get_invoice(eid(inv.id))).id
    return {"erp_invoice": erp_id, "sales_order": order_id, "total": str(line.rate)}


def _exists_otherwise(exc: VendorError) -> bool:
    """NetSuite's refusals of an upsert that hit an existing invoice it cannot turn into this one."""
    return any(refusal in exc.message for refusal in EXISTS_OTHERWISE)


async def _existing_erp_invoice(invoice_id: str) -> ErpInvoice | None:
    try:
        return await connections().erp.get_invoice(eid(invoice_id))
    except NotFoundError:
        return None


def _linked_erp_invoice(invoice_id: str) -> tuple[str | None, str | None]:
    """(canonical invoice, the ERP invoice linked to it) as the crosswalk knows this billing invoice; the ERP
    one is there once an earlier run of this flow wrote it."""
    xw = crosswalk()
    canonical = xw.lookup("invoice", "billing", invoice_id)
    return (None, None) if canonical is None else (str(canonical), xw.native(canonical, "erp"))


@DBOS.step(name="invoice_sync.sync", **WAIT)
async def sync_step(invoice_id: str) -> dict[str, Any]:
    """The whole sync in one step (one checkpoint): resolve, upsert the ERP invoice from the CURRENT billing
    invoice and link it in the crosswalk, then the CRM receivables. Every part is a read or an idempotent
    write, so a retry (or a recovery) redoes it safely. When the ERP order has no room, the CRM part waits
    for the supplementary order (its own steps, in sync_invoice)."""
    erp = await _erp_invoice(invoice_id)
    refs = erp["refs"]
    if refs is not None and erp["status"] != "no_room" and refs.get("crm"):
        erp["crm"] = await _receivables(refs["customer_id"], refs["crm"])
    return erp


async def _erp_invoice(invoice_id: str) -> dict[str, Any]:
    """Resolve, then upsert the ERP invoice and link it.
    {"status": "synced" | "no_room" | "skipped" | "not managed" | "no order", "refs": ...}."""
    inv = await connections().billing.get_invoice(invoice_id)
    refs = await _resolve(inv)
    if refs is None:
        return {"status": "not managed", "refs": None}
    if not refs.get("sales_order"):
        return {"status": "no order", "refs": refs}
    if inv.status is InvoiceStatus.DRAFT:
        return {"status": "skipped", "why": "draft", "refs": refs}
    if inv.total < 0:
        note("erp invoice", "skipped", f"{inv.id}: negative total {inv.total} (a credit, not an invoice)")
        return {"status": "skipped", "why": "negative total", "refs": refs}
    # Read the ERP invoice only when one was written before: a first sync (most) is one PUT.
    canonical, linked = _linked_erp_invoice(inv.id)
    existing = await _existing_erp_invoice(inv.id) if linked else None
    order_id = existing.order_id if existing is not None else refs["sales_order"]
    try:
        written = await _upsert(inv, refs, order_id, existing)
    except VendorError as exc:
        if ORDER_MOVED in exc.message:
            raise _OrderMoved(f"ERP order {order_id} moved to another customer meanwhile: {exc.message}") from exc
        if NO_ROOM not in exc.message:
            raise
        if any(line.proration for line in inv.lines):
            raise _NoRoomYet(f"order {order_id} has no room for proration invoice {inv.id} yet") from exc
        return {"status": "no_room", "why": exc.message, "refs": refs}
    canonical = _link(invoice_id, written["erp_invoice"], canonical, linked)
    return {"status": "synced", **written, "canonical": canonical, "refs": refs}


@DBOS.step(name="invoice_sync.erp_supplementary_order", **STEP)
async def erp_supplementary(invoice_id: str, refs: dict[str, Any]) -> dict[str, Any]:
    """An order for an invoice the contract order has no room for (e.g. a renewal period), then the invoice."""
    erp = connections().erp
    inv = await connections().billing.get_invoice(invoice_id)
    contract = await erp.get_sales_order(refs["sales_order"])
    item = contract.lines[0].item_id if contract.lines else None
    if item is None:
        raise NotLinkedError(f"ERP sales order {refs['sales_order']} has no lines")
    order = await erp.create_sales_order(
        idempotency_key=idem_key(f"invoice:{inv.id}", "erp-order"), customer=refs["erp"],
        lines=[LineInput(item_id=item, quantity=1, rate=major(inv.total, inv.currency),
                         description=f"Billing beyond order {contract.tran_id}: {inv.number or inv.id}")],
        tran_date=inv.issued_at.date(), memo=f"lockstep: billing invoice {inv.id} beyond order {contract.tran_id}")
    note("erp supplementary order", "created", f"{order.tran_id} for {inv.id}")
    written = await _upsert(inv, refs, order.id, await _existing_erp_invoice(inv.id))
    return {"status": "synced", **written, "canonical": _link(invoice_id, written["erp_invoice"])}


@DBOS.step(name="invoice_sync.crm_receivables", **STEP)
async def crm_receivables(billing_customer: str, crm_account: str) -> dict[str, Any]:
    """The CRM part on its own (after a supplementary order)."""
    return await _receivables(billing_customer, crm_account)


async def _receivables(billing_customer: str, crm_account: str) -> dict[str, Any]:
    """AR_Balance__c = what the customer still owes on open invoices (billing's current state). When the CRM
    account was merged away since the refs were read (Salesforce deletes a merge's losers), the survivor's
    balance is written instead, from the survivor's billing customer."""
    try:
        return await _write_receivables(billing_customer, crm_account)
    except NotFoundError:
        survivor = resolve_account("crm", crm_account)
        if survivor is None or not survivor.get("crm") or survivor["crm"] == crm_account or not survivor.get(
                "billing"):
            note("crm receivables", "skipped", f"CRM account {crm_account} is gone and has no survivor")
            return {"skipped": f"CRM account {crm_account} is gone"}
        note("crm receivables", "merged", f"CRM account {crm_account} was merged into {survivor['crm']}")
        return await _write_receivables(survivor["billing"], survivor["crm"])


# The balance is recomputed from billing's current state: the invoice flows of one customer that ask at the
# same moment (a month-end run renews all its subscriptions at once) share one read-and-write.
RECEIVABLES = SharedRuns()


async def _write_receivables(billing_customer: str, crm_account: str) -> dict[str, Any]:
    outcome = await RECEIVABLES.run((billing_customer, crm_account),
                                    lambda: _recompute_receivables(billing_customer, crm_account))
    if outcome.shared:
        note("crm receivables", "shared", f"CRM account {crm_account}: written by a concurrent flow's read of "
                                          f"billing that began after this flow asked (run {outcome.run})")
    return dict(outcome.value)


async def _recompute_receivables(billing_customer: str, crm_account: str) -> dict[str, Any]:
    c = connections()
    open_invoices = await c.billing.list_invoices(billing_customer, status="open")
    currency = open_invoices[0].currency if open_invoices else (await c.billing.get_customer(
        billing_customer)).currency or "USD"
    owed = sum(i.amount_remaining for i in open_invoices if i.currency == currency)
    await c.crm.update_account(crm_account, AccountUpdate(ar_balance=Money(amount_minor=owed, currency=currency)))
    return {"ar_balance_minor": owed, "currency": currency, "open_invoices": len(open_invoices)}


def _link(invoice_id: str, erp_invoice_id: str, canonical: str | None = None, linked: str | None = None) -> str:
    """Links the billing and ERP invoices; `canonical` / `linked`: what the caller read of them already."""
    xw = crosswalk()
    if canonical is None:
        canonical = str(xw.get_or_create("invoice", "billing", invoice_id))
    if linked != erp_invoice_id:
        xw.link(canonical, "erp", erp_invoice_id)
    return canonical


async def sync_invoice(invoice_id: str) -> dict[str, Any]:
    """The invoice-sync steps for one billing invoice (also run by the amendment flow for its proration
    invoice). Call from inside a workflow."""
    try:
        erp = await sync_step(invoice_id)
    except Exception as exc:  # the proration wait ran out: bill it on its own order
        if type(exc).__name__ != "DBOSMaxStepRetriesExceeded" or not any(
                isinstance(e, _NoRoomYet) for e in getattr(exc, "errors", [])):
            raise
        erp = {"status": "no_room", "refs": await resolve_invoice(invoice_id)}
    refs = erp.pop("refs")
    crm = erp.pop("crm", None)
    if refs is None:
        note("invoice sync", "skipped", f"{invoice_id}: billing customer not managed by lockstep")
        return {"invoice": invoice_id, "status": "not managed"}
    out: dict[str, Any] = {"invoice": invoice_id, "account": refs["account"]}
    if erp["status"] == "no order":
        note("erp invoice", "skipped", f"{invoice_id}: no subscription, so no ERP sales order to bill")
    else:
        if erp["status"] == "no_room":
            erp = await erp_supplementary(invoice_id, refs)
        if erp.get("canonical"):
            out["canonical"] = erp.pop("canonical")
        out["erp"] = erp
    if refs.get("crm"):
        out["crm"] = crm if crm is not None else await crm_receivables(refs["customer_id"], refs["crm"])
    return out


async def invoice_sync(event: dict[str, Any]) -> dict[str, Any]:
    invoice_id = event["payload"]["data"]["object"]["id"]
    return await sync_invoice(invoice_id)


def coalesce_key(event: IntakeEvent) -> str | None:
    """Every step re-reads the invoice, so events of one invoice can share a flow that has not started."""
    obj = event.payload.get("data", {}).get("object", {})
    return f"invoice-sync:{obj['id']}" if obj.get("id") else None


register_flow(TRIGGERS, business_key, invoice_sync, name=FLOW, coalesce_key=coalesce_key)
