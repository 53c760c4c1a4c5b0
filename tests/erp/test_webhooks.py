"""Change events as signed webhooks, delivered to an in-process receiver through the kernel's DeliveryRoutes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from mocks.erp.events import SIGNATURE_HEADER, sign, verify_signature
from mocks.kernel.webhooks import DeliveryRoutes
from tests.erp.conftest import (
    ADMIN,
    ROOT,
    TOKEN_A,
    action,
    client_for,
    create,
    make_app,
    make_customer,
    make_item,
    make_order,
)

SECRET = "whsec_erp_test"


class Receiver:
    def __init__(self) -> None:
        self.raw: list[tuple[bytes, dict[str, str]]] = []
        self.app = FastAPI()

        @self.app.post("/hooks/erp")
        async def hook(request: Request) -> dict[str, bool]:
            self.raw.append((await request.body(), dict(request.headers)))
            return {"ok": True}

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.raw]


@pytest.fixture
async def wired() -> AsyncIterator[tuple[httpx.AsyncClient, Receiver]]:
    receiver = Receiver()
    routes = DeliveryRoutes()
    routes.register("http://receiver.test", receiver.app)
    app = make_app(routes=routes)
    async with client_for(app) as c:
        await c.get(f"{ROOT}/customer")  # provisions the tenant
        endpoint = await c.post(f"/_sandbox/tenants/{TOKEN_A}/webhooks/endpoints",
                                json={"url": "http://receiver.test/hooks/erp", "secret": SECRET}, headers=ADMIN)
        assert endpoint.status_code == 201
        yield c, receiver


async def drain(client: httpx.AsyncClient) -> None:
    drained = await client.post(f"/_sandbox/tenants/{TOKEN_A}/webhooks/drain", headers=ADMIN)
    assert drained.json() == {"drained": True, "pending": 0}


async def test_events_are_signed_and_verifiable(wired: tuple[httpx.AsyncClient, Receiver]) -> None:
    client, receiver = wired
    cid = await make_customer(client, externalId="CRM-9")
    await drain(client)
    [(body, headers)] = receiver.raw
    signature = headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("t=") and ",v1=" in signature
    assert verify_signature(body, signature, SECRET)
    assert not verify_signature(body, signature, "wrong-secret")
    assert not verify_signature(body + b" ", signature, SECRET)
    ts = int(signature.split(",")[0][2:])
    assert not verify_signature(body, signature, SECRET, now=ts + 301)
    assert sign(body, SECRET, ts)[SIGNATURE_HEADER] == signature
    event = json.loads(body)
    assert set(event) == {"eventId", "eventType", "recordType", "recordId", "externalId", "timestamp", "changes",
                          "record", "apiVersion"}
    assert event["eventType"] == "customer.created" and event["recordType"] == "customer"
    assert event["recordId"] == cid and event["externalId"] == "CRM-9"
    assert event["timestamp"] == "2026-01-01T00:00:00Z"  # the tenant's sandbox clock
    assert event["changes"]["companyName"] == {"old": None, "new": "Acme Ltd"}
    assert event["record"]["companyName"] == "Acme Ltd" and event["apiVersion"] == "2024.2"


async def test_every_change_emits_one_event_including_derived_ones(wired: tuple[httpx.AsyncClient, Receiver]) -> None:
    client, receiver = wired
    item = await make_item(client)
    cid = await make_customer(client)
    so = await make_order(client, cid, item)
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/clock/advance", json={"by": "2d"}, headers=ADMIN)
    await client.patch(f"{ROOT}/customer/{cid}", json={"email": "new@acme.example"})
    await client.patch(f"{ROOT}/customer/{cid}", json={"email": "new@acme.example"})  # no-op: no event
    inv = await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    await action(client, {"action": "record_payment", "invoice": inv})
    await action(client, {"action": "place_credit_hold", "customer": cid})
    await client.delete(f"{ROOT}/item/{await make_item(client, 'SPARE')}")
    await drain(client)
    events = receiver.events()
    assert [e["eventType"] for e in events] == [
        "item.created", "customer.created", "salesOrder.created", "customer.updated", "invoice.created",
        "salesOrder.updated", "invoice.updated", "customer.updated", "item.created", "item.deleted",
    ]
    assert len({e["eventId"] for e in events}) == len(events)
    email = events[3]
    assert email["changes"]["email"] == {"old": "ap@acme.example", "new": "new@acme.example"}
    assert email["timestamp"] == "2026-01-03T00:00:00Z"
    assert events[5]["changes"]["status"] == {"old": "Pending Fulfillment", "new": "Billed"}
    assert events[6]["changes"]["status"] == {"old": "Open", "new": "Paid In Full"}
    assert events[7]["changes"]["creditHoldOverride"] == {"old": "AUTO", "new": "ON"}
    deleted = events[9]
    assert deleted["record"] is None and deleted["changes"]["itemId"] == {"old": "SPARE", "new": None}


async def test_overdue_invoice_event_when_the_clock_passes_the_due_date(
    wired: tuple[httpx.AsyncClient, Receiver],
) -> None:
    client, receiver = wired
    item = await make_item(client)
    cid = await make_customer(client, terms={"id": "4"})  # Net 15
    so = await make_order(client, cid, item)
    inv = await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/clock/advance", json={"by": "10d"}, headers=ADMIN)
    await drain(client)
    assert "invoice.overdue" not in [e["eventType"] for e in receiver.events()]
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/clock/advance", json={"by": "10d"}, headers=ADMIN)
    await drain(client)
    overdue = [e for e in receiver.events() if e["eventType"] == "invoice.overdue"]
    assert len(overdue) == 1 and overdue[0]["recordId"] == inv
    assert overdue[0]["record"]["daysOverdue"] == 1  # the job runs at its due instant, day 1 overdue
    assert overdue[0]["timestamp"] == "2026-01-17T00:00:00Z"
    invoice = (await client.get(f"{ROOT}/invoice/{inv}")).json()
    assert invoice["daysOverdue"] == 5  # the clock is now at 2026-01-21


async def test_endpoint_version_and_seed_quietness(wired: tuple[httpx.AsyncClient, Receiver]) -> None:
    client, receiver = wired
    seeded = await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", json={"customers": 3}, headers=ADMIN)
    assert seeded.status_code == 200
    await drain(client)
    assert receiver.raw == []  # seeding is quiet unless asked
    await client.put(f"/_sandbox/tenants/{TOKEN_A}/version", json={"api_version": "2025.1"}, headers=ADMIN)
    await make_customer(client)
    await drain(client)
    event = receiver.events()[0]
    assert event["apiVersion"] == "2025.1"
    assert event["record"]["creditHoldOverride"] == {"id": "AUTO", "refName": "Auto"}
    deliveries = (await client.get(f"/_sandbox/tenants/{TOKEN_A}/deliveries", headers=ADMIN)).json()
    assert deliveries[0]["status"] == "delivered" and deliveries[0]["event_type"] == "customer.created"


async def test_snapshot_keeps_the_event_sequence(wired: tuple[httpx.AsyncClient, Receiver]) -> None:
    client, receiver = wired
    await make_customer(client)
    snap = (await client.get(f"/_sandbox/tenants/{TOKEN_A}/snapshot", headers=ADMIN)).json()
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/restore", json=snap, headers=ADMIN)
    await make_customer(client, companyName="After Restore")
    await drain(client)
    ids = [e["eventId"] for e in receiver.events()]
    assert len(ids) == 2 and len(set(ids)) == 2
