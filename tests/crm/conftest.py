"""Shared CRM fixtures: an in-process app per test, a session token per tenant, the admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mocks.crm.system import crm_system
from mocks.kernel.app import create_mock_app

ADMIN_TOKEN = "crm-admin-secret"
ADMIN = {"Lockstep-Admin-Token": ADMIN_TOKEN}
TOKEN_A = "00D5j000000ALPHA!AQ4AQFakeSessionAlpha"
TOKEN_B = "00D5j000000BETA!AQ4AQFakeSessionBeta"
A = {"Authorization": f"Bearer {TOKEN_A}"}
B = {"Authorization": f"Bearer {TOKEN_B}"}
V = "/services/data/v60.0"
V59 = "/services/data/v59.0"


def make_app(**kwargs: Any) -> FastAPI:
    system_kwargs = {k: kwargs.pop(k) for k in ("daily_quota",) if k in kwargs}
    return create_mock_app(crm_system(**system_kwargs), admin_token=ADMIN_TOKEN, **kwargs)


@pytest.fixture
def app() -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://crm.test") as c:
        yield c


async def create(client: httpx.AsyncClient, obj: str, data: dict[str, Any], headers: dict[str, str] = A,
                 version: str = V) -> str:
    response = await client.post(f"{version}/sobjects/{obj}", json=data, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def soql(client: httpx.AsyncClient, q: str, *, all_rows: bool = False, headers: dict[str, str] = A,
               version: str = V) -> httpx.Response:
    return await client.get(f"{version}/{'queryAll' if all_rows else 'query'}", params={"q": q}, headers=headers)


async def action(client: httpx.AsyncClient, body: dict[str, Any], tenant: str = TOKEN_A) -> httpx.Response:
    return await client.post(f"/_sandbox/tenants/{tenant}/actions", json=body, headers=ADMIN)
