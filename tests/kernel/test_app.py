"""The kernel assembled: auth -> tenant, versions, limits, faults, journal, control API, snapshots."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mocks.kernel.app import create_mock_app
from mocks.kernel.ratelimit import RateLimitPolicy
from mocks.kernel.serving import ServerThread
from tests.kernel.toy_system import toy_system

ADMIN = {"Lockstep-Admin-Token": "admin-secret"}
A = {"X-Api-Key": "key_alpha"}
B = {"X-Api-Key": "key_beta"}


def make_app(**kwargs: object) -> FastAPI:
    limits = kwargs.pop("limits", None)
    return create_mock_app(toy_system(limits=limits), admin_token="admin-secret", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app()), base_url="http://toy") as c:
        yield c


async def test_missing_and_malformed_credentials_get_the_vendor_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"X-Api-Key": "nope"}, {"X-Api-Key": "key_bad!"}):
        response = await client.get("/things/t1", headers=headers)
        assert response.status_code == 401
        assert response.json()["toy_error"]["kind"] == "unauthorized"


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    created = await client.post("/things", json={"name": "a's"}, headers=A)
    assert created.status_code == 201
    thing_id = created.json()["id"]
    assert (await client.get(f"/things/{thing_id}", headers=A)).status_code == 200
    other = await client.get(f"/things/{thing_id}", headers=B)
    assert other.status_code == 404
    assert other.json()["toy_error"]["kind"] == "not_found"


async def test_auto_provisioning_can_be_switched_off() -> None:
    app = make_app(auto_provision=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://toy") as c:
        assert (await c.get("/things/t1", headers=A)).status_code == 401
        made = await c.post("/_sandbox/tenants", json={"key": "key_alpha"}, headers=ADMIN)
        assert made.status_code == 201
        assert (await c.get("/things/t1", headers=A)).status_code == 404


async def test_unknown_route_and_method_use_the_vendor_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere", headers=A)
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["toy_error"]["message"]
    response = await client.delete("/things", headers=A)
    assert response.status_code == 405
    assert response.json()["toy_error"]["kind"] == "method_not_allowed"


async def test_version_header_selects_the_rendering_and_unknown_versions_are_refused(
    client: httpx.AsyncClient,
) -> None:
    v2 = await client.post("/things", json={"name": "x"}, headers=A)
    assert v2.json()["name"] == "x" and "title" not in v2.json()
    v1 = await client.get(f"/things/{v2.json()['id']}", headers={**A, "X-Api-Version": "v1"})
    assert v1.json()["title"] == "x" and "name" not in v1.json()
    bad = await client.get("/things/t1", headers={**A, "X-Api-Version": "v9"})
    assert bad.status_code == 400
    assert bad.json()["toy_error"]["kind"] == "unknown_version"


async def test_tenant_default_version_is_switchable_at_runtime(client: httpx.AsyncClient) -> None:
    made = await client.post("/things", json={"name": "x"}, headers=A)
    switched = await client.put("/_sandbox/tenants/key_alpha/version", json={"api_version": "v1"}, headers=ADMIN)
    assert switched.status_code == 200
    again = await client.get(f"/things/{made.json()['id']}", headers=A)
    assert again.json()["title"] == "x"
    refused = await client.put("/_sandbox/tenants/key_alpha/version", json={"api_version": "v7"}, headers=ADMIN)
    assert refused.status_code == 400


async def test_oversized_body_is_refused_before_the_route() -> None:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://toy") as c:
        response = await c.post("/things", content=b"{" + b" " * 5000 + b"}", headers=A)
        assert response.status_code == 413
        assert response.json()["toy_error"]["kind"] == "too_large"
        tenant = app.state.registry.get("key_alpha")
        assert tenant.state.things == {}
        assert [e["status"] for e in tenant.journal.query()] == [413]


async def test_rate_limit_refuses_with_rendered_headers() -> None:
    app = make_app(limits=[RateLimitPolicy(name="burst", kind="fixed", limit=3, window_s=60)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://toy") as c:
        statuses = [(await c.post("/things", json={"name": str(i)}, headers=A)) for i in range(4)]
        assert [r.status_code for r in statuses] == [201, 201, 201, 429]
        assert statuses[0].headers["x-toy-usage"] == "burst=1/3"
        assert statuses[3].json()["toy_error"]["kind"] == "rate_limited"
        assert int(statuses[3].headers["retry-after"]) >= 1
        # Another tenant has its own budget.
        assert (await c.post("/things", json={"name": "b"}, headers=B)).status_code == 201


async def test_injected_error_fault_is_seeded_and_journaled(client: httpx.AsyncClient) -> None:
    await client.post("/things", json={"name": "warm"}, headers=A)
    rules = {"rules": [{"id": "boom", "route": "/things*", "kind": "error", "status": 503, "max_hits": 2}]}
    assert (await client.put("/_sandbox/tenants/key_alpha/faults", json=rules, headers=ADMIN)).status_code == 200
    statuses = [(await client.get("/things/t1", headers=A)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    journal = (await client.get("/_sandbox/tenants/key_alpha/journal", params={"fault": "true"},
                                headers=ADMIN)).json()
    assert [e["fault"]["rule"] for e in journal] == ["boom", "boom"]


async def test_drop_fault_closes_a_real_connection() -> None:
    app = make_app()
    with ServerThread(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as c:
            await c.post("/things", json={"name": "warm"}, headers=A)
            rules = {"rules": [{"id": "cut", "route": "/things/*", "kind": "drop"}]}
            await c.put("/_sandbox/tenants/key_alpha/faults", json=rules, headers=ADMIN)
            with pytest.raises(httpx.TransportError):
                await c.get("/things/t1", headers=A)
            entries = (await c.get("/_sandbox/tenants/key_alpha/journal", headers=ADMIN)).json()
            assert entries[-1]["fault"]["kind"] == "drop"


async def test_journal_records_correlation_ids_and_bodies(client: httpx.AsyncClient) -> None:
    await client.post("/things", json={"name": "traced"}, headers={**A, "X-Correlation-Id": "corr-42"})
    await client.post("/things", json={"name": "other"}, headers=A)
    found = (await client.get("/_sandbox/tenants/key_alpha/journal", params={"correlation_id": "corr-42"},
                              headers=ADMIN)).json()
    assert len(found) == 1
    assert found[0]["status"] == 201 and "traced" in found[0]["request_body"]
    assert found[0]["method"] == "POST" and found[0]["path"] == "/things"


async def test_control_api_requires_the_admin_token(client: httpx.AsyncClient) -> None:
    await client.post("/things", json={"name": "x"}, headers=A)
    for path in ("/_sandbox/tenants", "/_sandbox/snapshot", "/_sandbox/tenants/key_alpha/journal"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers={"Lockstep-Admin-Token": "wrong"})).status_code == 401
    assert (await client.post("/_sandbox/tenants/key_alpha/reset")).status_code == 401
    assert (await client.get("/_sandbox/tenants", headers={"Authorization": "Bearer admin-secret"})).status_code == 200
    assert (await client.get("/_sandbox/health")).status_code == 200


async def test_clock_advance_runs_due_jobs_in_order(client: httpx.AsyncClient) -> None:
    short = (await client.post("/things", json={"name": "short", "ttl": 60}, headers=A)).json()
    long = (await client.post("/things", json={"name": "long", "ttl": 7200}, headers=A)).json()
    moved = await client.post("/_sandbox/tenants/key_alpha/clock/advance", json={"by": "30m"}, headers=ADMIN)
    assert moved.status_code == 200 and moved.json()["jobs_run"] == 1
    assert (await client.get(f"/things/{short['id']}", headers=A)).status_code == 404
    assert (await client.get(f"/things/{long['id']}", headers=A)).status_code == 200
    back = await client.post("/_sandbox/tenants/key_alpha/clock/advance", json={"to": 0}, headers=ADMIN)
    assert back.status_code == 400 and "backwards" in back.json()["error"]["message"]
    both = await client.post("/_sandbox/tenants/key_alpha/clock/advance", json={"to": 1, "by": 1}, headers=ADMIN)
    assert both.status_code == 400


async def test_snapshot_restore_roundtrip_including_pending_jobs(client: httpx.AsyncClient) -> None:
    thing = (await client.post("/things", json={"name": "keep", "ttl": 100}, headers=A)).json()
    snapshot = (await client.get("/_sandbox/tenants/key_alpha/snapshot", headers=ADMIN)).json()
    await client.post("/_sandbox/tenants/key_alpha/reset", headers=ADMIN)
    assert (await client.get(f"/things/{thing['id']}", headers=A)).status_code == 404
    restored = await client.post("/_sandbox/tenants/key_alpha/restore", json=snapshot, headers=ADMIN)
    assert restored.status_code == 200
    assert (await client.get(f"/things/{thing['id']}", headers=A)).json()["name"] == "keep"
    await client.post("/_sandbox/tenants/key_alpha/clock/advance", json={"by": 101}, headers=ADMIN)
    assert (await client.get(f"/things/{thing['id']}", headers=A)).status_code == 404


async def test_bad_control_input_gets_a_clear_400(client: httpx.AsyncClient) -> None:
    await client.post("/things", json={"name": "x"}, headers=A)
    bad_fault = {"rules": [{"route": "*", "kind": "error", "probability": 1.5}]}
    response = await client.put("/_sandbox/tenants/key_alpha/faults", json=bad_fault, headers=ADMIN)
    assert response.status_code == 400 and "probability" in response.json()["error"]["message"]
    response = await client.post("/_sandbox/tenants/key_alpha/restore", content=b"not json", headers=ADMIN)
    assert response.status_code == 400
    response = await client.get("/_sandbox/tenants/nobody/clock", headers=ADMIN)
    assert response.status_code == 404


async def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "toy.json"
    with ServerThread(make_app(state_file=state_file)) as server:
        made = httpx.post(f"{server.url}/things", json={"name": "durable"}, headers=A).json()
    assert json.loads(state_file.read_text())["tenants"]["key_alpha"]["state"]["things"]
    with ServerThread(make_app(state_file=state_file)) as server:
        again = httpx.get(f"{server.url}/things/{made['id']}", headers=A)
    assert again.status_code == 200 and again.json()["name"] == "durable"


async def test_webhook_endpoint_registered_through_control_api_receives_signed_events() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: __import__("fastapi").Request) -> dict[str, bool]:
        received.append((await request.body(), dict(request.headers)))
        return {"ok": True}

    from mocks.kernel.webhooks import DeliveryRoutes

    routes = DeliveryRoutes()
    routes.register("http://receiver", receiver)
    app = make_app(routes=routes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://toy") as c:
        await c.post("/things", json={"name": "first"}, headers=A)
        endpoint = await c.post("/_sandbox/tenants/key_alpha/webhooks/endpoints",
                                json={"url": "http://receiver/hook", "secret": "s3cret"}, headers=ADMIN)
        assert endpoint.status_code == 201
        await c.post("/things", json={"name": "second"}, headers=A)
        drained = await c.post("/_sandbox/tenants/key_alpha/webhooks/drain", headers=ADMIN)
        assert drained.json()["drained"] is True
        deliveries = (await c.get("/_sandbox/tenants/key_alpha/deliveries", headers=ADMIN)).json()
    assert len(received) == 1 and b"second" in received[0][0]
    assert received[0][1]["toy-signature"].startswith("t=")
    assert deliveries[0]["status"] == "delivered"


async def test_webhook_chaos_is_validated_and_applied(client: httpx.AsyncClient) -> None:
    await client.post("/things", json={"name": "x"}, headers=A)
    bad = await client.put("/_sandbox/tenants/key_alpha/webhooks/chaos", json={"duplicate_probability": 2},
                           headers=ADMIN)
    assert bad.status_code == 400 and "duplicate_probability" in bad.json()["error"]["message"]
    good = await client.put("/_sandbox/tenants/key_alpha/webhooks/chaos",
                            json={"duplicate_probability": 1, "delay_ms": [1, 5]}, headers=ADMIN)
    assert good.status_code == 200
    tenant = client._transport.app.state.registry.get("key_alpha")  # type: ignore[attr-defined]
    assert tenant.webhooks.dump()["chaos"]["duplicate_probability"] == 1


async def test_creating_an_existing_tenant_is_a_conflict(client: httpx.AsyncClient) -> None:
    await client.post("/things", json={"name": "x"}, headers=A)
    again = await client.post("/_sandbox/tenants", json={"key": "key_alpha"}, headers=ADMIN)
    assert again.status_code == 409
    assert (await client.get("/things/t1", headers=A)).status_code == 200
