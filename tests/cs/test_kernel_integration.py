"""The CS mock inside the kernel: auth, tenant isolation, admin token, rate limit, seed, actions, snapshots."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from mocks.cs.system import cs_system
from mocks.kernel.app import create_mock_app
from mocks.kernel.ratelimit import RateLimitPolicy
from mocks.kernel.serving import ServerThread
from mocks.kernel.tenants import TenantRegistry
from tests.cs.conftest import ADMIN, ADMIN_TOKEN, KEY_A, A, B, assert_error, insert, query, tenant_of


class FakeWall:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_missing_or_malformed_access_key_is_a_gainsight_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"accesskey": ""}, {"accesskey": "short"}, {"accesskey": "bad key with spaces"},
                    {"Authorization": "Bearer tenant-alpha"}):
        r = await client.post("/v1/data/objects/query/Company", json={}, headers=headers)
        body = assert_error(r, 401, "GS_1101")
        assert "accesskey" in body["errorDesc"]


async def test_unknown_keys_are_refused_without_auto_provisioning() -> None:
    app = create_mock_app(cs_system(), admin_token=ADMIN_TOKEN, auto_provision=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cs") as c:
        assert_error(await c.post("/v1/data/objects/query/Company", json={}, headers=A), 401, "GS_1101")
        assert (await c.post("/_sandbox/tenants", json={"key": KEY_A}, headers=ADMIN)).status_code == 201
        assert (await c.post("/v1/data/objects/query/Company", json={}, headers=A)).status_code == 200


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Alpha's", "ExternalId": "X-1"})
    assert await query(client, {}, headers=B) == []
    assert_error(await client.get(f"/v1/scorecard/company/{gsid}", headers=B), 404, "GS_3004")
    assert_error(await client.delete(f"/v1/data/objects/Company/{gsid}", headers=B), 404, "GS_3004")
    # The same ExternalId is free in another tenant.
    await insert(client, {"Name": "Beta's", "ExternalId": "X-1"}, headers=B)
    assert [r["Name"] for r in await query(client, {})] == ["Alpha's"]


async def test_control_api_refuses_without_the_admin_token(client: httpx.AsyncClient) -> None:
    await insert(client, {"Name": "Acme"})
    for headers in ({}, {"Lockstep-Admin-Token": "wrong"}, A):
        r = await client.post(f"/_sandbox/tenants/{KEY_A}/seed", json={"companies": 1}, headers=headers)
        assert r.status_code == 401
        r = await client.post(f"/_sandbox/tenants/{KEY_A}/actions", json={"action": "change_stage"}, headers=headers)
        assert r.status_code == 401
    assert len(await query(client, {})) == 1


async def test_rate_limit_is_200_calls_per_minute_with_gainsight_429() -> None:
    wall = FakeWall(1_000_000.0)  # an aligned minute starts at 999_960
    registry = TenantRegistry(cs_system(), wall=wall)
    app = create_mock_app(cs_system(), registry=registry, admin_token=ADMIN_TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cs") as c:
        for _ in range(200):
            assert (await c.post("/v1/data/objects/query/Company", json={}, headers=A)).status_code == 200
        r = await c.post("/v1/data/objects/query/Company", json={}, headers=A)
        body = assert_error(r, 429, "GS_4029")
        assert r.headers["Retry-After"] == "20"
        assert "rate limit" in body["errorDesc"].lower()
        # Per tenant: another tenant still gets through.
        assert (await c.post("/v1/data/objects/query/Company", json={}, headers=B)).status_code == 200
        wall.now += 20
        assert (await c.post("/v1/data/objects/query/Company", json={}, headers=A)).status_code == 200


async def test_limits_are_configurable_through_the_kernel(client: httpx.AsyncClient) -> None:
    await insert(client, {"Name": "Acme"})
    policy = {"name": "tiny", "kind": "rolling", "limit": 2, "window_s": 3600}
    r = await client.put(f"/_sandbox/tenants/{KEY_A}/limits", json={"policies": [policy]}, headers=ADMIN)
    assert r.status_code == 200
    for _ in range(2):
        assert (await client.post("/v1/data/objects/query/Company", json={}, headers=A)).status_code == 200
    r = await client.post("/v1/data/objects/query/Company", json={}, headers=A)
    assert_error(r, 429, "GS_4029")
    assert int(r.headers["Retry-After"]) > 3000
    cfg = cs_system(limits=[RateLimitPolicy(name="x", kind="fixed", limit=1, window_s=60)])
    assert [p.limit for p in cfg.default_limits()] == [1]
    assert [p.limit for p in cs_system().default_limits()] == [200]


async def test_unknown_routes_methods_and_versions_use_the_envelope(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/nowhere", headers=A), 404, "GS_3001")
    assert_error(await client.get("/v1/data/objects/Company", headers=A), 405, "GS_3002")
    assert_error(await client.post("/v1/data/objects/query/Company", json={}, headers={**A, "X-Gainsight-Version":
                                                                                      "v9"}), 400, "GS_2002")


async def test_seed_is_deterministic_and_muted(app: FastAPI, client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/tenants", json={"key": KEY_A, "seed": 7}, headers=ADMIN)
    explicit = {"Name": "Explicit Co", "ExternalId": "EXP-1", "persons": [{"Email": "x@exp.co"}],
                "measures": {"Support": 30}, "plan": "Enterprise Onboarding"}
    r = await client.post(f"/_sandbox/tenants/{KEY_A}/seed", json={"companies": 30, "records": [explicit]},
                          headers=ADMIN)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["companies"] == 31 and out["persons"] >= 31 and out["plans"] >= 2
    state = tenant_of(app).state
    assert state.companies[out["records"][0]["Gsid"]]["HealthScore"] == 30
    assert len(state.scorecards) == 31 and state.events.seq == 0
    # Same seed, same data.
    other = create_mock_app(cs_system(), admin_token=ADMIN_TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://cs") as c:
        await c.post("/_sandbox/tenants", json={"key": KEY_A, "seed": 7}, headers=ADMIN)
        again = (await c.post(f"/_sandbox/tenants/{KEY_A}/seed", json={"companies": 30, "records": [explicit]},
                              headers=ADMIN)).json()
        assert again == out
        assert other.state.registry.get(KEY_A).state.dump() == state.dump()
    bad = await client.post(f"/_sandbox/tenants/{KEY_A}/seed", json={"records": [{"ARR": 1}]}, headers=ADMIN)
    assert bad.status_code == 400 and "GSOBJ_1007" in bad.text


async def test_user_actions(app: FastAPI, client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "ExternalId": "A-1"})
    plan = (await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName":
                                                               "Renewal Readiness"}, headers=A)).json()["data"]
    cta = (await client.post("/v2/cockpit/cta", json={"requests": [{"Name": "r", "CompanyId": gsid,
                                                                    "TypeName": "Risk"}]},
                             headers=A)).json()["data"]["records"][0]
    url = f"/_sandbox/tenants/{KEY_A}/actions"
    r = await client.post(url, json={"action": "set_measure", "company": "A-1", "measure": "NPS", "score": 42},
                          headers=ADMIN)
    assert r.json()["score"] == 42
    r = await client.post(url, json={"action": "complete_milestone", "milestone": plan["Milestones"][0]["Gsid"]},
                          headers=ADMIN)
    assert r.json()["Milestones"][0]["Status"] == "Completed"
    r = await client.post(url, json={"action": "close_cta", "cta": cta["Gsid"], "status": "Closed Lost",
                                     "reason": "No budget"}, headers=ADMIN)
    assert r.json()["StatusName"] == "Closed Lost"
    r = await client.post(url, json={"action": "change_stage", "company": gsid, "stage": "Renewal"}, headers=ADMIN)
    assert r.json()["Stage"] == "Renewal"
    for body in ({"action": "dance"}, {"action": "change_stage", "company": gsid, "stage": "Bogus"},
                 {"action": "close_cta", "cta": cta["Gsid"]}, {"action": "set_measure", "company": "nope"}):
        assert (await client.post(url, json=body, headers=ADMIN)).status_code == 400


async def test_snapshot_restore_keeps_state_indexes_and_jobs(app: FastAPI, client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "ExternalId": "A-1"})
    await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName": "Renewal Readiness"},
                      headers=A)
    snap = (await client.get(f"/_sandbox/tenants/{KEY_A}/snapshot", headers=ADMIN)).json()
    await client.post(f"/_sandbox/tenants/{KEY_A}/reset", headers=ADMIN)
    assert await query(client, {}) == []
    r = await client.post(f"/_sandbox/tenants/{KEY_A}/restore", json=snap, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [c["Gsid"] for c in await query(client, {})] == [gsid]
    # Indexes are rebuilt: the ExternalId is still taken, upserts still match.
    assert_error(await client.post("/v1/data/objects/Company", json={"records": [{"Name": "B", "ExternalId": "A-1"}]},
                                   headers=A), 400, "GSOBJ_1009")
    assert len(tenant_of(app).clock.pending()) == 3


def test_real_socket_round_trip() -> None:
    app = create_mock_app(cs_system(), admin_token=ADMIN_TOKEN)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post("/v1/data/objects/Company", json={"records": [{"Name": "Socket Co"}]}, headers=A)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        r = c.post("/v1/data/objects/query/Company", json={"select": ["Name"]},
                   headers={**A, "X-Gainsight-Version": "v2"})
        assert r.json()["data"]["records"] == [{"Name": "Socket Co"}]
        assert c.post("/v1/data/objects/query/Company", json={}).status_code == 401
