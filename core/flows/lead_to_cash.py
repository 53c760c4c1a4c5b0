"""Flow 1, lead to cash: an opportunity closed won in the CRM becomes an ERP customer (tax registration
validated by the ERP) and sales order, a billing customer and subscription, and a CS company with its
onboarding plan.

Trigger: `crm:OpportunityChangeEvent`, an UPDATE whose StageName became "Closed Won" (or IsWon true).
Business key: `closed-won:<opportunity id>` (the workflow id), so duplicate or repeated change events of one
close never start a second flow.

Steps (each a DBOS step, checkpointed; retried for transient errors on top of the connectors' own retries):
 1. crm.read        the opportunity and its account (a raw read too, for the org's `Tax_Registration__c`)
 2. crosswalk       account: get_or_create (crm) -> canonical id; opportunity likewise
 3. erp.customer    upsert by externalId `lockstep-<canonical id>` (account master data: one per account);
                    the tax registration from the CRM is only a proposal (the ERP owns the field): it is sent
                    when the ERP customer has none, and the ERP validates it per country. Linked in the crosswalk.
 4. erp.salesOrder  created once per idempotency key `<business key>:erp.salesOrder` (its externalId)
 5. billing.customer  looked up in the crosswalk, else created (Idempotency-Key per account); linked
 6. billing.subscription  a yearly subscription (collection by invoice, net 30) at the deal amount; looked up by
                    its `lockstep_flow` metadata before creating (a replay never makes a second one)
 7. cs.company      upsert by ExternalId = canonical account id (Kick Off, ARR from the subscription); linked
 8. cs.onboarding   the "Standard Onboarding" success plan (one active per company and template)

Ownership: the CRM snapshot becomes canonical only in the fields the CRM owns (name, industry, ...); its
tax number is recorded as an ignored non-owner write and only proposed to the ERP. Currency is billing's: an
existing billing customer's currency wins, else the country's.

Failure handling:
- transient errors (5xx, 429, timeouts): the connectors retry in-call, then the step retries (STEP_RETRY).
- a hard failure of the billing subscription (a 4xx refusal after the ERP order exists) is compensated:
  any subscription of this flow is cancelled, the ERP sales order is deleted (the REST record service cannot
  set "Cancelled"; deleting an unbilled order is its equivalent), each undo is recorded in the trace, and
  the flow is parked in the DLQ with CompensatedError (reason + what was undone). A replay re-runs the
  subscription step, which re-creates the order first (same externalId), so a fixed replay completes once.
  Customer records (ERP / billing / CS) are account master data and are kept.
- schema drift (SchemaDriftError) and everything else: no compensation, the error escapes and the runtime
  parks the flow in the DLQ; the billing steps read first (preflight), so a billing version switch is
  caught before anything is written there. Replay continues from the failed step with the same keys.
- CS failures after the subscription exists are not compensated (the deal is booked): parked for replay.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from typing import Any

from dbos import DBOS

from core.connectors.billing import SubscriptionItemInput
from core.connectors.erp import eid
from core.connectors.errors import NotFoundError, SchemaDriftError, VendorError
from core.connectors.mapping.cs import CompanyInput
from core.connectors.mapping.erp import CustomerInput, ErpSalesOrder, LineInput
from core.flows._common import (
    LIVE_SUBSCRIPTION_STATUSES,
    STEP_RETRY,
    SUBSIDIARY_BY_COUNTRY,
    CompensatedError,
    Compensation,
    account_key,
    billing_cancel_subscription,
    billing_ensure_price,
    billing_ensure_product,
    billing_list_subscriptions,
    billing_preflight,
    crm_raw_record,
    crosswalk,
    currency_for,
    erp_delete_sales_order,
    idem_key,
    note,
    owned,
    unwrap,
)
from core.intake.envelopes import IntakeEvent
from core.intake.router import register_flow
from core.model import Money
from core.wiring import connections

__all__ = ["PLAN", "business_key", "lead_to_cash"]

_log = logging.getLogger("lockstep.core.flows.lead_to_cash")
FLOW = "lead_to_cash"
TAX_FIELD = "Tax_Registration__c"
# The product a closed-won deal books (the CRM mock has no opportunity line items): one yearly platform
# subscription at the deal amount. ERP item by external id (the ERP's demo catalog), billing product by sku.
PLAN = {"sku": "PLAT-ANNUAL", "erp_item": "ITEM-PLAT-ANNUAL", "name": "Platform subscription (annual)",
        "interval": "year", "onboarding": "Standard Onboarding"}


def business_key(event: IntakeEvent) -> str | None:
    payload = event.payload.get("payload") or {}
    header = payload.get("ChangeEventHeader") or {}
    if header.get("changeType") != "UPDATE" or not header.get("recordIds"):
        return None
    changed = set(header.get("changedFields") or [])
    won = payload.get("StageName") == "Closed Won" or payload.get("IsWon") is True
    if not won or not changed & {"StageName", "IsWon"}:
        return None
    return f"closed-won:{header['recordIds'][0]}"


# -- steps ------------------------------------------------------------------------------------------------


@DBOS.step(name="l2c.crm.read", **STEP_RETRY)
async def read_crm(opportunity_id: str) -> dict[str, Any]:
    crm = connections().crm
    opp = await crm.get_opportunity(opportunity_id)
    out: dict[str, Any] = {"opportunity_id": opp.id, "name": opp.name, "won": opp.is_won,
                           "amount": str(opp.amount if opp.amount is not None else Decimal(0)),
                           "close_date": opp.close_date.isoformat(), "account_id": opp.account_id}
    if not opp.is_won or opp.account_id is None:
        return out
    account = await crm.get_account(opp.account_id)
    raw = await crm_raw_record(crm, "Account", opp.account_id)
    country = account.country_code()
    if country is None:
        raise SchemaDriftError("crm", "Account", "BillingCountry",
                               f"{account.billing_country!r} is not a country the mapping knows",
                               pinned=crm.api_version)
    out["account"] = {"id": account.id, "name": account.name, "industry": account.industry,
                      "country": country, "website": account.website,
                      "tax_number": raw.get(TAX_FIELD) if isinstance(raw.get(TAX_FIELD), str) else None}
    return out


@DBOS.step(name="l2c.crosswalk", **STEP_RETRY)
def map_ids(snapshot: dict[str, Any], opportunity_id: str) -> dict[str, str]:
    # The CRM's view becomes canonical only where the CRM owns the field; its tax number is a proposal.
    owned("account", "crm", {"name": snapshot["name"], "industry": snapshot["industry"],
                             "country": snapshot["country"], "tax_registration": snapshot["tax_number"]})
    xw = crosswalk()
    return {"account": xw.get_or_create("account", "crm", snapshot["id"]),
            "opportunity": xw.get_or_create("opportunity", "crm", opportunity_id)}


@DBOS.step(name="l2c.erp.customer", **STEP_RETRY)
async def erp_customer(account_id: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    erp = connections().erp
    xw = crosswalk()
    known = xw.native(account_id, "erp")
    external = f"lockstep-{account_id}"
    existing = None
    try:
        existing = await erp.get_customer(known if known else eid(external))
    except NotFoundError:
        existing = None
    country = snapshot["country"]
    if existing is None:
        subsidiary = SUBSIDIARY_BY_COUNTRY.get(country, "1")
        data: dict[str, Any] = {"company_name": snapshot["name"], "subsidiary_id": subsidiary}
        if snapshot.get("tax_number"):
            data.update(tax_country=country, tax_number=snapshot["tax_number"])
        customer = await erp.upsert_customer(external, CustomerInput(**data))
        note("erp", "customer created", "success", detail=f"{customer.id} tax {customer.tax_number or '-'}")
    else:
        # The ERP owns legal name and tax registration: keep its values; the CRM's name is the account name.
        data = {"company_name": snapshot["name"]}
        if snapshot.get("tax_number") and not existing.tax_number:
            data.update(tax_country=country, tax_number=snapshot["tax_number"])
        customer = await erp.update_customer(existing.id, CustomerInput(**data))
    xw.link(account_id, "erp", customer.id)
    return {"id": customer.id, "currency": customer.currency, "tax_number": customer.tax_number,
            "legal_name": customer.legal_name}


async def _ensure_order(key: str, customer_id: str, opp: dict[str, Any]) -> dict[str, Any]:
    erp = connections().erp
    order = await erp.create_sales_order(
        idempotency_key=key, customer=customer_id,
        lines=[LineInput(item_external_id=PLAN["erp_item"], quantity=1, rate=Decimal(opp["amount"]),
                         description=opp["name"][:999])],
        tran_date=date.fromisoformat(opp["close_date"]), memo=f"Closed won: {opp['name']}"[:999],
        other_ref_num=opp["opportunity_id"][:45])
    return _order_view(order)


def _order_view(order: ErpSalesOrder) -> dict[str, Any]:
    return {"id": order.id, "tran_id": order.tran_id, "total": str(order.total), "currency": order.currency}


@DBOS.step(name="l2c.erp.salesOrder", **STEP_RETRY)
async def erp_sales_order(key: str, customer_id: str, opp: dict[str, Any]) -> dict[str, Any]:
    order = await _ensure_order(key, customer_id, opp)
    crosswalk().get_or_create("order", "erp", order["id"])
    return order


@DBOS.step(name="l2c.billing.customer", **STEP_RETRY)
async def billing_customer(account_id: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    billing = connections().billing
    xw = crosswalk()
    await billing_preflight(billing)
    known = xw.native(account_id, "billing")
    if known:
        customer = await billing.get_customer(known)
    else:
        customer = await billing.create_customer(
            idempotency_key=idem_key(account_key(account_id), "billing.customer"), name=snapshot["name"],
            metadata={"lockstep_account": account_id, "crm_account_id": snapshot["id"]})
        xw.link(account_id, "billing", customer.id)
    return {"id": customer.id, "currency": customer.currency}


@DBOS.step(name="l2c.billing.subscription", **STEP_RETRY)
async def billing_subscription(bk: str, attempt_id: str, account_id: str, customer_id: str, currency: str,
                               order_key: str, erp_customer_id: str, opp: dict[str, Any]) -> dict[str, Any]:
    billing = connections().billing
    await billing_preflight(billing)
    # A compensated earlier attempt deleted the order: re-create it under the same externalId. Read first, so
    # the usual case (the order is there) is one GET, not a refused create (a 400 in every flow's trace).
    try:
        order = _order_view(await connections().erp.get_sales_order(eid(order_key)))
    except NotFoundError:
        order = await _ensure_order(order_key, erp_customer_id, opp)
    for row in await billing_list_subscriptions(billing, customer_id):
        if (row.get("metadata") or {}).get("lockstep_flow") == bk and row.get("status") in LIVE_SUBSCRIPTION_STATUSES:
            sub = await billing.get_subscription(str(row["id"]))
            break
    else:
        product = await billing_ensure_product(billing, sku=PLAN["sku"], name=PLAN["name"])
        minor = Money.from_major(Decimal(opp["amount"]), currency).amount_minor
        price = await billing_ensure_price(billing, product=product, currency=currency, unit_amount=minor,
                                           interval=PLAN["interval"])
        # The key carries the attempt: a refused create is stored by Stripe under its key, so a replay
        # after the cause was fixed must ask anew (the metadata lookup above prevents a second subscription).
        sub = await billing.create_subscription(
            idempotency_key=idem_key(attempt_id, "billing.subscription"), customer_id=customer_id,
            items=[SubscriptionItemInput(price=price, quantity=1, metadata={"sku": PLAN["sku"]})],
            metadata={"lockstep_flow": bk, "lockstep_account": account_id, "erp_sales_order": order["id"]},
            extra={"collection_method": "send_invoice", "days_until_due": 30})
    crosswalk().get_or_create("subscription", "billing", sub.id)
    arr = sum(i.unit_amount * i.quantity * (12 if i.interval.value == "month" else 1) for i in sub.items)
    return {"id": sub.id, "status": sub.status.value, "order": order, "arr_minor": arr, "currency": sub.currency,
            "renewal_date": sub.current_period_end.date().isoformat()}


@DBOS.step(name="l2c.compensate", retries_allowed=True, max_attempts=3, interval_seconds=0.2)
async def compensate(bk: str, customer_id: str | None, order_key: str, reason: str) -> dict[str, list[str]]:
    conn = connections()
    comp = Compensation()
    if customer_id:
        try:
            for row in await billing_list_subscriptions(conn.billing, customer_id):
                mine = (row.get("metadata") or {}).get("lockstep_flow") == bk
                if mine and row.get("status") in LIVE_SUBSCRIPTION_STATUSES:
                    status = await billing_cancel_subscription(conn.billing, str(row["id"]),
                                                               comment=f"lockstep compensation: {reason}")
                    comp.undone.append(f"billing subscription {row['id']} {status}")
        except Exception as exc:  # record and go on: the other undo steps still run
            comp.failed.append(f"billing subscriptions ({exc})")
    try:
        order = await conn.erp.get_sales_order(eid(order_key))
        if await erp_delete_sales_order(conn.erp, order.id):
            comp.undone.append(f"erp salesOrder {order.id} deleted")
    except NotFoundError:
        pass
    except Exception as exc:
        comp.failed.append(f"erp salesOrder ({exc})")
    for item in comp.undone:
        note("core", f"compensate: {item}", "compensated", detail=reason[:500])
    for item in comp.failed:
        note("core", f"compensate failed: {item}", "error", detail=reason[:500])
    return {"undone": comp.undone, "failed": comp.failed}


@DBOS.step(name="l2c.cs.company", **STEP_RETRY)
async def cs_company(account_id: str, snapshot: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    cs = connections().cs
    data = CompanyInput(name=snapshot["name"], stage="Kick Off", status="Active",
                        arr=Money(amount_minor=sub["arr_minor"], currency=sub["currency"]),
                        renewal_date=date.fromisoformat(sub["renewal_date"]))
    result = await cs.upsert_company(account_id, data)
    crosswalk().link(account_id, "cs", result.gsid)
    return {"gsid": result.gsid, "action": result.action}


@DBOS.step(name="l2c.cs.onboarding", **STEP_RETRY)
async def cs_onboarding(company_id: str, start: str) -> dict[str, Any]:
    plan = await connections().cs.start_onboarding(company_id, template=PLAN["onboarding"],
                                                   start_date=date.fromisoformat(start))
    return {"id": plan.gsid, "template": plan.template, "status": plan.status}


# -- the flow ---------------------------------------------------------------------------------------------


async def lead_to_cash(event: dict[str, Any]) -> dict[str, Any]:
    bk: str = event["business_key"]
    attempt_id = DBOS.workflow_id or bk
    opportunity_id = bk.split(":", 1)[1]
    try:
        opp = await read_crm(opportunity_id)
        if not opp["won"] or "account" not in opp:
            note("core", "lead_to_cash: not a won opportunity with an account", "skipped")
            return {"outcome": "skipped", "opportunity": opportunity_id}
        snapshot = opp["account"]
        ids = map_ids(snapshot, opportunity_id)
        account_id = ids["account"]
        erp_cust = await erp_customer(account_id, snapshot)
        order_key = idem_key(bk, "erp.salesOrder")
        order = await erp_sales_order(order_key, erp_cust["id"], opp)
        bill_cust = await billing_customer(account_id, snapshot)
        currency = bill_cust["currency"] or erp_cust["currency"] or currency_for(snapshot["country"])
        try:
            sub = await billing_subscription(bk, attempt_id, account_id, bill_cust["id"], currency, order_key,
                                             erp_cust["id"], opp)
        except Exception as exc:
            cause = unwrap(exc)
            if isinstance(cause, VendorError) and not cause.retryable:
                undone = await compensate(bk, bill_cust["id"], order_key, str(cause))
                raise CompensatedError(str(cause), Compensation(undone["undone"], undone["failed"])) from cause
            raise cause from exc
        company = await cs_company(account_id, snapshot, sub)
        plan = await cs_onboarding(company["gsid"], opp["close_date"])
    except Exception as exc:
        cause = unwrap(exc)
        if cause is exc:
            raise
        raise cause from exc
    return {"outcome": "completed", "account": account_id, "erp_customer": erp_cust["id"], "order": order["id"],
            "billing_customer": bill_cust["id"], "subscription": sub["id"], "cs_company": company["gsid"],
            "onboarding": plan}


register_flow(["crm:OpportunityChangeEvent"], business_key, lead_to_cash, name=FLOW)
