"""Webhooks: delivered to an in-process receiver, signed with X-Gainsight-Signature, rendered per version."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mocks.cs.events import SIGNATURE_HEADER, sign, verify
from mocks.kernel.webhooks import DeliveryRoutes
from tests.cs.conftest import ADMIN, KEY_A, A, insert, make_app

RECEIVER = "http://receiver.test"
SECRET = "whsec_cs_test"


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.requests.append((dict(request.headers), body))
        return Response(status_code=200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks/{name}", self.handle, methods=["POST"])])

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, Receiver, Any]]:
    receiver = Receiver()
    routes = DeliveryRoutes()
    routes.register(RECEIVER, receiver.app())
    app = make_app(routes=routes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cs") as c:
        await c.post("/_sandbox/tenants", json={"key": KEY_A}, headers=ADMIN)
        r = await c.post(f"/_sandbox/tenants/{KEY_A}/webhooks/endpoints",
                         json={"url": f"{RECEIVER}/hooks/main", "secret": SECRET}, headers=ADMIN)
        assert r.status_code == 201
        yield c, receiver, app.state.registry.get(KEY_A)


async def drain(client: httpx.AsyncClient) -> None:
    r = await client.post(f"/_sandbox/tenants/{KEY_A}/webhooks/drain", params={"timeout": 10}, headers=ADMIN)
    assert r.json() == {"drained": True, "pending": 0}


def test_signature_scheme() -> None:
    body = b'{"a":1}'
    header = sign(body, "s", 1_700_000_000)[SIGNATURE_HEADER]
    assert header.startswith("t=1700000000,v1=")
    assert verify(body, header, "s", 1_700_000_100)
    assert not verify(body + b" ", header, "s", 1_700_000_100)
    assert not verify(body, header, "other", 1_700_000_100)
    assert not verify(body, header, "s", 1_700_000_400)  # older than 300 s
    assert not verify(body, "garbage", "s", 1_700_000_000)


async def test_signed_events_for_company_health_cta_and_milestones(
    setup: tuple[httpx.AsyncClient, Receiver, Any],
) -> None:
    client, receiver, _tenant = setup
    [gsid] = await insert(client, {"Name": "Acme", "ExternalId": "A-1", "CSM": "csm@example.com"})
    await client.put(f"/v1/scorecard/company/{gsid}/measures", json={"measures": [{"name": "Support", "score": 80}]},
                     headers=A)
    await client.put(f"/v1/scorecard/company/{gsid}/measures", json={"measures": [{"name": "Support", "score": 80}]},
                     headers=A)  # unchanged: no health event
    await client.put(f"/v1/scorecard/company/{gsid}/measures", json={"measures": [{"name": "Support", "score": 30}]},
                     headers=A)
    cta = (await client.post("/v2/cockpit/cta", json={"requests": [{"Name": "r", "CompanyId": gsid,
                                                                    "TypeName": "Risk"}]},
                             headers=A)).json()["data"]["records"][0]
    await client.post(f"/v2/cockpit/cta/{cta['Gsid']}/close", json={}, headers=A)
    plan = (await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName":
                                                               "Renewal Readiness"}, headers=A)).json()["data"]
    await client.post(f"/v2/cockpit/successplan/milestone/{plan['Milestones'][0]['Gsid']}/complete", headers=A)
    await client.post(f"/_sandbox/tenants/{KEY_A}/clock/advance", json={"by": "22d"}, headers=ADMIN)
    await drain(client)

    now = time.time()
    for headers, body in receiver.requests:
        assert verify(body, headers[SIGNATURE_HEADER.lower()], SECRET, now)
        assert headers["content-type"] == "application/json"
    events = receiver.events()
    types = [e["eventType"] for e in events]
    # Company 1: health 80 (new), then 30 (changed).
    assert types == ["company.created", "company.health.changed", "company.health.changed", "cta.created",
                     "cta.closed", "milestone.completed", "milestone.overdue"]
    assert len({e["eventId"] for e in events}) == len(events)
    created = events[0]["data"]["company"]
    assert created["Gsid"] == gsid and created["CSM"] == "csm@example.com" and events[0]["apiVersion"] == "v1"
    first, second = events[1]["data"], events[2]["data"]
    assert (first["oldScore"], first["newScore"], first["trend"], first["color"]) == (None, 80, "flat", "green")
    assert (second["oldScore"], second["newScore"], second["trend"]) == (80, 30, "down")
    assert (second["oldColor"], second["color"], second["externalId"]) == ("green", "red", "A-1")
    assert events[4]["data"]["cta"]["StatusName"] == "Closed Success"
    assert events[5]["data"]["milestone"]["Name"] == "Usage review"
    overdue = events[6]["data"]
    assert overdue["milestone"]["Name"] == "Value summary" and overdue["milestone"]["Status"] == "Overdue"
    assert overdue["planId"] == plan["Gsid"] and events[6]["occurredAt"] == "2026-01-23T00:00:00Z"


async def test_company_updates_emit_changed_fields_and_render_per_endpoint_version(
    setup: tuple[httpx.AsyncClient, Receiver, Any],
) -> None:
    client, receiver, tenant = setup
    ep = tenant.webhooks.add_endpoint(f"{RECEIVER}/hooks/v2", secret=SECRET, events=["company.updated"],
                                      api_version="v2")
    [gsid] = await insert(client, {"Name": "Acme", "ExternalId": "A-1"})
    await insert(client, {"ExternalId": "A-1", "CSM": "new@example.com", "Stage": "Onboarding"}, keys="ExternalId")
    await insert(client, {"ExternalId": "A-1", "CSM": "new@example.com"}, keys="ExternalId")  # no change
    await drain(client)
    by_url: dict[str, list[dict[str, Any]]] = {}
    for d in tenant.webhooks.deliveries(limit=100):
        by_url.setdefault(d["endpoint_id"], []).append(d)
    v2_bodies = [json.loads(body) for headers, body in receiver.requests if b'"apiVersion":"v2"' in body]
    assert len(by_url[ep.id]) == 1 and len(v2_bodies) == 1
    v2 = v2_bodies[0]
    assert v2["eventType"] == "company.updated"
    assert sorted(v2["data"]["changedFields"]) == ["CSM", "Stage"]
    assert v2["data"]["company"]["CsmId"] == "new@example.com" and "CSM" not in v2["data"]["company"]
    assert v2["data"]["company"]["Stage"] == "ONBOARDING" and v2["data"]["company"]["Gsid"] == gsid
    v1_updates = [e for e in receiver.events() if e["eventType"] == "company.updated" and e["apiVersion"] == "v1"]
    assert [e["data"]["company"]["Stage"] for e in v1_updates] == ["Onboarding"]
