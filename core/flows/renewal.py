"""Flow 6, renewal prep: when the renewal window opens, usage, health and open invoices are aggregated into the
CRM account's renewal fields.

When does the window open? (decision) N days before the subscription's period end, N = env
`LOCKSTEP_CORE_RENEWAL_WINDOW_DAYS` (default 90). Two triggers, both clock-driven by the vendors:
- `cs:cta.created` of type Renewal: Gainsight-style CS opens a Renewal CTA 90 days before the company's
  RenewalDate (its sandbox clock runs the reminder job; the core keeps RenewalDate = the billing period end,
  see the amendment flow). This is the trigger for terms longer than the window (annual contracts).
- `billing:customer.subscription.updated` that rolls the period (`previous_attributes.current_period_end`)
  into a term no longer than N days (monthly / quarterly terms: the window is open from the term's start,
  and billing's renewal is the only clock event there is).
Business key: `renewal-prep:<canonical account>:<renewal date>` (both triggers name the same transaction,
so a CTA and a period roll for the same renewal start one flow). A native record the crosswalk doesn't
know is not ours (None).

Steps: 1. gather (reads only): the subscription (from the event, else the customer's newest subscription
invoice), ARR (integer minor units), seats; billing open invoices (count, amount remaining); CS scorecard
(health score, "Product Adoption" as usage). 2. CRM: Renewal_Date__c, Health_Score__c, AR_Balance__c
(absolute PATCH). 3. CRM extended renewal fields Renewal_ARR__c, Renewal_Open_Invoices__c, Renewal_Usage__c
(declared in the org by the deployment, e.g. the CRM sandbox `declare_field` action): when the org lacks one
(SchemaDriftError naming it) the step is skipped and noted in the trace, since the core fields are written.
4. CS: the company's RenewalDate = the subscription's current period end (when the facts came from billing).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from dbos import DBOS

from core.connectors.errors import NotFoundError, SchemaDriftError
from core.connectors.mapping.crm import AccountUpdate
from core.connectors.mapping.cs import CompanyInput
from core.flows._common import unwrap
from core.flows.amendment import arr_minor, cs_external_id
from core.flows.invoice_sync import STEP, crosswalk, env_int, major, note, resolve_account
from core.intake.envelopes import IntakeEvent
from core.intake.router import register_flow
from core.model import Money
from core.wiring import connections

__all__ = ["EXTENDED_FIELDS", "FLOW", "WINDOW_ENV", "renewal_prep"]

FLOW = "renewal_prep"
WINDOW_ENV = "LOCKSTEP_CORE_RENEWAL_WINDOW_DAYS"
DEFAULT_WINDOW_DAYS = 90
EXTENDED_FIELDS = ("Renewal_ARR__c", "Renewal_Open_Invoices__c", "Renewal_Usage__c")
USAGE_MEASURE = "Product Adoption"
DAY = 86_400


def _subscription_period(obj: dict[str, Any]) -> tuple[int, int] | None:
    """(start, end) unix seconds of a Stripe subscription in either API version (endive: per item)."""
    if isinstance(obj.get("current_period_end"), int):
        return obj.get("current_period_start") or 0, obj["current_period_end"]
    items = (obj.get("items") or {}).get("data") or []
    ends = [i["current_period_end"] for i in items if isinstance(i.get("current_period_end"), int)]
    starts = [i["current_period_start"] for i in items if isinstance(i.get("current_period_start"), int)]
    return (min(starts), max(ends)) if ends and starts else None


def business_key(event: IntakeEvent) -> str | None:
    try:
        xw = crosswalk()
    except RuntimeError:
        return None
    if event.system == "cs":
        cta = (event.payload.get("data") or {}).get("cta") or {}
        if cta.get("TypeName") != "Renewal" or not cta.get("CompanyId") or not cta.get("DueDate"):
            return None
        account = xw.lookup("account", "cs", cta["CompanyId"])
        renewal = str(cta["DueDate"])[:10]
    else:
        data = event.payload.get("data") or {}
        obj, previous = data.get("object") or {}, data.get("previous_attributes") or {}
        period = _subscription_period(obj)
        if period is None or not obj.get("customer") or not (
                "current_period_end" in previous or "current_period_start" in previous
                or _items_rolled(previous)):
            return None
        start, end = period
        if end - start > env_int(WINDOW_ENV, DEFAULT_WINDOW_DAYS) * DAY:
            return None  # a long term: its window opens mid-term (the CS Renewal CTA)
        account = xw.lookup("account", "billing", obj["customer"])
        renewal = datetime.fromtimestamp(end, UTC).date().isoformat()
    return f"renewal-prep:{account}:{renewal}" if account else None


def _items_rolled(previous: dict[str, Any]) -> bool:
    """Endive: a period roll shows as item periods in previous_attributes (no top-level period)."""
    return False if "items" not in previous else any(
        "current_period_end" in (i or {}) for i in ((previous["items"] or {}).get("data") or []))


@DBOS.step(name="renewal.gather", **STEP)
async def gather(event_system: str, native_id: str, subscription_id: str | None,
                 due_date: str | None) -> dict[str, Any] | None:
    c = connections()
    refs = resolve_account(event_system, native_id)
    if refs is None:
        return None
    out: dict[str, Any] = {**refs, "renewal_date": due_date}
    customer = refs.get("billing")
    if customer:
        if subscription_id is None:
            recent = [i for i in await c.billing.list_invoices(customer, max_items=20) if i.subscription_id]
            subscription_id = recent[0].subscription_id if recent else None
        open_invoices = await c.billing.list_invoices(customer, status="open")
        out["open_invoices"] = len(open_invoices)
        currency = open_invoices[0].currency if open_invoices else None
        out["open_amount_minor"] = sum(i.amount_remaining for i in open_invoices)
        if subscription_id:
            sub = await c.billing.get_subscription(subscription_id)
            currency = sub.currency
            out.update(subscription=sub.id, arr_minor=arr_minor(sub), seats=sum(i.quantity for i in sub.items),
                       renewal_date=sub.current_period_end.date().isoformat())
        out["currency"] = currency or (await c.billing.get_customer(customer)).currency or "USD"
    if refs.get("cs"):
        try:
            card = await c.cs.get_scorecard(refs["cs"])
            out["health"], out["usage"] = card.score, card.measures.get(USAGE_MEASURE)
        except NotFoundError:
            out["health"] = out["usage"] = None
    return out


@DBOS.step(name="renewal.crm_fields", **STEP)
async def crm_fields(crm_account: str, facts: dict[str, Any]) -> None:
    update: dict[str, Any] = {}
    if facts.get("renewal_date"):
        update["renewal_date"] = date.fromisoformat(facts["renewal_date"])
    if facts.get("health") is not None:
        update["health_score"] = facts["health"]
    if "open_amount_minor" in facts:
        update["ar_balance"] = Money(amount_minor=facts["open_amount_minor"], currency=facts["currency"])
    await connections().crm.update_account(crm_account, AccountUpdate(**update))


@DBOS.step(name="renewal.crm_extended", **STEP)
async def crm_extended(crm_account: str, facts: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"Renewal_Open_Invoices__c": facts.get("open_invoices", 0)}
    if facts.get("arr_minor") is not None:
        body["Renewal_ARR__c"] = float(major(facts["arr_minor"], facts["currency"]))
    if facts.get("usage") is not None:
        body["Renewal_Usage__c"] = facts["usage"]
    try:
        await connections().crm.update_account(crm_account, body)
    except SchemaDriftError as exc:
        if exc.field not in EXTENDED_FIELDS:
            raise
        note("crm renewal fields", "skipped", f"the org lacks {exc.field}: declare {', '.join(EXTENDED_FIELDS)}")
        return {"written": False, "missing": exc.field}
    return {"written": True, **body}


@DBOS.step(name="renewal.cs_renewal_date", **STEP)
async def cs_renewal_date(gsid: str, account: str, renewal_date: str) -> dict[str, Any]:
    """The company's RenewalDate follows billing's period end (a period roll moves it: without this, CS kept
    the date lead to cash or the last amendment wrote, and reconcile reported a conflict)."""
    try:
        external_id = await cs_external_id(gsid, account)
        await connections().cs.update_company(external_id, CompanyInput(
            renewal_date=date.fromisoformat(renewal_date)))
    except NotFoundError as exc:
        # The company went away or was merged meanwhile (its survivor is dated by its own renewal): nothing to
        # date here, and reconcile would show a real gap.
        note("cs renewal date", "skipped", f"CS company {gsid}: {exc}"[:500])
        return {"renewal_date": None, "skipped": str(exc)[:200]}
    return {"renewal_date": renewal_date}


async def renewal_prep(event: dict[str, Any]) -> dict[str, Any]:
    payload = event["payload"]
    if event["system"] == "cs":
        cta = payload["data"]["cta"]
        args = ("cs", cta["CompanyId"], None, str(cta["DueDate"])[:10])
    else:
        obj = payload["data"]["object"]
        args = ("billing", obj["customer"], obj["id"], None)
    facts = await gather(*args)
    if facts is None:
        note("renewal prep", "skipped", f"{args[0]} {args[1]}: not managed by lockstep")
        return {"status": "not managed"}
    out: dict[str, Any] = {"account": facts["account"], "facts": facts}
    if facts.get("crm"):
        try:
            await crm_fields(facts["crm"], facts)
            out["extended"] = await crm_extended(facts["crm"], facts)
        except Exception as exc:  # a merge deleted the CRM account since gather: the survivor keeps its own
            if not isinstance(unwrap(exc), NotFoundError):
                raise
            note("crm renewal fields", "skipped", f"CRM account {facts['crm']} is gone (merged): {unwrap(exc)}"[:500])
            out["crm"] = "gone"
    if facts.get("cs") and facts.get("subscription") and facts.get("renewal_date"):
        out["cs"] = await cs_renewal_date(facts["cs"], facts["account"], facts["renewal_date"])
    return out


register_flow(["cs:cta.created", "billing:customer.subscription.updated"], business_key, renewal_prep, name=FLOW)
