"""The harness itself: webhooks from every mock reach the core's intake, signed; the core's connections reach
every mock with the correlation header; quiesce waits for flows; tenants are isolated."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from dbos import DBOS

from core import trace
from core.connectors.mapping.cs import CompanyInput
from core.intake.envelopes import parse_event
from core.intake.router import register_flow, subscribed_events
from core.runtime import RuntimeBusyError
from core.wiring import connections
from lockstep.sandbox import CORE_BASE_URL, QuiesceTimeout, Sandbox
from tests.integration.conftest import backend, unique

ERP_ROOT = "/services/rest/record/v1"
CRM_ROOT = "/services/data/v60.0"
PROBE = "sandbox-probe"


# -- a probe flow: registered at import (collection), before the package's sandbox launches DBOS ----------

@DBOS.step(retries_allowed=True, max_attempts=200, interval_seconds=0.05, backoff_rate=1.0)
async def _probe_read(external_id: str) -> str:
    company = await connections().cs.get_company(external_id)
    return str(company.model_dump().get("name") or company)


@DBOS.step(retries_allowed=True, max_attempts=20, interval_seconds=0.05, backoff_rate=1.0)
async def _probe_spawn(external_id: str) -> str:
    """A write whose webhook (company.created) starts another probe flow: from inside this flow's step."""
    child = f"{external_id}-child"
    await connections().cs.upsert_company(child, CompanyInput(name=child))
    return child


async def sandbox_probe(event: dict[str, Any]) -> dict[str, Any]:
    company = event["payload"]["data"]["company"]
    out = {"read": await _probe_read(company["ExternalId"]), "correlation_id": event["correlation_id"]}
    if company["ExternalId"].endswith("-parent"):
        out["child"] = await _probe_spawn(company["ExternalId"])
    return out


def _probe_key(event: Any) -> str | None:
    company = (event.payload.get("data") or {}).get("company") or {}
    name = str(company.get("Name") or "")
    return f"{PROBE}:{company.get('Gsid')}" if name.startswith(PROBE) and company.get("ExternalId") else None


register_flow(["cs:company.created"], _probe_key, sandbox_probe, name=PROBE)


# -- helpers -------------------------------------------------------------------------------------------------

async def make_records(clients: dict[str, httpx.AsyncClient], tag: str) -> dict[str, str]:
    """One record per system, each emitting an event the core subscribes to; {system: native id}. (Billing: the
    core's endpoint takes invoice events, not `customer.created` or a draft's `invoice.created`, so the
    customer gets an invoice, finalized.)"""
    crm = await clients["crm"].post(f"{CRM_ROOT}/sobjects/Account", json={"Name": tag})
    assert crm.status_code == 201, crm.text
    erp = await clients["erp"].post(f"{ERP_ROOT}/customer", json={
        "companyName": tag, "email": "ap@acme.example", "subsidiary": {"id": "2"}, "terms": {"id": "5"}})
    assert erp.status_code == 204, erp.text
    billing = await clients["billing"].post("/v1/customers", data={"name": tag})
    assert billing.status_code == 200, billing.text
    invoice = await clients["billing"].post("/v1/invoices", data={"customer": billing.json()["id"]})
    assert invoice.status_code == 200, invoice.text
    finalized = await clients["billing"].post(f"/v1/invoices/{invoice.json()['id']}/finalize")
    assert finalized.status_code == 200, finalized.text
    cs = await clients["cs"].post("/v1/data/objects/Company", json={"records": [{"Name": tag, "ExternalId": tag}]})
    assert cs.status_code == 200, cs.text
    return {"crm": crm.json()["id"], "erp": erp.headers["location"].rsplit("/", 1)[1],
            "billing": billing.json()["id"], "cs": cs.json()["data"]["records"][0]["Gsid"]}


def delivery_about(rows: list[dict[str, Any]], event_types: tuple[str, ...]) -> list[dict[str, Any]]:
    return [r for r in rows if r["event_type"] in event_types]


# -- tests ---------------------------------------------------------------------------------------------------

async def test_a_webhook_from_each_mock_reaches_the_core_intake_signed(sandbox: Sandbox) -> None:
    before = {s: await sandbox.primary.last_delivery_seq(s) for s in sandbox.keys}
    await make_records(sandbox.clients, unique("Hook"))
    await sandbox.quiesce(timeout=30)
    for system in ("crm", "erp", "billing", "cs"):
        rows = [r for r in await sandbox.deliveries(system, limit=50)
                if int(r["id"].rsplit("_", 1)[-1]) > before[system]]
        assert rows, f"{system}: no webhook was emitted"
        for row in rows:
            assert row["url"] == f"{CORE_BASE_URL}/webhooks/{system}"
            assert row["status"] == "delivered", row
            # 2xx from the core: the signature verified (a bad one is a 400 / 401, see the forged test)
            assert [a.get("status_code") for a in row["attempts"]] == [200], row
            event = parse_event(system, sandbox.delivery_body(system, row["id"]))
            entry = sandbox.runtime.inbox.get(system, event.event_id)
            assert entry is not None, f"{system}: event {event.event_id} is not in the core's inbox"


async def test_the_core_subscribes_to_the_events_its_flows_listen_to(sandbox: Sandbox) -> None:
    endpoints = (await sandbox.primary.control("billing").get("/webhooks/endpoints")).json()
    [core] = [e for e in endpoints if e["url"] == f"{CORE_BASE_URL}/webhooks/billing"]
    assert core["events"] == subscribed_events("billing")
    assert {"invoice.paid", "invoice.payment_failed", "customer.subscription.updated"} <= set(core["events"])
    before = await sandbox.primary.last_delivery_seq("billing")
    await sandbox.clients["billing"].post("/v1/customers", data={"name": unique("Unheard")})
    await sandbox.quiesce(timeout=30)
    fresh = [r for r in await sandbox.deliveries("billing", limit=50) if int(r["id"].rsplit("_", 1)[-1]) > before]
    assert not [r for r in fresh if r["event_type"] == "customer.created"], fresh


async def test_a_wrongly_signed_webhook_is_refused_by_the_core(sandbox: Sandbox) -> None:
    other = await sandbox.tenant(unique("forged"))
    made = await other.control("billing").post("/webhooks/endpoints", json={
        "url": f"{CORE_BASE_URL}/webhooks/billing", "secret": "whsec_not_the_core_secret"})
    assert made.status_code == 201
    customer = (await other.clients["billing"].post("/v1/customers", data={"name": unique("Forged")})).json()
    assert (await other.drain(10))["billing"] is True
    [row] = await other.deliveries("billing", limit=5)
    assert row["status"] in ("pending", "failed") or row["attempts"], row
    assert all(a.get("status_code") in (400, 401) for a in row["attempts"]), row
    event = parse_event("billing", sandbox.delivery_body("billing", row["id"], tenant=other))
    assert sandbox.runtime.inbox.get("billing", event.event_id) is None
    assert customer["id"].startswith("cus_")
    await other.control("billing").delete(f"/webhooks/endpoints/{made.json()['id']}")


async def test_connections_reach_each_mock_with_the_correlation_header(sandbox: Sandbox) -> None:
    tag = unique("Conn")
    ids = await make_records(sandbox.clients, tag)
    correlation_id = trace.correlation_id_for(f"sandbox-test:{tag}")
    conns = sandbox.new_connections()
    try:
        with trace.correlation(correlation_id):
            assert (await conns.crm.get_account(ids["crm"])).model_dump()
            assert (await conns.erp.get_customer(ids["erp"])).model_dump()
            assert (await conns.billing.get_customer(ids["billing"])).model_dump()
            assert (await conns.cs.get_company(tag)).model_dump()
    finally:
        await conns.aclose()
    for system in ("crm", "erp", "billing", "cs"):
        seen = await sandbox.journal(system, correlation_id=correlation_id)
        assert seen, f"{system}: no request with X-Correlation-Id {correlation_id} in the journal"
        assert all(e["correlation_id"] == correlation_id for e in seen)
        assert all(e["status"] < 400 for e in seen), seen
    other = await sandbox.journal("crm", correlation_id=trace.correlation_id_for(f"nobody:{tag}"))
    assert other == []


async def test_quiesce_waits_for_the_flow_a_webhook_starts(sandbox: Sandbox) -> None:
    """End to end: CS webhook -> core intake -> flow (DBOS) -> connections() -> CS, with the correlation id."""
    tag = unique(PROBE)
    written = await sandbox.clients["cs"].post("/v1/data/objects/Company",
                                                json={"records": [{"Name": tag, "ExternalId": tag}]})
    gsid = written.json()["data"]["records"][0]["Gsid"]
    report = await sandbox.quiesce(timeout=30)
    assert report["rounds"] >= 2
    key = f"{PROBE}:{gsid}"
    flow = await sandbox.flow(key)  # no waiting here: quiesce must already have waited for it
    assert flow is not None, f"no flow {key}"
    assert flow["status"] == "SUCCESS", flow
    assert not await sandbox.flows(status="PENDING") and not await sandbox.flows(status="ENQUEUED")
    calls = await sandbox.journal("cs", correlation_id=flow["correlation_id"])
    assert [c["path"] for c in calls] == ["/v1/data/objects/query/Company"]
    steps = (await sandbox.core.get(f"/trace/{flow['correlation_id']}")).json()["steps"]
    assert {s["system"] for s in steps} >= {"cs", "core"}


async def test_a_webhook_sent_from_inside_a_flow_starts_an_independent_flow(sandbox: Sandbox) -> None:
    """The flow's context (DBOS's current workflow, the correlation id) must not leak through the mock into the
    webhook it emits: the flow that webhook starts is a top-level workflow with its own correlation id."""
    tag = unique(PROBE) + "-parent"
    written = await sandbox.clients["cs"].post("/v1/data/objects/Company",
                                                json={"records": [{"Name": tag, "ExternalId": tag}]})
    parent_key = f"{PROBE}:{written.json()['data']['records'][0]['Gsid']}"
    await sandbox.quiesce(timeout=30)
    parent = await sandbox.flow(parent_key)
    assert parent is not None and parent["status"] == "SUCCESS", parent
    query = {"select": ["Gsid"], "where": {"conditions": [{"name": "ExternalId", "operator": "EQ",
                                                            "value": [f"{tag}-child"]}]}}
    [child_row] = (await sandbox.clients["cs"].post("/v1/data/objects/query/Company", json=query)).json()[
        "data"]["records"]
    child_key = f"{PROBE}:{child_row['Gsid']}"
    child = await sandbox.flow(child_key)
    assert child is not None and child["status"] == "SUCCESS", child
    assert child["correlation_id"] != parent["correlation_id"]
    status = await asyncio.to_thread(DBOS.get_workflow_status, child_key)
    assert status is not None and status.parent_workflow_id is None, status
    steps = await asyncio.to_thread(DBOS.list_workflow_steps, parent_key)
    assert not [s for s in steps if s.get("child_workflow_id")], steps
    # The child's webhook delivery was made once, by one worker.
    deliveries = [d for d in await sandbox.deliveries("cs", limit=50) if d["event_type"] == "company.created"]
    assert all(len(d["attempts"]) == 1 for d in deliveries), deliveries


async def test_quiesce_times_out_naming_what_is_busy(sandbox: Sandbox) -> None:
    tag = unique(PROBE)
    # The CS mock answers every query with a 500 for a while: the probe flow keeps retrying, so it stays
    # PENDING and quiesce must give up, saying which flow was busy.
    faults = {"rules": [{"kind": "error", "status": 500, "route": "POST /v1/data/objects/query/Company"}]}
    put = await sandbox.control("cs").put("/faults", json=faults)
    assert put.status_code == 200, put.text
    try:
        await sandbox.clients["cs"].post("/v1/data/objects/Company", json={"records": [{"Name": tag,
                                                                                        "ExternalId": tag}]})
        with pytest.raises(QuiesceTimeout, match=PROBE):
            await sandbox.quiesce(timeout=0.3)
    finally:
        await sandbox.control("cs").delete("/faults")
    await sandbox.quiesce(timeout=30)  # the flow gives up (DLQ) or succeeds; either way it settles


async def test_tenants_are_isolated(sandbox: Sandbox) -> None:
    a = await sandbox.tenant(unique("iso-a"))
    b = await sandbox.tenant(unique("iso-b"))
    assert len({a.keys["billing"], b.keys["billing"], sandbox.keys["billing"]}) == 3
    name = unique("Only-A")
    made = (await a.clients["billing"].post("/v1/customers", data={"name": name})).json()
    assert (await a.clients["billing"].get(f"/v1/customers/{made['id']}")).status_code == 200
    assert (await b.clients["billing"].get(f"/v1/customers/{made['id']}")).status_code == 404
    assert (await sandbox.clients["billing"].get(f"/v1/customers/{made['id']}")).status_code == 404
    company = await a.clients["cs"].post("/v1/data/objects/Company", json={"records": [{"Name": name,
                                                                                         "ExternalId": name}]})
    assert company.status_code == 200
    query = {"select": ["Name"], "where": {"conditions": [{"name": "ExternalId", "operator": "EQ",
                                                            "value": [name]}]}}
    seen_b = (await b.clients["cs"].post("/v1/data/objects/query/Company", json=query)).json()
    assert seen_b["data"]["records"] == []
    # Unwired tenants don't talk to the core: no endpoint, no delivery.
    assert not a.wired and await a.deliveries("billing") == []
    # Each tenant's journal holds its own calls only: b made exactly one billing call (the 404 above).
    assert [(e["method"], e["status"]) for e in await b.journal("billing")] == [("GET", 404)]


async def test_advance_moves_the_primary_clock_and_quiesces(sandbox: Sandbox) -> None:
    before = (await sandbox.control("erp").get("/clock")).json()["now"]
    clock = await sandbox.advance("erp", by="2d")
    assert clock["now"] == pytest.approx(before + 2 * 86400, abs=1)
    assert not await sandbox.flows(status="ENQUEUED")


async def test_the_core_runs_on_the_backend_the_environment_asks_for(sandbox: Sandbox) -> None:
    expected = {"sqlite": "sqlite", "postgres": "postgresql"}[backend()]
    assert sandbox.settings.backend == expected
    health = (await sandbox.core.get("/health")).json()
    assert health["status"] == "ok" and health["backend"] == expected
    assert PROBE in health["flows"]


def test_a_second_in_process_sandbox_is_refused_and_leaves_nothing_running(sandbox: Sandbox) -> None:
    threads = {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeBusyError):
        Sandbox.start()
    # Nothing new is left running (idle worker threads from before may exit meanwhile; that is fine).
    assert {t.name for t in threading.enumerate()} - threads == set()
    assert sandbox.runtime.launched


async def test_start_refuses_a_running_event_loop(sandbox: Sandbox) -> None:
    with pytest.raises(RuntimeError, match="astart"):
        Sandbox.start()
