"""Flow 1, lead to cash, end to end in the sandbox: a CRM opportunity closed won -> ERP customer + sales order,
billing customer + subscription, CS company + onboarding plan; under duplicates, faults, rate limits and drift."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from core.connectors.base import RetryPolicy
from core.flows._common import crosswalk
from core.wiring import connections
from lockstep.sandbox import Sandbox
from tests.integration.conftest import unique

CRM = "/services/data/v60.0"
ERP = "/services/rest/record/v1"


# -- helpers (also used by the merge tests) --------------------------------------------------------------------


async def prepare(sandbox: Sandbox) -> None:
    """What the flow expects of the estate: the org's tax field, the ERP's catalog item. Idempotent."""
    fields = (await sandbox.clients["crm"].get(f"{CRM}/sobjects/Account/describe")).json()["fields"]
    if not any(f["name"] == "Tax_Registration__c" for f in fields):
        r = await sandbox.control("crm").post("/actions", json={
            "action": "declare_field", "object": "Account",
            "field": {"name": "Tax_Registration__c", "type": "string", "length": 40}})
        assert r.status_code == 200, r.text
    item = await sandbox.clients["erp"].get(f"{ERP}/item/eid:ITEM-PLAT-ANNUAL")
    if item.status_code == 404:
        r = await sandbox.control("erp").post("/seed", json={"customers": 0, "items": True})
        assert r.status_code == 200, r.text


async def new_deal(sandbox: Sandbox, *, name: str | None = None, country: str = "Germany",
                   tax: str | None = "DE123456789", amount: float = 24000.0) -> dict[str, str]:
    """An account with an open opportunity in the CRM (seeded quietly: no change events)."""
    await prepare(sandbox)
    name = name or unique("Acme")
    account: dict[str, Any] = {"@ref": "acc", "Name": name, "BillingCountry": country}
    if tax:
        account["Tax_Registration__c"] = tax
    close = (date.today() + timedelta(days=3)).isoformat()
    r = await sandbox.control("crm").post("/seed", json={"demo": False, "records": {
        "Account": [account],
        "Opportunity": [{"AccountId": "@acc", "Name": f"{name} - New Business", "StageName": "Prospecting",
                         "CloseDate": close, "Amount": amount}]}})
    assert r.status_code == 200, r.text
    created = r.json()["created"]
    return {"name": name, "account": created["Account"][0], "opportunity": created["Opportunity"][0]}


async def close_won(sandbox: Sandbox, deal: dict[str, str]) -> str:
    r = await sandbox.control("crm").post("/actions", json={"action": "close_opportunity",
                                                            "id": deal["opportunity"], "won": True})
    assert r.status_code == 200, r.text
    return f"closed-won:{deal['opportunity']}"


async def run_deal(sandbox: Sandbox, **kwargs: Any) -> tuple[dict[str, str], dict[str, Any]]:
    deal = await new_deal(sandbox, **kwargs)
    key = await close_won(sandbox, deal)
    await sandbox.quiesce()
    flow = await sandbox.wait_flow(key)
    return deal, flow


async def erp_customers(sandbox: Sandbox, name: str) -> list[dict[str, Any]]:
    rows = (await sandbox.clients["erp"].get(f"{ERP}/customer", params={"q": f'companyName IS "{name}"'})).json()
    return [(await sandbox.clients["erp"].get(f"{ERP}/customer/{r['id']}")).json() for r in rows["items"]]


async def erp_orders(sandbox: Sandbox, customer_id: str) -> list[dict[str, Any]]:
    rows = (await sandbox.clients["erp"].get(f"{ERP}/salesOrder",
                                             params={"q": f"entity ANY_OF [{customer_id}]"})).json()
    return [(await sandbox.clients["erp"].get(f"{ERP}/salesOrder/{r['id']}")).json() for r in rows["items"]]


async def billing_customers(sandbox: Sandbox, name: str) -> list[dict[str, Any]]:
    rows = (await sandbox.clients["billing"].get("/v1/customers", params={"limit": 100})).json()["data"]
    return [c for c in rows if c.get("name") == name]


async def billing_subscriptions(sandbox: Sandbox, customer_id: str) -> list[dict[str, Any]]:
    return (await sandbox.clients["billing"].get("/v1/subscriptions", params={
        "customer": customer_id, "status": "all", "limit": 100})).json()["data"]


async def cs_call(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """A CS API call from the test, keeping to the tenant's 200 calls/minute (429 -> wait as told, retry)."""
    for _ in range(5):
        r = await sandbox.clients["cs"].request(method, path, **kwargs)
        if r.status_code != 429:
            assert r.status_code == 200, r.text
            return r.json()["data"]
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))  # the vendor's own back-off instruction
    pytest.fail("CS kept answering 429")


async def cs_companies(sandbox: Sandbox, name: str) -> list[dict[str, Any]]:
    query = {"select": ["Gsid", "Name", "ExternalId", "Status", "ARR", "Stage"], "limit": 50, "offset": 0,
             "where": {"conditions": [{"name": "Name", "operator": "EQ", "value": [name]}]}}
    return (await cs_call(sandbox, "POST", "/v1/data/objects/query/Company", json=query))["records"]


async def cs_plans(sandbox: Sandbox, gsid: str) -> list[dict[str, Any]]:
    data = await cs_call(sandbox, "GET", "/v2/cockpit/successplan", params={"companyId": gsid, "limit": 50})
    return data["records"]


async def assert_one_of_everything(sandbox: Sandbox, deal: dict[str, str]) -> dict[str, str]:
    """Each system holds exactly one customer / company for the account, one order, one live subscription,
    one onboarding plan; the crosswalk resolves all four native ids to one canonical id."""
    name = deal["name"]
    erp = await erp_customers(sandbox, name)
    assert len(erp) == 1, erp
    orders = await erp_orders(sandbox, erp[0]["id"])
    assert len(orders) == 1, orders
    bill = await billing_customers(sandbox, name)
    assert len(bill) == 1, bill
    subs = [s for s in await billing_subscriptions(sandbox, bill[0]["id"]) if s["status"] != "canceled"]
    assert len(subs) == 1, subs
    assert subs[0]["items"]["data"][0]["price"]["unit_amount"] == 2_400_000
    companies = await cs_companies(sandbox, name)
    assert len(companies) == 1, companies
    plans = await cs_plans(sandbox, companies[0]["Gsid"])
    assert [p.get("TemplateName") or p.get("Template") for p in plans] == ["Standard Onboarding"], plans
    xw = crosswalk()
    canonical = xw.lookup("account", "crm", deal["account"])
    assert canonical is not None
    assert xw.refs(canonical) == {"crm": deal["account"], "erp": erp[0]["id"], "billing": bill[0]["id"],
                                  "cs": companies[0]["Gsid"]}
    return {"canonical": canonical, "erp": erp[0]["id"], "order": orders[0]["id"], "billing": bill[0]["id"],
            "subscription": subs[0]["id"], "cs": companies[0]["Gsid"]}


@contextlib.asynccontextmanager
async def faults(sandbox: Sandbox, system: str, *rules: dict[str, Any]) -> AsyncIterator[None]:
    r = await sandbox.control(system).put("/faults", json={"rules": list(rules)})
    assert r.status_code == 200, r.text
    try:
        yield
    finally:
        await sandbox.control(system).delete("/faults")


@contextlib.asynccontextmanager
async def quick_retries(system: str) -> AsyncIterator[None]:
    """Shorter in-call retries on one connector (the default backs off for seconds)."""
    client = getattr(connections(), system)
    before = client.retry
    client.retry = RetryPolicy(max_attempts=2, base_delay=0.02, max_delay=0.05)
    try:
        yield
    finally:
        client.retry = before


def trace_actions(sandbox: Sandbox, key: str) -> list[tuple[str, str, str]]:
    from core.trace import correlation_id_for

    return [(s.system, s.action, s.status) for s in sandbox.runtime.trace.for_correlation(correlation_id_for(key))]


# -- tests ------------------------------------------------------------------------------------------------------


async def test_happy_path_creates_one_of_everything_in_order(sandbox: Sandbox) -> None:
    deal, flow = await run_deal(sandbox)
    assert flow["status"] == "SUCCESS", flow
    ids = await assert_one_of_everything(sandbox, deal)
    # The ERP validated and kept the tax registration; the order is for the deal amount.
    erp = (await sandbox.clients["erp"].get(f"{ERP}/customer/{ids['erp']}")).json()
    assert erp["taxRegistration"]["number"] == "DE123456789"
    order = (await sandbox.clients["erp"].get(f"{ERP}/salesOrder/{ids['order']}")).json()
    assert order["total"] == 24000.0 and order["externalId"].startswith(f"closed-won:{deal['opportunity']}:")
    # Trace: the flow's writes, in order across the systems, then completion.
    steps = trace_actions(sandbox, f"closed-won:{deal['opportunity']}")
    writes = [(s, a.split(" ")[0] + " " + a.split(" ")[1].split("/")[-1 if s != "erp" else 5])
              for s, a, st in steps if a.split(" ")[0] in ("PUT", "POST") and s != "core" and st < "400"]
    order_of = [s for s, _ in writes]
    first = {system: order_of.index(system) for system in ("erp", "billing", "cs")}
    assert first["erp"] < first["billing"] < first["cs"], writes
    assert steps[-1] == ("core", "flow lead_to_cash completed", "success")
    # Ownership: the CRM's tax number was not taken as canonical (the ERP owns it), and that is recorded.
    assert any(s == "core" and "ignored account.tax_registration from crm" in a for s, a, _ in steps), steps


async def test_duplicate_webhook_deliveries_have_one_effect(sandbox: Sandbox) -> None:
    chaos = sandbox.control("crm")
    r = await chaos.put("/webhooks/chaos", json={"duplicate_probability": 1.0})
    assert r.status_code == 200, r.text
    try:
        deal, flow = await run_deal(sandbox)
    finally:
        await chaos.put("/webhooks/chaos", json={})
    assert flow["status"] == "SUCCESS", flow
    # The close's change event really was delivered twice to the core; the second delivery changed nothing.
    deliveries = await sandbox.deliveries("crm", limit=100)
    dupes = [d for d in deliveries if d.get("duplicate_of") and d.get("event_type") == "OpportunityChangeEvent"]
    assert dupes, deliveries[:3]
    await assert_one_of_everything(sandbox, deal)
    assert len(await sandbox.flows(business_key=f"closed-won:{deal['opportunity']}")) == 1


async def test_erp_5xx_mid_flow_is_retried_and_completes_once(sandbox: Sandbox) -> None:
    rule = {"kind": "error", "status": 503, "route": "POST /services/rest/record/v1/salesOrder", "max_hits": 2}
    async with faults(sandbox, "erp", rule):
        deal, flow = await run_deal(sandbox)
        hits = (await sandbox.control("erp").get("/faults")).json()["hits"]
    assert flow["status"] == "SUCCESS", flow
    assert list(hits.values()) == [2], hits
    journal = await sandbox.journal("erp", method="POST", path=f"{ERP}/salesOrder", limit=200)
    faulted = [j for j in journal if j.get("fault")]
    assert len(faulted) >= 2, journal
    await assert_one_of_everything(sandbox, deal)


async def test_persistent_erp_fault_parks_in_dlq_and_replay_succeeds_once(sandbox: Sandbox) -> None:
    rule = {"kind": "error", "status": 500, "route": "POST /services/rest/record/v1/salesOrder"}
    async with quick_retries("erp"), faults(sandbox, "erp", rule):
        deal = await new_deal(sandbox)
        key = await close_won(sandbox, deal)
        await sandbox.quiesce()
        flow = await sandbox.wait_flow(key)
    assert flow["status"] == "ERROR", flow
    entry = next(e for e in await sandbox.dlq() if e["business_key"] == key)
    assert entry["status"] == "parked" and "500" in entry["error_message"], entry
    # Nothing of the deal reached billing or CS; the ERP customer (master data) exists, no order.
    assert await billing_customers(sandbox, deal["name"]) == []
    assert await cs_companies(sandbox, deal["name"]) == []
    erp = await erp_customers(sandbox, deal["name"])
    assert len(erp) == 1 and await erp_orders(sandbox, erp[0]["id"]) == []
    # The fault is gone: replay once, it completes, exactly one of everything.
    r = await sandbox.core.post(f"/dlq/{entry['id']}/replay")
    assert r.status_code in (200, 202), r.text
    await sandbox.quiesce()
    replay = await sandbox.wait_flow(f"{key}~replay-1")
    assert replay["status"] == "SUCCESS", replay
    assert next(e for e in await sandbox.dlq() if e["business_key"] == key)["status"] == "resolved"
    await assert_one_of_everything(sandbox, deal)


async def test_billing_hard_failure_is_compensated_and_parked(sandbox: Sandbox) -> None:
    rule = {"kind": "error", "status": 400, "route": "POST /v1/subscriptions", "error_code": "parameter_invalid",
            "message": "No such price"}
    async with faults(sandbox, "billing", rule):
        deal = await new_deal(sandbox)
        key = await close_won(sandbox, deal)
        await sandbox.quiesce()
        flow = await sandbox.wait_flow(key)
    assert flow["status"] == "ERROR", flow
    entry = next(e for e in await sandbox.dlq() if e["business_key"] == key)
    assert entry["error_class"].endswith("CompensatedError"), entry
    assert "salesOrder" in entry["error_message"] and "deleted" in entry["error_message"], entry
    erp = await erp_customers(sandbox, deal["name"])
    assert len(erp) == 1 and await erp_orders(sandbox, erp[0]["id"]) == []  # the order was undone
    steps = trace_actions(sandbox, key)
    assert any(st == "compensated" for _, _, st in steps), steps
    assert await cs_companies(sandbox, deal["name"]) == []
    # Fixed: a replay re-creates the order under the same key and completes once.
    r = await sandbox.core.post(f"/dlq/{entry['id']}/replay")
    assert r.status_code in (200, 202), r.text
    await sandbox.quiesce()
    assert (await sandbox.wait_flow(f"{key}~replay-1"))["status"] == "SUCCESS"
    await assert_one_of_everything(sandbox, deal)


async def test_erp_429_storm_completes_without_duplicates(sandbox: Sandbox) -> None:
    control = sandbox.control("erp")
    before = (await control.get("/limits")).json()["policies"]
    storm = {"kind": "error", "status": 429, "error_code": "CONCURRENCY_LIMIT_EXCEEDED", "probability": 0.6,
             "route": "/services/rest/record/v1/*"}
    r = await control.put("/limits", json={"policies": [
        {"name": "concurrency", "kind": "concurrency", "limit": 1, "route": "/services/rest/*"}]})
    assert r.status_code == 200, r.text
    try:
        async with faults(sandbox, "erp", {**storm, "max_hits": 6}):
            deal, flow = await run_deal(sandbox)
            journal = await sandbox.journal("erp", status=429, limit=200)
    finally:
        await control.put("/limits", json={"policies": before})
    assert flow["status"] == "SUCCESS", flow
    assert journal, "the storm never hit"
    await assert_one_of_everything(sandbox, deal)


async def test_billing_version_switched_mid_flow_parks_with_drift_and_writes_nothing(sandbox: Sandbox) -> None:
    billing = sandbox.control("billing")
    pinned = connections().billing.api_version
    if not (await sandbox.clients["billing"].get("/v1/subscriptions", params={"status": "all"})).json()["data"]:
        await run_deal(sandbox)  # the canary read needs one subscription to name the drifted field
    other = next(v for v in (await billing.get("/version")).json()["versions"] if v != pinned)
    # Hold the ERP order (the step before billing) long enough to switch billing's version under the flow.
    slow = {"kind": "latency", "latency_ms": 400, "route": "POST /services/rest/record/v1/salesOrder"}
    deal = await new_deal(sandbox)
    async with faults(sandbox, "erp", slow):
        key = await close_won(sandbox, deal)
        await _wait_for(lambda: _erp_customer_exists(sandbox, deal["name"]))
        assert (await billing.put("/version", json={"api_version": other})).status_code == 200
        try:
            await sandbox.quiesce()
            flow = await sandbox.wait_flow(key)
        finally:
            await billing.put("/version", json={"api_version": pinned})
    assert flow["status"] == "ERROR", flow
    entry = next(e for e in await sandbox.dlq() if e["business_key"] == key)
    assert entry["error_class"].endswith("SchemaDriftError"), entry
    # The drift names the field the pinned mapping missed (the subscription period moved between versions).
    assert "current_period" in entry["error_message"], entry
    assert await billing_customers(sandbox, deal["name"]) == []  # nothing written in billing
    assert await cs_companies(sandbox, deal["name"]) == []
    # Version restored: the replay completes once.
    r = await sandbox.core.post(f"/dlq/{entry['id']}/replay")
    assert r.status_code in (200, 202), r.text
    await sandbox.quiesce()
    assert (await sandbox.wait_flow(f"{key}~replay-1"))["status"] == "SUCCESS"
    await assert_one_of_everything(sandbox, deal)


async def test_invalid_tax_registration_is_refused_by_the_erp_and_parked(sandbox: Sandbox) -> None:
    deal, flow = await run_deal(sandbox, tax="12345")
    assert flow["status"] == "ERROR", flow
    entry = next(e for e in await sandbox.dlq() if e["business_key"] == f"closed-won:{deal['opportunity']}")
    assert "tax" in entry["error_message"].lower(), entry
    assert await erp_customers(sandbox, deal["name"]) == []
    assert await billing_customers(sandbox, deal["name"]) == []


async def test_a_lost_opportunity_starts_no_flow(sandbox: Sandbox) -> None:
    deal = await new_deal(sandbox)
    r = await sandbox.control("crm").post("/actions", json={"action": "close_opportunity",
                                                            "id": deal["opportunity"], "won": False})
    assert r.status_code == 200, r.text
    await sandbox.quiesce()
    assert await sandbox.flows(business_key=f"closed-won:{deal['opportunity']}") == []


# -- small waits -------------------------------------------------------------------------------------------------


async def _erp_customer_exists(sandbox: Sandbox, name: str) -> bool:
    return bool(await erp_customers(sandbox, name))


async def _wait_for(check: Any, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.01)
