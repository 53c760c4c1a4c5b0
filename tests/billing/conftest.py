"""Fixtures for billing's HTTP tests: the app in-process (httpx + ASGITransport) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import stripe

from mocks.billing.system import billing_system
from mocks.kernel.app import create_mock_app

stripe.enable_telemetry = False

KEY_A = "sk_test_tenantAAAA1234"
KEY_B = "sk_test_tenantBBBB5678"
ADMIN = "admin-token-for-tests"


def make_app(**system_kwargs):  # type: ignore[no-untyped-def]
    system_kwargs.setdefault("rate_limit", None)
    return create_mock_app(billing_system(**system_kwargs), admin_token=ADMIN)


@pytest.fixture
def app():  # type: ignore[no-untyped-def]
    return make_app()


def client_for(app, key: str | None = KEY_A, **headers: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    hdrs = dict(headers)
    if key is not None:
        hdrs["Authorization"] = f"Bearer {key}"
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing.test", headers=hdrs)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    async with client_for(app) as c:
        yield c


@pytest.fixture
async def client_b(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    async with client_for(app, KEY_B) as c:
        yield c
