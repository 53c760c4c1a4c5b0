"""The scenario vocabulary that is more than one API call: setup factories and sandbox user actions.

Everything goes through the vendor, control and core HTTP APIs (never into a process's memory), so the
same factories work in-process and against `lockstep up`.

Names are generated from the seed (`Globex-<hash of seed, scenario, binding, run>`): the run nonce keeps a
second run against the same live servers from meeting the first run's records, and reports never show
names (see bindings.mask), so the same seed still gives the same report.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from lockstep.scenario.model import AccountSpec, BookedSpec, DealSpec

if TYPE_CHECKING:
    from lockstep.scenario.engine import ScenarioRun

__all__ = ["ACTIONS", "ActionError", "make_account", "make_booked", "make_deal"]

ERP_RECORD = "/services/rest/record/v1"
SCENARIO_ITEM = "ITEM-LS-SCENARIO"
L2C_ITEM = "ITEM-PLAT-ANNUAL"
COMPANIES = ("Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne", "Soylent",
             "Acme", "Vandelay", "Pied", "Dunder", "Massive", "Gringotts")


class ActionError(RuntimeError):
    """A set-up or action step could not be done (the message says which call answered what)."""


def ok(response: httpx.Response, what: str) -> Any:
    if response.is_error:
        raise ActionError(f"{what}: {response.request.method} {response.request.url.path} -> "
                          f"{response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def company_name(run: ScenarioRun, binding: str) -> str:
    """A unique, seed-derived company name for one binding of one scenario run."""
    rng = random.Random(f"{run.seed}:{run.loaded.scenario.name}:{binding}")
    digest = hashlib.sha256(f"{run.seed}:{run.loaded.scenario.name}:{binding}:{run.nonce}".encode()).hexdigest()
    return f"{rng.choice(COMPANIES)}-{digest[:10]}"


# -- one-time estate preparation (idempotent, shared by every scenario on a target) ---------------------------

async def _once(run: ScenarioRun, what: str, fn: Any) -> None:
    """Run an idempotent estate preparation once per sandbox (remembered on the sandbox object itself)."""
    box = run.target.sandbox
    done: set[str] = box.__dict__.setdefault("_scenario_prepared", set())
    if what in done:
        return
    locks: dict[tuple[int, str], asyncio.Lock] = box.__dict__.setdefault("_scenario_prepare_locks", {})
    lock = locks.setdefault((id(asyncio.get_running_loop()), what), asyncio.Lock())
    async with lock:
        if what not in done:
            await fn(run)
            done.add(what)


async def _scenario_item(run: ScenarioRun) -> None:
    t = run.target
    if (await t.call("erp", "GET", f"{ERP_RECORD}/item/eid:{SCENARIO_ITEM}")).status_code == 404:
        made = await t.call("erp", "POST", f"{ERP_RECORD}/item", json={
            "itemId": "LS-SCENARIO", "itemType": "Service", "externalId": SCENARIO_ITEM, "basePrice": 10})
        if made.is_error and "already" not in made.text:
            ok(made, "ERP scenario item")


async def _l2c_estate(run: ScenarioRun) -> None:
    """What lead to cash expects of an org: the tax field on Account, the ERP's catalog item."""
    t = run.target
    fields = ok(await t.call("crm", "GET", f"{t.api_root('crm')}/sobjects/Account/describe"), "CRM describe")
    if not any(f["name"] == "Tax_Registration__c" for f in fields["fields"]):
        ok(await t.control("crm", "POST", "/actions", json={
            "action": "declare_field", "object": "Account",
            "field": {"name": "Tax_Registration__c", "type": "string", "length": 40}}), "CRM tax field")
    if (await t.call("erp", "GET", f"{ERP_RECORD}/item/eid:{L2C_ITEM}")).status_code == 404:
        ok(await t.control("erp", "POST", "/seed", json={"customers": 0, "items": True}), "ERP catalog")


async def link(run: ScenarioRun, entity: str, refs: dict[str, str]) -> str:
    body = ok(await run.target.core("POST", "/crosswalk/links", json={"entity": entity, "refs": refs}),
              f"crosswalk link {entity}")
    return str(body["id"])


# -- setup factories -------------------------------------------------------------------------------------------


async def make_account(run: ScenarioRun, spec: AccountSpec) -> dict[str, Any]:
    """An account in all four systems, linked as lead to cash links it; billing on its own test clock."""
    await _once(run, "scenario-item", _scenario_item)
    t = run.target
    name = company_name(run, spec.account)
    crm_id = ok(await t.call("crm", "POST", f"{t.api_root('crm')}/sobjects/Account",
                             json={"Name": name, "BillingCountry": "US"}), "CRM account")["id"]
    canonical = await link(run, "account", {"crm": crm_id})
    ok(await t.call("erp", "PUT", f"{ERP_RECORD}/customer/eid:{name}",
                    json={"companyName": name, "subsidiary": {"id": "1"}}), "ERP customer")
    erp_id = ok(await t.call("erp", "GET", f"{ERP_RECORD}/customer/eid:{name}"), "ERP customer")["id"]
    rate = spec.unit_amount / 100 * (12 if spec.interval == "month" else 1)  # the contract order: one year
    ok(await t.call("erp", "POST", f"{ERP_RECORD}/salesOrder", json={
        "entity": {"id": erp_id}, "externalId": f"so-{name}",
        "item": {"items": [{"item": {"externalId": SCENARIO_ITEM}, "quantity": spec.quantity, "rate": rate}]}}),
        "ERP sales order")
    order = ok(await t.call("erp", "GET", f"{ERP_RECORD}/salesOrder/eid:so-{name}"), "ERP sales order")["id"]
    gsid = ok(await t.call("cs", "POST", "/v1/data/objects/Company", params={"keys": "ExternalId"},
                           json={"records": [{"Name": name, "ExternalId": canonical}]}),
              "CS company")["data"]["records"][0]["Gsid"]
    now = int(ok(await t.control("billing", "GET", "/clock"), "billing clock")["now"])
    clock = ok(await t.call("billing", "POST", "/v1/test_helpers/test_clocks", form={"frozen_time": now}),
               "billing test clock")["id"]
    customer = ok(await t.call("billing", "POST", "/v1/customers", form={
        "name": name, "email": f"{name.lower()}@example.com", "test_clock": clock,
        "metadata[lockstep_account]": canonical}), "billing customer")["id"]
    await link(run, "account", {"crm": crm_id, "erp": erp_id, "cs": gsid, "billing": customer})
    await attach_card(run, customer, spec.card)
    product = ok(await t.call("billing", "POST", "/v1/products", form={"name": f"Platform {name}"}),
                 "billing product")["id"]
    price = ok(await t.call("billing", "POST", "/v1/prices", form={
        "product": product, "unit_amount": spec.unit_amount, "currency": spec.currency,
        "recurring[interval]": spec.interval}), "billing price")["id"]
    out: dict[str, Any] = {"name": name, "email": f"{name.lower()}@example.com",
                           "canonical": canonical, "crm": crm_id, "erp": erp_id, "order": order,
                           "cs": gsid, "billing": customer, "clock": clock, "price": price, "product": product,
                           "subscription": None, "item": None, "invoice": None}
    if spec.subscribe:
        form: dict[str, Any] = {"customer": customer, "items[0][price]": price, "items[0][quantity]": spec.quantity,
                                "metadata[erp_sales_order]": order, "metadata[sku]": "LS-SCENARIO",
                                "collection_method": spec.collection}
        if spec.collection == "send_invoice":
            form["days_until_due"] = 30
        sub = ok(await t.call("billing", "POST", "/v1/subscriptions", form=form), "billing subscription")
        out.update(subscription=sub["id"], item=sub["items"]["data"][0]["id"], invoice=sub.get("latest_invoice"))
        await link(run, "subscription", {"billing": sub["id"], "erp": order})
    await t.quiet()
    return out


async def make_deal(run: ScenarioRun, spec: DealSpec | BookedSpec, binding: str) -> dict[str, Any]:
    """A CRM account with an open opportunity, seeded quietly (no change events)."""
    await _once(run, "l2c-estate", _l2c_estate)
    t = run.target
    name = company_name(run, binding)
    account: dict[str, Any] = {"@ref": "acc", "Name": name, "BillingCountry": spec.country}
    if spec.tax:
        account["Tax_Registration__c"] = spec.tax
    clock = ok(await t.control("crm", "GET", "/clock"), "CRM clock")
    today = datetime.fromtimestamp(float(clock["now"]), UTC).date() if clock else date.today()
    seeded = ok(await t.control("crm", "POST", "/seed", json={"demo": False, "records": {
        "Account": [account],
        "Opportunity": [{"AccountId": "@acc", "Name": f"{name} - New Business", "StageName": "Prospecting",
                         "CloseDate": (today + timedelta(days=3)).isoformat(), "Amount": spec.amount}]}}),
        "CRM seed")["created"]
    opportunity = seeded["Opportunity"][0]
    return {"name": name, "crm": seeded["Account"][0], "opportunity": opportunity,
            "flow": f"closed-won:{opportunity}"}


async def make_booked(run: ScenarioRun, spec: BookedSpec) -> dict[str, Any]:
    """A deal closed won and booked by lead to cash; every system's id read back through the APIs."""
    deal = await make_deal(run, spec, spec.booked)
    await close_opportunity(run, {"deal": deal, "won": True})
    await run.target.quiet()
    flow = await run.target.sandbox.wait_flow(deal["flow"], timeout=60)
    if flow["status"] != "SUCCESS":
        raise ActionError(f"lead to cash for booked {spec.booked!r} ended {flow['status']}: {flow.get('error')}")
    return {**deal, **await booked_ids(run, deal)}


async def booked_ids(run: ScenarioRun, deal: dict[str, Any]) -> dict[str, Any]:
    """Read what lead to cash made: CS company (ExternalId = canonical id) -> crosswalk refs -> ERP order,
    billing subscription."""
    t = run.target
    query = {"select": ["Gsid", "ExternalId"], "limit": 5, "offset": 0,
             "where": {"conditions": [{"name": "Name", "operator": "EQ", "value": [deal["name"]]}]}}
    rows = ok(await t.call("cs", "POST", "/v1/data/objects/query/Company", json=query), "CS company")
    records = rows["data"]["records"]
    if len(records) != 1:
        raise ActionError(f"lead to cash left {len(records)} CS companies named after the deal (wanted 1)")
    canonical = records[0]["ExternalId"]
    refs = ok(await t.core("GET", f"/crosswalk/{canonical}"), "crosswalk")["refs"]
    orders = ok(await t.call("erp", "GET", f"{ERP_RECORD}/salesOrder",
                             params={"q": f"entity ANY_OF [{refs['erp']}]"}), "ERP orders")["items"]
    subs = ok(await t.call("billing", "GET", "/v1/subscriptions", params={
        "customer": refs["billing"], "status": "all", "limit": 10}), "billing subscriptions")["data"]
    sub = subs[0] if subs else {}
    return {"canonical": canonical, "erp": refs.get("erp"), "billing": refs.get("billing"), "cs": refs.get("cs"),
            "order": orders[0]["id"] if orders else None, "subscription": sub.get("id"),
            "item": (sub.get("items") or {}).get("data", [{}])[0].get("id") if sub else None,
            "invoice": sub.get("latest_invoice")}


# -- user actions (`do:`) ----------------------------------------------------------------------------------


def _account(run: ScenarioRun, value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    bound = run.bindings.values.get(str(value))
    if not isinstance(bound, dict) or "crm" not in bound:
        raise ActionError(f"{what}: {value!r} is not an account / deal binding")
    return bound


async def merge(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    """CRM merge (what a user does in the UI): `master: a`, `losers: [b, c]`, optional `take: {Field: b}`."""
    master = _account(run, args.get("master"), "merge master")
    losers = [_account(run, x, "merge loser") for x in args.get("losers") or []]
    if not losers:
        raise ActionError("merge needs losers: [binding, ...]")
    body: dict[str, Any] = {"action": "merge", "object": "Account", "master": master["crm"],
                            "losers": [x["crm"] for x in losers]}
    if args.get("take"):
        body["take"] = {f: _account(run, b, "merge take")["crm"] for f, b in args["take"].items()}
    # The merge flow is keyed by the CRM transaction, which the merge does not return: merges are made one
    # at a time and the one new account_merge flow that appears is this merge's (saved as `flow`).
    locks: dict[int, asyncio.Lock] = run.target.__dict__.setdefault("_merge_locks", {})
    lock = locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
    async with lock:
        before = {f["workflow_id"] for f in await _merge_flows(run)}
        merged = ok(await run.target.control("crm", "POST", "/actions", json=body), "CRM merge")
        deadline = time.monotonic() + 30
        while True:
            new = [f["workflow_id"] for f in await _merge_flows(run) if f["workflow_id"] not in before]
            if new:
                break
            if time.monotonic() > deadline:
                raise ActionError("merge: no account_merge flow started within 30 s")
            await asyncio.sleep(0.05)
    return {**merged, "flow": new[0]}


async def _merge_flows(run: ScenarioRun) -> list[dict[str, Any]]:
    return ok(await run.target.core("GET", "/flows", params={"flow": "account_merge", "limit": 500}), "flows")["flows"]


async def close_opportunity(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    deal = _account(run, args.get("deal"), "close")
    won = bool(args.get("won", True))
    ok(await run.target.control("crm", "POST", "/actions", json={
        "action": "close_opportunity", "id": deal["opportunity"], "won": won}), "CRM close opportunity")
    return {"flow": f"closed-won:{deal['opportunity']}"}


async def close_won(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    return await close_opportunity(run, {**args, "won": True})


async def close_lost(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    return await close_opportunity(run, {**args, "won": False})


async def edit(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    """A CRM edit in the UI: `object` (default Account), `id`, `fields`."""
    return ok(await run.target.control("crm", "POST", "/actions", json={
        "action": "edit", "object": args.get("object", "Account"), "id": args["id"], "fields": args["fields"]}),
        "CRM edit")


async def attach_card(run: ScenarioRun, customer: str, card: str) -> str:
    t = run.target
    pm = ok(await t.call("billing", "POST", f"/v1/payment_methods/{card}/attach", form={"customer": customer}),
            f"attach {card}")["id"]
    ok(await t.call("billing", "POST", f"/v1/customers/{customer}",
                    form={"invoice_settings[default_payment_method]": pm}), "default payment method")
    return str(pm)


async def set_card(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    """The customer changes card: `account: a`, `card: pm_card_chargeCustomerFail` (a Stripe test card)."""
    acct = _account(run, args.get("account"), "set_card")
    return {"payment_method": await attach_card(run, acct["billing"], str(args.get("card", "pm_card_visa")))}


async def pay_invoice(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    """Pay an open invoice now: `invoice`, optional `payment_method`."""
    form = {"payment_method": args["payment_method"]} if args.get("payment_method") else {}
    return ok(await run.target.call("billing", "POST", f"/v1/invoices/{args['invoice']}/pay", form=form),
              "pay invoice")


async def replay_dlq(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    """Replay every parked DLQ entry whose business key starts with `prefix`; saves `attempts`."""
    prefix = str(args["prefix"])
    entries = ok(await run.target.core("GET", "/dlq", params={"status": "parked", "limit": 500}), "DLQ")["entries"]
    mine = [e for e in entries if e["business_key"].startswith(prefix)]
    if not mine and not args.get("allow_none"):
        raise ActionError(f"replay_dlq: nothing parked under {prefix!r}")
    attempts = [ok(await run.target.core("POST", f"/dlq/{e['id']}/replay"), "DLQ replay")["attempt_id"]
                for e in mine]
    return {"attempts": attempts, "count": len(attempts)}


async def redeliver(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    """Send a billing webhook again (the same event, same id): the newest `event_type` event about `object`
    (an id in the event's data.object: customer, subscription or id), `times` times."""
    t = run.target
    event_type, about, times = str(args["event_type"]), str(args["object"]), int(args.get("times", 1))
    events = ok(await t.call("billing", "GET", "/v1/events", params={"type": event_type, "limit": 100}),
                "billing events")["data"]
    keys = ("id", "customer", "subscription", "invoice")
    mine = [e for e in events if about in {str(e["data"]["object"].get(k)) for k in keys}]
    if not mine:
        raise ActionError(f"redeliver: no {event_type} event about {about!r}")
    rows = ok(await t.control("billing", "GET", "/deliveries", params={"event_id": mine[0]["id"]}), "deliveries")
    if not rows:
        raise ActionError(f"redeliver: event {mine[0]['id']} was never delivered")
    for _ in range(times):
        ok(await t.control("billing", "POST", f"/deliveries/{rows[-1]['id']}/redeliver"), "redeliver")
    return {"event": mine[0]["id"], "times": times}


async def advance_test_clock(run: ScenarioRun, clock: str, seconds: float, timeout: float = 60.0,
                             wait: bool = True) -> None:
    t = run.target
    current = ok(await t.call("billing", "GET", f"/v1/test_helpers/test_clocks/{clock}"), "test clock")
    ok(await t.call("billing", "POST", f"/v1/test_helpers/test_clocks/{clock}/advance",
                    form={"frozen_time": int(current["frozen_time"] + seconds)}), "advance test clock")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while ok(await t.call("billing", "GET", f"/v1/test_helpers/test_clocks/{clock}"), "test clock")[
            "status"] != "ready":
        if time.monotonic() > deadline:
            raise ActionError(f"test clock {clock} still advancing after {timeout} s")
        await asyncio.sleep(0.02)


async def lookup_booked(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    """After a deal was booked in the scenario: read every system's id into its binding (`deal: d`), so
    `${d.erp}` etc. work and the invariants cover the account."""
    name = str(args.get("deal", ""))
    deal = _account(run, name, "lookup_booked")
    deal.update(await booked_ids(run, deal))
    run.seen_ids.update(v for v in deal.values() if isinstance(v, str))
    return deal


async def sandbox_action(run: ScenarioRun, args: dict[str, Any]) -> dict[str, Any]:
    """Any mock's own user action: `system`, `action` (e.g. billing expire_card, fail_next_charge) + its fields."""
    body = {k: v for k, v in args.items() if k != "system"}
    system = str(args.get("system", ""))
    if system not in ("crm", "erp", "billing", "cs") or "action" not in body:
        raise ActionError("sandbox needs system (crm | erp | billing | cs) and action")
    return ok(await run.target.control(system, "POST", "/actions", json=body), f"{system} {body['action']}") or {}


ACTIONS = {
    "merge": merge, "close_won": close_won, "close_lost": close_lost, "edit": edit, "set_card": set_card,
    "pay_invoice": pay_invoice, "replay_dlq": replay_dlq, "redeliver": redeliver, "sandbox": sandbox_action,
    "lookup_booked": lookup_booked,
}
