"""Session auth, the daily API quota, Sforce-Limit-Info on every response, and the admin-token guard."""

from __future__ import annotations

import httpx

from tests.crm.conftest import ADMIN, TOKEN_A, A, V, create, make_app


async def test_missing_or_malformed_session_gets_invalid_session_id(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer has spaces in it"}, {"Authorization": "Bearer <script>"}):
        response = await client.get(f"{V}/sobjects", headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert (await client.get(f"{V}/sobjects", headers={"Authorization": f"OAuth {TOKEN_A}"})).status_code == 200


async def test_unknown_tokens_are_refused_when_auto_provisioning_is_off() -> None:
    app = make_app(auto_provision=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://crm.test") as c:
        assert (await c.get(f"{V}/sobjects", headers=A)).status_code == 401
        made = await c.post("/_sandbox/tenants", json={"key": TOKEN_A}, headers=ADMIN)
        assert made.status_code == 201
        assert (await c.get(f"{V}/sobjects", headers=A)).status_code == 200


async def test_sforce_limit_info_counts_every_api_call_including_errors(client: httpx.AsyncClient) -> None:
    seen = []
    calls = [
        client.post(f"{V}/sobjects/Account", json={"Name": "A"}, headers=A),  # 201
        client.post(f"{V}/sobjects/Account", json={"Nope": 1}, headers=A),  # 400
        client.get(f"{V}/sobjects/Account/001000000000000AAA", headers=A),  # 404
        client.get(f"{V}/query", params={"q": "SELEC"}, headers=A),  # 400
        client.put(f"{V}/sobjects/Account", headers=A),  # 405
        client.get("/services/data/v12.0/limits", headers=A),  # 404 unknown version
    ]
    for call in calls:
        response = await call
        seen.append((response.status_code, response.headers.get("sforce-limit-info")))
    assert seen == [(201, "api-usage=1/15000"), (400, "api-usage=2/15000"), (404, "api-usage=3/15000"),
                    (400, "api-usage=4/15000"), (405, "api-usage=5/15000"), (404, "api-usage=6/15000")]


async def test_daily_quota_spent_gives_403_request_limit_exceeded_with_the_header() -> None:
    app = make_app(daily_quota=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://crm.test") as c:
        statuses = [(await c.get(f"{V}/limits", headers=A)) for _ in range(4)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 403]
        assert statuses[2].json()["DailyApiRequests"] == {"Max": 3, "Remaining": 0}
        refused = statuses[3]
        assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        assert refused.headers["sforce-limit-info"] == "api-usage=3/3"
        # Another org has its own quota; the admin can raise this one at runtime.
        other = await c.get(f"{V}/limits", headers={"Authorization": "Bearer other-org"})
        assert other.status_code == 200
        raised = await c.put(f"/_sandbox/tenants/{TOKEN_A}/limits", headers=ADMIN, json={"policies": [
            {"name": "DailyApiRequests", "kind": "daily", "limit": 10, "route": "/services/data/*"}]})
        assert raised.status_code == 200
        again = await c.get(f"{V}/limits", headers=A)
        assert again.status_code == 200 and again.headers["sforce-limit-info"] == "api-usage=4/10"


async def test_control_api_requires_the_admin_token(client: httpx.AsyncClient) -> None:
    await create(client, "Account", {"Name": "A"})
    body = {"action": "edit", "object": "Account", "id": "x", "fields": {}}
    assert (await client.post(f"/_sandbox/tenants/{TOKEN_A}/actions", json=body)).status_code == 401
    assert (await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", json={},
                              headers={"Lockstep-Admin-Token": "wrong"})).status_code == 401
    # A CRM session token is not an admin token.
    assert (await client.get(f"/_sandbox/tenants/{TOKEN_A}/journal", headers=A)).status_code == 401
    assert (await client.get(f"/_sandbox/tenants/{TOKEN_A}/journal", headers=ADMIN)).status_code == 200
