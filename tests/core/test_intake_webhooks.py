"""POST /webhooks/{system} end to end (ASGI, real runtime on SQLite and PostgreSQL): refusals, inbox dedupe,
per-aggregate ordering, and flows started once per business key."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from dbos import DBOS

from core.api import create_core_app
from core.intake.router import register_flow
from core.runtime import Runtime
from tests.core._runtime_kit import (
    billing_body,
    billing_event,
    dbos_call,
    launched_runtime,
    signed_headers,
    unique,
    wait_async,
)

RUNS: Counter[str] = Counter()


def payment_flow(event: dict) -> str:
    RUNS[event["business_key"]] += 1
    return event["event_id"]


def sync_flow(event: dict) -> int:
    RUNS[event["business_key"]] += 1
    return event["aggregate_version"]


def closed_won_flow(event: dict) -> str:
    RUNS[event["business_key"]] += 1
    return event["payload"]["payload"]["StageName"]


def _closed_lost_key(event: object) -> str | None:
    # Keyed on "Closed Lost" so this test flow never competes with the real lead-to-cash flow for an event.
    payload = event.payload["payload"]  # type: ignore[attr-defined]
    if payload.get("StageName") != "Closed Lost":
        return None
    return f"test-closed-lost:{payload['ChangeEventHeader']['recordIds'][0]}"


register_flow(["billing:invoice.paid", "billing:invoice.payment_failed"],
              lambda e: f"payment:{e.payload['data']['object']['id']}", payment_flow, name="intake_payment")
register_flow(["billing:invoice.updated"], lambda e: f"sync:{e.aggregate_key}:{e.aggregate_version}", sync_flow,
              name="intake_sync")
register_flow(["crm:OpportunityChangeEvent"], _closed_lost_key, closed_won_flow, name="intake_closed_won")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from launched_runtime(request.param, Path(tmp_path_factory.mktemp(f"intake_{request.param}")))


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_core_app(runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://core") as c:
        yield c


async def post(client: httpx.AsyncClient, system: str, body: bytes, headers: dict[str, str] | None = None
               ) -> httpx.Response:
    return await client.post(f"/webhooks/{system}", content=body,
                             headers=signed_headers(system, body) if headers is None else headers)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [("forged", 401, "signature_mismatch"), ("stale", 401, "signature_stale"), ("unsigned", 400, "signature_missing"),
     ("wrong secret", 401, "signature_mismatch"), ("malformed header", 400, "signature_malformed")],
)
async def test_bad_signatures_are_refused_logged_and_never_reach_the_inbox(
    client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture, case: str, status: int, code: str
) -> None:
    event_id = unique("evt")
    body = billing_body("invoice.paid", unique("in"), created=1, event_id=event_id)
    headers = signed_headers("billing", body)
    if case == "forged":
        body = body.replace(b'"created": 1', b'"created": 2')
    elif case == "stale":
        headers = signed_headers("billing", body, at=time.time() - 301)
    elif case == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif case == "wrong secret":
        headers = signed_headers("billing", body, secret="whsec_guess")
    elif case == "malformed header":
        headers = {"Stripe-Signature": "v1=abc"}
    with caplog.at_level(logging.WARNING, logger="lockstep.core.intake"):
        response = await post(client, "billing", body, headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert any("webhook rejected" in r.getMessage() and "system=billing" in r.getMessage() for r in caplog.records)
    assert runtime.inbox.get("billing", event_id) is None


async def test_a_delivery_starts_its_flow_and_a_duplicate_stops_at_the_inbox(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    inv, event_id = unique("in"), unique("evt")
    body = billing_body("invoice.paid", inv, created=10, event_id=event_id)
    first = await post(client, "billing", body)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "accepted"
    [started] = first.json()["flows"]
    assert (started["workflow_id"], started["created"]) == (f"payment:{inv}", True)
    second = await post(client, "billing", body)  # the vendor retries: same event id
    assert (second.status_code, second.json()["status"]) == (200, "duplicate")
    assert (await wait_async(f"payment:{inv}")).status == "SUCCESS"
    assert RUNS[f"payment:{inv}"] == 1
    entry = runtime.inbox.get("billing", event_id)
    assert entry is not None and (entry.status, entry.deliveries, entry.flow_ids) == ("routed", 2, [f"payment:{inv}"])


async def test_a_second_event_for_the_same_business_key_starts_no_second_flow(client: httpx.AsyncClient) -> None:
    inv = unique("in")
    failed = await post(client, "billing", billing_body("invoice.payment_failed", inv, created=10))
    paid = await post(client, "billing", billing_body("invoice.paid", inv, created=20))
    assert failed.json()["flows"][0]["created"] is True
    assert paid.json()["status"] == "accepted" and paid.json()["flows"][0]["created"] is False
    assert (await wait_async(f"payment:{inv}")).status == "SUCCESS"
    assert RUNS[f"payment:{inv}"] == 1
    assert len(await dbos_call(DBOS.list_workflows, workflow_id_prefix=f"payment:{inv}")) == 1


async def test_out_of_order_events_for_one_aggregate_ignore_the_stale_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    inv = unique("in")
    newer = await post(client, "billing", billing_body("invoice.updated", inv, created=200))
    older_id = unique("evt")
    older = await post(client, "billing", billing_body("invoice.updated", inv, created=100, event_id=older_id))
    assert newer.json()["status"] == "accepted"
    assert older.status_code == 200 and older.json()["status"] == "stale"
    assert "version 100 < 200" in older.json()["detail"]
    assert (await wait_async(f"sync:invoice:{inv}:200")).status == "SUCCESS"
    assert await dbos_call(DBOS.get_workflow_status, f"sync:invoice:{inv}:100") is None
    entry = runtime.inbox.get("billing", older_id)
    assert entry is not None and entry.status == "stale" and entry.flow_ids == []


async def test_events_no_flow_wants_are_acknowledged_and_recorded(client: httpx.AsyncClient, runtime: Runtime) -> None:
    opp = "006" + unique("x")[:15]

    def cdc(stage: str, commit: int) -> bytes:
        header = {"entityName": "Opportunity", "recordIds": [opp], "changeType": "UPDATE",
                  "transactionKey": unique("tx"), "sequenceNumber": 1, "commitNumber": commit,
                  "commitTimestamp": 1_700_000_000_000, "changedFields": ["StageName"]}
        return json.dumps({"schema": "lockstep-OpportunityChangeEvent-v60.0",
                           "payload": {"ChangeEventHeader": header, "StageName": stage},
                           "event": {"replayId": commit}}).encode()

    ignored = await post(client, "crm", cdc("Negotiation", 1))
    assert ignored.json()["status"] == "ignored"
    lost = await post(client, "crm", cdc("Closed Lost", 2))
    assert [f["workflow_id"] for f in lost.json()["flows"]] == [f"test-closed-lost:{opp}"]
    assert (await wait_async(f"test-closed-lost:{opp}")).status == "SUCCESS"
    result = await dbos_call(lambda: DBOS.retrieve_workflow(f"test-closed-lost:{opp}").get_result())
    assert result == "Closed Lost"


async def test_an_event_left_unfinished_by_a_crash_is_processed_on_redelivery(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    inv, event_id = unique("in"), unique("evt")
    body = billing_body("invoice.paid", inv, created=5, event_id=event_id)
    runtime.inbox.claim(billing_event("invoice.paid", inv, created=5, event_id=event_id))  # crashed right after
    response = await post(client, "billing", body)
    assert response.json()["status"] == "accepted"
    assert (await wait_async(f"payment:{inv}")).status == "SUCCESS"


@pytest.mark.parametrize(
    ("system", "body", "status", "code"),
    [("billing", b"not json", 400, "malformed_event"), ("billing", b"[1,2]", 400, "malformed_event"),
     ("billing", b'{"id": "evt_1"}', 400, "malformed_event"), ("cs", b'{"eventType": "x"}', 400, "malformed_event"),
     ("hubspot", b"{}", 404, "unknown_system"),
     # Beyond what the inbox can store: a timestamp no clock holds, an id past the column, a 64-bit overflow.
     ("billing", json.dumps({"id": "evt_big", "type": "invoice.paid", "created": 10**30,
                             "data": {"object": {"id": "in_1"}}}).encode(), 400, "malformed_event"),
     ("billing", json.dumps({"id": "evt_" + "x" * 300, "type": "invoice.paid", "created": 1,
                             "data": {"object": {"id": "in_1"}}}).encode(), 400, "malformed_event"),
     ("cs", json.dumps({"eventId": "evt_" + "9" * 25, "eventType": "company.updated",
                        "occurredAt": "2026-01-01T00:00:00Z", "data": {}}).encode(), 400, "malformed_event")],
)
async def test_signed_but_malformed_bodies_are_400s(client: httpx.AsyncClient, system: str, body: bytes, status: int,
                                                    code: str) -> None:
    headers = signed_headers(system, body) if system != "hubspot" else {}
    response = await post(client, system, body, headers)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    body = b"{" + b" " * (runtime.settings.max_webhook_bytes + 1) + b"}"
    response = await post(client, "billing", body)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "body_too_large")
