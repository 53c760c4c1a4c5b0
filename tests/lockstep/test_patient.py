"""The sandbox's vendor clients wait out 429s; the 429s themselves stay visible in the mock's journal."""

from __future__ import annotations

import httpx

from lockstep.patient import PatientTransport
from tests.billing.conftest import ADMIN, KEY_A, make_app


async def test_patient_client_gets_every_answer_under_a_tight_limit_and_the_429s_are_journaled() -> None:
    app = make_app(rate_limit=3)
    asgi = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=PatientTransport(asgi, owns_inner=False), base_url="http://billing.test",
                                 headers={"Authorization": f"Bearer {KEY_A}"}) as patient:
        statuses = [(await patient.get("/v1/customers")).status_code for _ in range(6)]
    assert statuses == [200] * 6
    async with httpx.AsyncClient(transport=asgi, base_url="http://billing.test",
                                 headers={"Lockstep-Admin-Token": ADMIN}) as admin:
        journal = (await admin.get(f"/_sandbox/tenants/{KEY_A}/journal", params={"status": 429})).json()
    assert journal, "the limit was hit: the mock journaled at least one 429 the client waited out"


async def test_patient_client_gives_the_429_back_when_attempts_run_out() -> None:
    app = make_app(rate_limit=1)
    transport = PatientTransport(httpx.ASGITransport(app=app), attempts=1)
    async with httpx.AsyncClient(transport=transport, base_url="http://billing.test",
                                 headers={"Authorization": f"Bearer {KEY_A}"}) as client:
        first = await client.get("/v1/customers")
        second = await client.get("/v1/customers")
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.json()["error"]["code"] == "rate_limit"
