"""Flow 3, failed payment: `invoice.payment_failed` -> CRM at-risk flag, one CS risk CTA, ERP credit hold after
N failures; `invoice.paid` (after failures) clears them.

Triggers and business keys:
- `billing:invoice.payment_failed` -> `failed-payment:<invoice id>:attempt-<attempt_count>`: every dunning
  attempt is its own transaction; a duplicate delivery of the same attempt is not.
- `billing:invoice.paid` after at least one failed attempt (`attempt_count > 1`, or 1 and paid out of band)
  -> `failed-payment:<invoice id>:paid`. A paid invoice that never failed starts nothing.

Decision: both run the same reconciliation of the customer's payment-risk state, computed from billing's
CURRENT state (never the event's copy, so a stale `payment_failed` arriving after `paid` changes nothing):
- failing invoices = the customer's open invoices with `attempt_count > 0` (for an open invoice every
  attempt so far failed); failures = the sum of their attempt counts (per customer, across invoices);
- failing: CRM `At_Risk__c = true`; one open CS Risk CTA per episode (an open CTA we opened for this billing
  customer is reused, else one is created with the idempotency key `payment-risk:<customer>:<first failing
  invoice>`); when failures >= N, ERP `creditHoldOverride = ON`. N: env
  `LOCKSTEP_CORE_CREDIT_HOLD_AFTER_FAILURES`, default 3 (read inside the step, so recorded);
- nothing failing any more: `At_Risk__c = false`, our open risk CTAs closed (Closed Success), a hold that is
  ON released to AUTO (NetSuite's own credit-limit rule applies again).
Every write is absolute (PATCH of a value, hold read before write) or keyed (CTA marker), so retries,
duplicates and replays have one effect.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS

from core.connectors.cs import cta_marker
from core.connectors.errors import VendorError
from core.connectors.mapping.crm import AccountUpdate
from core.flows.invoice_sync import STEP, WAIT, env_int, note, resolve_account
from core.intake.envelopes import IntakeEvent
from core.intake.router import register_flow
from core.wiring import connections

__all__ = ["FLOW", "HOLD_AFTER_ENV", "failed_payment"]

FLOW = "failed_payment"
HOLD_AFTER_ENV = "LOCKSTEP_CORE_CREDIT_HOLD_AFTER_FAILURES"
DEFAULT_HOLD_AFTER = 3
RISK_KEY = "payment-risk"


def business_key(event: IntakeEvent) -> str | None:
    obj = event.payload.get("data", {}).get("object", {})
    invoice_id, attempts = obj.get("id"), obj.get("attempt_count")
    if not invoice_id:
        return None
    if event.event_type == "invoice.payment_failed":
        return f"failed-payment:{invoice_id}:attempt-{attempts or 0}"
    if event.event_type == "invoice.paid" and isinstance(attempts, int) and (
            attempts > 1 or (attempts == 1 and obj.get("paid_out_of_band"))):
        return f"failed-payment:{invoice_id}:paid"
    return None


def _episode_prefix(customer: str) -> str:
    return cta_marker(f"{RISK_KEY}:{customer}:")[:-1]  # "[lockstep:payment-risk:<cus>:" (open-ended)


@DBOS.step(name="failed_payment.assess", **WAIT)
async def assess(invoice_id: str) -> dict[str, Any] | None:
    """The customer's payment-risk state from billing now, plus cross-system refs (None: not ours)."""
    billing = connections().billing
    inv = await billing.get_invoice(invoice_id)
    refs = resolve_account("billing", inv.customer_id)
    if refs is None:
        return None
    failing = [i for i in await billing.list_invoices(inv.customer_id, status="open") if i.attempt_count > 0]
    failing.sort(key=lambda i: (i.created, i.id))
    return {**refs, "customer_id": inv.customer_id, "failing": [i.id for i in failing],
            "failures": sum(i.attempt_count for i in failing), "hold_after": env_int(HOLD_AFTER_ENV,
                                                                                      DEFAULT_HOLD_AFTER)}


@DBOS.step(name="failed_payment.crm_at_risk", **STEP)
async def crm_at_risk(crm_account: str, at_risk: bool) -> None:
    await connections().crm.update_account(crm_account, AccountUpdate(at_risk=at_risk))


@DBOS.step(name="failed_payment.cs_open_risk", **STEP)
async def cs_open_risk(company: str, customer: str, first_failing: str, failures: int) -> str:
    cs = connections().cs
    prefix = _episode_prefix(customer)
    for cta in await cs.list_ctas(company):
        if not cta.is_closed and cta.type == "Risk" and cta.comments and prefix in cta.comments:
            return cta.gsid
    cta = await cs.create_cta(idempotency_key=f"{RISK_KEY}:{customer}:{first_failing}", company_id=company,
                              name="Payment failed: collection at risk", type="Risk", priority="High",
                              comments=f"Billing customer {customer}: payment failed on {first_failing} "
                                       f"({failures} failed attempt(s)).")
    return cta.gsid


@DBOS.step(name="failed_payment.cs_close_risk", **STEP)
async def cs_close_risk(company: str, customer: str) -> list[str]:
    cs = connections().cs
    prefix = _episode_prefix(customer)
    closed = []
    for cta in await cs.list_ctas(company):
        if cta.is_closed or not cta.comments or prefix not in cta.comments:
            continue
        try:
            await cs.close_cta(cta.gsid, status="Closed Success", reason="Payment received")
        except VendorError:
            # Closed meanwhile (a retry after a lost answer)? Then it is done; anything else is an error.
            if not (await _cta_closed(company, cta.gsid)):
                raise
        closed.append(cta.gsid)
    return closed


async def _cta_closed(company: str, gsid: str) -> bool:
    return any(c.gsid == gsid and c.is_closed for c in await connections().cs.list_ctas(company))


@DBOS.step(name="failed_payment.erp_hold", **STEP)
async def erp_hold(erp_customer: str, hold: bool) -> str:
    erp = connections().erp
    if hold:
        return (await erp.set_credit_hold(erp_customer, True)).credit_hold_override
    current = await erp.get_customer(erp_customer)
    if current.credit_hold_override != "ON":
        return current.credit_hold_override
    return (await erp.set_credit_hold(erp_customer, False)).credit_hold_override


async def failed_payment(event: dict[str, Any]) -> dict[str, Any]:
    invoice_id = event["payload"]["data"]["object"]["id"]
    state = await assess(invoice_id)
    if state is None:
        note("payment risk", "skipped", f"{invoice_id}: billing customer not managed by lockstep")
        return {"invoice": invoice_id, "status": "not managed"}
    customer, failing, failures = state["customer_id"], state["failing"], state["failures"]
    out: dict[str, Any] = {"invoice": invoice_id, "account": state["account"], "failures": failures,
                           "failing": failing}
    if failing:
        note("payment risk", "at risk", f"{customer}: {failures} failed attempt(s) on {', '.join(failing)}")
        if state.get("crm"):
            await crm_at_risk(state["crm"], True)
        if state.get("cs"):
            out["cta"] = await cs_open_risk(state["cs"], customer, failing[0], failures)
        if state.get("erp") and failures >= state["hold_after"]:
            out["credit_hold"] = await erp_hold(state["erp"], True)
        out["status"] = "at risk"
    else:
        note("payment risk", "cleared", f"{customer}: no failing invoice left")
        if state.get("crm"):
            await crm_at_risk(state["crm"], False)
        if state.get("cs"):
            out["closed_ctas"] = await cs_close_risk(state["cs"], customer)
        if state.get("erp"):
            out["credit_hold"] = await erp_hold(state["erp"], False)
        out["status"] = "cleared"
    return out


register_flow(["billing:invoice.payment_failed", "billing:invoice.paid"], business_key, failed_payment, name=FLOW)
