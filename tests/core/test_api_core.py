"""The core API over ASGI with a real runtime (SQLite): flows, flow detail, traces, DLQ + replay, crosswalk,
reconcile placeholder, OpenAPI, and clear 4xx JSON for bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from dbos import DBOS

from core import trace
from core.api import create_core_app
from core.intake.router import register_flow
from core.runtime import Runtime
from tests.core._runtime_kit import billing_body, launched_runtime, signed_headers, unique, wait_async

BROKEN: set[str] = set()


class CreditHoldError(Exception):
    dlq_reason = "business rule"


@DBOS.step()
def write_erp(key: str) -> str:
    trace.record("erp", "PUT /services/rest/record/v1/invoice/eid:x", "204")
    if key in BROKEN:
        raise CreditHoldError("customer 107 is on credit hold")
    return "ok"


def api_flow(event: dict) -> str:
    return write_erp(event["business_key"])


register_flow(["billing:invoice.finalized"], lambda e: f"api:{e.aggregate_key}", api_flow, name="api_demo")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from launched_runtime("sqlite", Path(tmp_path_factory.mktemp("api")))


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_core_app(runtime=runtime)),
                                 base_url="http://core") as c:
        yield c


async def run_flow(client: httpx.AsyncClient, *, broken: bool = False) -> str:
    inv = unique("in")
    key = f"api:invoice:{inv}"
    if broken:
        BROKEN.add(key)
    body = billing_body("invoice.finalized", inv, created=1)
    response = await client.post("/webhooks/billing", content=body, headers=signed_headers("billing", body))
    assert response.json()["status"] == "accepted", response.text
    await wait_async(key)
    return key


async def test_health_and_openapi(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["backend"] == "sqlite"
    assert health.json()["flows"]["api_demo"] == ["billing:invoice.finalized"]
    spec = (await client.get("/openapi.json")).json()
    for path in ("/health", "/flows", "/flows/{flow_id}", "/trace/{correlation_id}", "/dlq", "/dlq/{dlq_id}/replay",
                 "/crosswalk/{canonical_id}", "/reconcile", "/webhooks/{system}"):
        assert path in spec["paths"], path


async def test_flows_list_filters_and_detail(client: httpx.AsyncClient) -> None:
    ok, bad = await run_flow(client), await run_flow(client, broken=True)
    by_key = (await client.get("/flows", params={"business_key": ok})).json()["flows"]
    assert [(f["workflow_id"], f["status"], f["flow"]) for f in by_key] == [(ok, "SUCCESS", "api_demo")]
    errors = (await client.get("/flows", params={"status": "ERROR", "flow": "api_demo"})).json()["flows"]
    assert bad in [f["workflow_id"] for f in errors] and ok not in [f["workflow_id"] for f in errors]
    detail = (await client.get(f"/flows/{ok}")).json()
    assert detail["status"] == "SUCCESS" and detail["correlation_id"] == trace.correlation_id_for(ok)
    assert [s["name"] for s in detail["steps"]] == ["write_erp"]  # finishing a first attempt is no checkpoint
    assert detail["trace"][-1]["action"] == "flow api_demo completed"
    assert detail["dlq"] is None and [a["workflow_id"] for a in detail["attempts"]] == [ok]
    failed = (await client.get(f"/flows/{bad}")).json()
    assert failed["status"] == "ERROR" and failed["dlq"]["reason"] == "business rule"
    assert failed["steps"][0]["status"] == "error" and "credit hold" in failed["steps"][0]["error"]


async def test_trace_lists_ordered_steps_across_systems(client: httpx.AsyncClient) -> None:
    key = await run_flow(client)
    cid = trace.correlation_id_for(key)
    body = (await client.get(f"/trace/{cid}")).json()
    assert [(s["system"], s["status"]) for s in body["steps"]] == [
        ("billing", "flow started"), ("erp", "204"), ("core", "success")]
    assert body["systems"] == ["billing", "core", "erp"]
    assert [s["seq"] for s in body["steps"]] == sorted(s["seq"] for s in body["steps"])


async def test_dlq_lists_and_replays_a_parked_flow(client: httpx.AsyncClient) -> None:
    key = await run_flow(client, broken=True)
    parked = (await client.get("/dlq", params={"status": "parked"})).json()["entries"]
    [entry] = [e for e in parked if e["business_key"] == key]
    assert entry["error_class"].endswith("CreditHoldError")
    assert entry["error_message"] == "customer 107 is on credit hold"
    assert entry["payload"]["event_type"] == "invoice.finalized"
    BROKEN.discard(key)
    replayed = await client.post(f"/dlq/{entry['id']}/replay")
    assert replayed.status_code == 202, replayed.text
    attempt = replayed.json()["attempt_id"]
    # The replay may already have got through (and resolved the entry) by the time the answer is built.
    assert attempt == f"{key}~replay-1" and replayed.json()["entry"]["status"] in ("replaying", "resolved")
    assert (await wait_async(attempt)).status == "SUCCESS"
    assert (await client.get(f"/dlq/{entry['id']}")).json()["status"] == "resolved"
    again = await client.post(f"/dlq/{entry['id']}/replay")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "dlq_not_parked")
    attempts = (await client.get("/flows", params={"business_key": key})).json()["flows"]
    assert sorted((f["attempt"], f["status"]) for f in attempts) == [("original", "ERROR"), ("replay-1", "SUCCESS")]


async def test_crosswalk_lookup(client: httpx.AsyncClient, runtime: Runtime) -> None:
    canonical = runtime.crosswalk.get_or_create("account", "crm", "001" + unique("x")[:15])
    runtime.crosswalk.link(canonical, "billing", unique("cus"))
    body = (await client.get(f"/crosswalk/{canonical}")).json()
    assert body["resolved"] == canonical and body["entity"] == "account" and set(body["refs"]) == {"crm", "billing"}
    missing = await client.get("/crosswalk/acc_" + "0" * 26)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "canonical_id_not_found")


async def test_reconcile_without_connections_is_a_clear_503(client: httpx.AsyncClient) -> None:
    from core import wiring

    saved = wiring._installed
    wiring.install(None)  # another test module may have installed a sandbox's connections
    try:
        response = await client.get("/reconcile")
    finally:
        wiring.install(saved)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_connections"


@pytest.mark.parametrize(
    ("method", "url", "status", "code"),
    [
        ("GET", "/flows?status=DONE", 422, "invalid_request"),
        ("GET", "/flows?limit=0", 422, "invalid_request"),
        ("GET", "/flows?offset=-1", 422, "invalid_request"),
        ("GET", "/flows?flow=nope", 404, "unknown_flow"),
        ("GET", "/flows/no-such-flow", 404, "flow_not_found"),
        ("GET", "/trace/nope", 404, "trace_not_found"),
        ("GET", "/dlq?status=lost", 422, "invalid_request"),
        ("GET", "/dlq/abc", 422, "invalid_request"),
        ("GET", "/dlq/999999", 404, "dlq_not_found"),
        ("POST", "/dlq/999999/replay", 404, "dlq_not_found"),
        ("POST", "/dlq/0/replay", 422, "invalid_request"),
        ("GET", "/crosswalk/not-an-id", 400, "invalid_canonical_id"),
        ("GET", "/crosswalk/xyz_" + "0" * 26, 400, "invalid_canonical_id"),
        ("GET", "/nowhere", 404, "not_found"),
        ("DELETE", "/health", 405, "method_not_allowed"),
    ],
)
async def test_bad_input_gets_a_clear_4xx_json_error(client: httpx.AsyncClient, method: str, url: str, status: int,
                                                     code: str) -> None:
    response = await client.request(method, url)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"]
