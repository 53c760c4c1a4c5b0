"""NetSuite governance: a per-tenant concurrency limit, tested with real concurrency (slow requests in flight)."""

from __future__ import annotations

import asyncio

import httpx

from mocks.kernel.serving import ServerThread
from tests.erp.conftest import ADMIN, ROOT, TOKEN_A, TOKEN_B, client_for, error_of, make_app, make_customer

SLOW = {"rules": [{"id": "slow", "route": f"{ROOT}/customer*", "method": "GET", "kind": "latency",
                   "latency_ms": 400}]}


async def burst(client: httpx.AsyncClient, n: int) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.get(f"{ROOT}/customer") for _ in range(n))))


async def test_sixth_request_in_flight_gets_concurrency_limit_exceeded() -> None:
    app = make_app()
    async with client_for(app) as a, client_for(app, TOKEN_B) as b:
        await make_customer(a)
        await b.get(f"{ROOT}/customer")
        assert (await a.put(f"/_sandbox/tenants/{TOKEN_A}/faults", json=SLOW, headers=ADMIN)).status_code == 200
        responses, other = await asyncio.gather(burst(a, 8), b.get(f"{ROOT}/customer"))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 5 + [429] * 3
        refused = next(r for r in responses if r.status_code == 429)
        detail = error_of(refused)
        assert detail["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
        assert refused.json()["title"] == "Too Many Requests"
        assert other.status_code == 200  # another tenant has its own slots
        # Slots free up once the slow requests finish.
        assert (await a.get(f"{ROOT}/customer")).status_code == 200
        journal = (await a.get(f"/_sandbox/tenants/{TOKEN_A}/journal", params={"status": 429},
                               headers=ADMIN)).json()
        assert len(journal) == 3


async def test_limit_is_configurable_through_the_control_api() -> None:
    app = make_app()
    async with client_for(app) as a:
        await a.get(f"{ROOT}/customer")
        limits = {"policies": [{"name": "concurrency", "kind": "concurrency", "limit": 2,
                                "route": "/services/rest/*"}]}
        assert (await a.put(f"/_sandbox/tenants/{TOKEN_A}/limits", json=limits, headers=ADMIN)).status_code == 200
        await a.put(f"/_sandbox/tenants/{TOKEN_A}/faults", json=SLOW, headers=ADMIN)
        statuses = sorted(r.status_code for r in await burst(a, 4))
        assert statuses == [200, 200, 429, 429]


async def test_concurrency_limit_over_a_real_socket() -> None:
    app = make_app(concurrency=3)
    with ServerThread(app) as server:
        headers = {"Authorization": f"Bearer {TOKEN_A}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as c:
            created = await c.post(f"{ROOT}/customer", json={"companyName": "Socket Co"})
            assert created.status_code == 204
            assert created.headers["location"].startswith(f"{server.url}{ROOT}/customer/")
            await c.put(f"/_sandbox/tenants/{TOKEN_A}/faults", json=SLOW, headers=ADMIN)
            statuses = sorted(r.status_code for r in await burst(c, 5))
            assert statuses == [200, 200, 200, 429, 429]
            await c.delete(f"/_sandbox/tenants/{TOKEN_A}/faults", headers=ADMIN)
            got = await c.get(created.headers["location"])
            assert got.status_code == 200 and got.json()["companyName"] == "Socket Co"


async def test_injected_error_faults_wear_the_netsuite_envelope(client: httpx.AsyncClient) -> None:
    await client.get(f"{ROOT}/customer")
    rules = {"rules": [{"id": "boom", "route": f"{ROOT}/*", "kind": "error", "status": 503, "max_hits": 1}]}
    await client.put(f"/_sandbox/tenants/{TOKEN_A}/faults", json=rules, headers=ADMIN)
    failed = await client.get(f"{ROOT}/customer")
    assert failed.status_code == 503 and error_of(failed)["o:errorCode"] == "SERVICE_UNAVAILABLE"
    assert (await client.get(f"{ROOT}/customer")).status_code == 200
