"""Flow 5, account merge: a CRM account merge is carried to the crosswalk, the ERP, billing and CS, so the
surviving account owns everything and no duplicate customer stays active.

Trigger: `crm:AccountChangeEvent`. A Salesforce merge is one transaction: UPDATE of the master, then DELETE
of each loser carrying `MasterRecordId`. Business key: `account-merge:<transactionKey>`, so the loser DELETEs
of one merge (two in a 3-way merge) start ONE flow. The master's UPDATE alone cannot be told apart from an
ordinary edit (it carries no merge marker), so it starts nothing; the flow reads the merge from the CRM
instead (queryAll: losers with MasterRecordId = master).

Steps:
 1. crm.read        the master (mapped) and every account merged into it (queryAll, IsDeleted + MasterRecordId)
 2. crosswalk       get_or_create the master and each loser; merge(loser -> winner, source "crm", at = commit
                    time) with history; returns the native ids per system of the winner and of each merged-in
                    canonical id (read from `aliases()`, so a re-run after the merge sees the same thing)
 3. erp             the winner's own customer stays (or, if it has none, the first loser's is adopted);
                    every other one: its open, unbilled sales orders are re-pointed to the survivor (PATCH
                    entity), then it is marked inactive with a comment naming the survivor. Billed orders and
                    invoices cannot change customer in NetSuite: they stay on the inactive customer, which the
                    crosswalk resolves to the winner (reachable, not orphaned). Survivor fields: ERP-owned
                    values (legal name, tax registration) survive from the ERP records, the CRM-owned name
                    from the CRM master.
 4. billing         Stripe cannot move a subscription between customers, so: the surviving customer is the
                    winner's own (or the adopted loser's); each other customer is marked merged in metadata
                    (`lockstep_status=merged`, `lockstep_merged_into`, `lockstep_account` = winner); each of
                    its subscriptions is re-pointed in metadata (`lockstep_account` = winner,
                    `lockstep_billing_customer` = survivor customer); its invoices stay on it and are reached
                    through the crosswalk aliases. The survivor gets the CRM-owned name and a list of merged
                    customers. ARR (billing-owned) is summed over all live subscriptions.
 5. cs              the surviving company (winner's own, or the adopted loser's) gets the name and the summed
                    ARR; each other company is set Status Inactive and a timeline activity on the survivor
                    records the merge (ExternalId per merge and company).
Every write carries an idempotency key from (business key, step[, record]); crosswalk merges are replays-safe.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

from core.connectors.errors import NotFoundError, VendorError
from core.flows._common import (
    LIVE_SUBSCRIPTION_STATUSES,
    STEP_RETRY,
    billing_list_subscriptions,
    billing_preflight,
    crosswalk,
    cs_company_by_gsid,
    cs_update_company_by_gsid,
    erp_sales_orders_of,
    erp_update_record,
    idem_key,
    note,
    survive,
    unwrap,
)
from core.intake.envelopes import IntakeEvent
from core.intake.router import register_flow
from core.model import Money
from core.wiring import connections

__all__ = ["account_merge", "business_key"]

FLOW = "account_merge"
MERGED = "merged"


def business_key(event: IntakeEvent) -> str | None:
    payload = event.payload.get("payload") or {}
    header = payload.get("ChangeEventHeader") or {}
    if header.get("changeType") != "DELETE" or not payload.get("MasterRecordId") or not header.get("transactionKey"):
        return None
    return f"account-merge:{header['transactionKey']}"


def _master_of(event: dict[str, Any]) -> tuple[str, str, int | None]:
    payload = event["payload"]["payload"]
    header = payload["ChangeEventHeader"]
    return payload["MasterRecordId"], header["recordIds"][0], header.get("commitTimestamp")


# -- steps ------------------------------------------------------------------------------------------------


@DBOS.step(name="merge.crm.read", **STEP_RETRY)
async def read_crm(master_id: str, loser_id: str) -> dict[str, Any]:
    crm = connections().crm
    master = await crm.get_account(master_id)
    rows = await crm.query(f"SELECT Id, Name, IsDeleted, MasterRecordId FROM Account WHERE MasterRecordId = "
                           f"'{master.id}'", include_deleted=True)
    losers = sorted({str(r["Id"]) for r in rows if r.get("IsDeleted")} | {loser_id})
    return {"master": {"id": master.id, "name": master.name, "industry": master.industry,
                       "country": master.country_code(), "deleted": master.is_deleted},
            "losers": losers}


@DBOS.step(name="merge.crosswalk", **STEP_RETRY)
def merge_ids(master_id: str, loser_ids: list[str], at_ms: int | None) -> dict[str, Any]:
    xw = crosswalk()
    winner = xw.resolve(xw.get_or_create("account", "crm", master_id))
    at = datetime.fromtimestamp(at_ms / 1000, UTC) if at_ms else datetime.now(UTC)
    merged = []
    for loser_crm in loser_ids:
        loser = xw.get_or_create("account", "crm", loser_crm)
        if loser != winner and xw.resolve(loser) != winner:
            xw.merge(loser, winner, source="crm", at=at)
            note("core", f"crosswalk merge {loser} -> {winner}", "merged", detail=f"crm {loser_crm}")
        merged.append(loser_crm)
    # Native ids per canonical id of the group (the winner's own first; merged-in ones keep their own id).
    members: dict[str, dict[str, str]] = {}
    for ref in xw.aliases(winner):
        members.setdefault(ref.canonical_id, {}).setdefault(ref.system, ref.native_id)
    own = members.pop(winner, {})
    others = [{"canonical": cid, "refs": refs} for cid, refs in sorted(members.items())]
    return {"winner": winner, "winner_refs": own, "others": others, "losers_crm": merged}


def _plan(system: str, ids: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(survivor native id, the others' native ids) for one system: the winner's own, else the first loser's."""
    natives = [o["refs"][system] for o in ids["others"] if system in o["refs"]]
    own = ids["winner_refs"].get(system)
    if own:
        return own, [n for n in natives if n != own]
    if natives:
        return natives[0], natives[1:]
    return None, []


@DBOS.step(name="merge.erp", **STEP_RETRY)
async def repoint_erp(bk: str, ids: dict[str, Any], master: dict[str, Any]) -> dict[str, Any]:
    erp = connections().erp
    survivor_id, others = _plan("erp", ids)
    if survivor_id is None:
        return {"survivor": None, "inactivated": [], "moved_orders": [], "kept_orders": []}
    survivor = await erp.get_customer(survivor_id)
    views = [survivor]
    for other in others:
        try:
            views.append(await erp.get_customer(other))
        except NotFoundError:
            continue
    values, _ = survive("account", {
        "crm": {"name": master["name"]},
        "erp": [{"legal_name": v.legal_name, "tax_registration": v.tax_number} for v in views],
    })
    patch: dict[str, Any] = {"companyName": values["name"]}
    if values.get("legal_name") and not survivor.legal_name:
        patch["legalName"] = values["legal_name"]
    if values.get("tax_registration") and not survivor.tax_number:
        donor = next(v for v in views if v.tax_number == values["tax_registration"])
        patch["taxRegistration"] = {"country": donor.tax_country, "number": donor.tax_number}
    await erp_update_record(erp, "customer", survivor.id, patch)
    moved, kept, inactivated = [], [], []
    for view in views[1:]:
        for order_id in await erp_sales_orders_of(erp, view.id):
            order = await erp.get_sales_order(order_id)
            if order.customer_id == survivor.id:
                moved.append(order.id)  # re-pointed by an earlier run of this step
                continue
            if order.status.value in ("pending_approval", "approved"):
                try:
                    await erp_update_record(erp, "salesOrder", order.id, {"entity": {"id": survivor.id}})
                    moved.append(order.id)
                    note("erp", f"salesOrder {order.id} moved to {survivor.id}", MERGED)
                    continue
                except VendorError as exc:  # e.g. billed meanwhile: it stays, reachable through the alias
                    if exc.retryable:
                        raise
                    detail = str(exc)[:300]
            else:
                detail = f"{order.status.value}: billed transactions keep their customer"
            kept.append(order.id)
            note("erp", f"salesOrder {order.id} stays on {view.id}", "kept", detail=detail)
        if not view.inactive:
            await erp_update_record(erp, "customer", view.id, {
                "isInactive": True, "comments": f"Merged into customer {survivor.id} ({bk})"[:999]})
        inactivated.append(view.id)
        note("erp", f"customer {view.id} merged into {survivor.id}", MERGED)
    return {"survivor": survivor.id, "inactivated": inactivated, "moved_orders": moved, "kept_orders": kept}


@DBOS.step(name="merge.billing", **STEP_RETRY)
async def repoint_billing(bk: str, ids: dict[str, Any], master: dict[str, Any]) -> dict[str, Any]:
    billing = connections().billing
    survivor_id, others = _plan("billing", ids)
    if survivor_id is None:
        return {"survivor": None, "merged": [], "subscriptions": [], "arr_minor": None, "currency": None}
    await billing_preflight(billing)
    winner = ids["winner"]
    survivor = await billing.get_customer(survivor_id)
    subs_out, arr, currency = [], 0, survivor.currency
    merged = []
    for customer_id in [survivor_id, *others]:
        for row in await billing_list_subscriptions(billing, customer_id):
            if row.get("status") not in LIVE_SUBSCRIPTION_STATUSES:
                continue
            sub = await billing.get_subscription(str(row["id"]))
            meta = {"lockstep_account": winner, "lockstep_billing_customer": survivor_id}
            if customer_id != survivor_id:
                meta["lockstep_merged_from"] = customer_id
            if any(sub.metadata.get(k) != v for k, v in meta.items()):
                await billing.update_subscription(sub.id, idempotency_key=idem_key(bk, f"billing.sub.{sub.id}"),
                                                  metadata=meta)
            subs_out.append(sub.id)
            currency = currency or sub.currency
            arr += sum(i.unit_amount * i.quantity * (12 if i.interval.value == "month" else 1) for i in sub.items)
        if customer_id != survivor_id:
            current = await billing.get_customer(customer_id)
            if current.metadata.get("lockstep_status") != MERGED:
                await billing.update_customer(customer_id, {"metadata": {
                    "lockstep_status": MERGED, "lockstep_merged_into": survivor_id, "lockstep_account": winner}},
                    idempotency_key=idem_key(bk, f"billing.customer.{customer_id}"))
            merged.append(customer_id)
            note("billing", f"customer {customer_id} merged into {survivor_id}", MERGED)
    already = [c for c in (survivor.metadata.get("lockstep_merged_customers") or "").split(",") if c]
    listed = ",".join(sorted(set(already) | set(merged)))[:500]
    await billing.update_customer(survivor_id, {"name": master["name"], "metadata": {
        "lockstep_account": winner, "lockstep_status": "active", "lockstep_merged_customers": listed}},
        idempotency_key=idem_key(bk, "billing.survivor"))
    return {"survivor": survivor_id, "merged": merged, "subscriptions": subs_out, "arr_minor": arr,
            "currency": currency}


@DBOS.step(name="merge.cs", **STEP_RETRY)
async def repoint_cs(bk: str, ids: dict[str, Any], master: dict[str, Any], billing: dict[str, Any]) -> dict[str, Any]:
    cs = connections().cs
    survivor_id, others = _plan("cs", ids)
    if survivor_id is None:
        return {"survivor": None, "inactivated": []}
    survivor = await cs_company_by_gsid(cs, survivor_id)
    fields: dict[str, Any] = {"Name": master["name"], "Status": "Active"}
    if billing.get("arr_minor") is not None and billing.get("currency"):
        fields["ARR"] = float(Money(amount_minor=billing["arr_minor"], currency=billing["currency"]).to_major())
    await cs_update_company_by_gsid(cs, survivor_id, fields)
    inactivated = []
    for gsid in others:
        try:
            company = await cs_company_by_gsid(cs, gsid)
        except NotFoundError:
            continue
        if company.get("Status") != "Inactive":
            await cs_update_company_by_gsid(cs, gsid, {"Status": "Inactive"})
        await cs.log_activity(external_id=idem_key(bk, f"cs.merged.{gsid}"), company_id=survivor_id,
                              subject=f"Merged {company.get('Name')} into this company",
                              notes=f"CRM merge {bk}; merged company {gsid} is inactive")
        inactivated.append(gsid)
        note("cs", f"company {gsid} merged into {survivor_id}", MERGED)
    return {"survivor": survivor_id, "external_id": survivor.get("ExternalId"), "inactivated": inactivated}


# -- the flow ---------------------------------------------------------------------------------------------


async def account_merge(event: dict[str, Any]) -> dict[str, Any]:
    bk: str = event["business_key"]
    master_id, loser_id, at_ms = _master_of(event)
    try:
        crm = await read_crm(master_id, loser_id)
        ids = merge_ids(crm["master"]["id"], crm["losers"], at_ms)
        erp = await repoint_erp(bk, ids, crm["master"])
        billing = await repoint_billing(bk, ids, crm["master"])
        cs = await repoint_cs(bk, ids, crm["master"], billing)
    except Exception as exc:
        cause = unwrap(exc)
        if cause is exc:
            raise
        raise cause from exc
    return {"outcome": "merged", "winner": ids["winner"], "merged": [o["canonical"] for o in ids["others"]],
            "erp": erp, "billing": billing, "cs": cs}


register_flow(["crm:AccountChangeEvent"], business_key, account_merge, name=FLOW)
