"""Fixtures for the CS mock: an in-process app per test, driven through httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mocks.cs.system import cs_system
from mocks.kernel.app import create_mock_app
from mocks.kernel.ratelimit import RateLimitPolicy

ADMIN_TOKEN = "cs-admin-secret"
ADMIN = {"Lockstep-Admin-Token": ADMIN_TOKEN}
KEY_A = "tenant-alpha"
KEY_B = "tenant-beta"
A = {"accesskey": KEY_A}
B = {"accesskey": KEY_B}
V2 = {**A, "X-Gainsight-Version": "v2"}


def make_app(limits: list[RateLimitPolicy] | None = None, **kwargs: Any) -> FastAPI:
    return create_mock_app(cs_system(limits=limits), admin_token=ADMIN_TOKEN, **kwargs)


@pytest.fixture
def app() -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cs.test") as c:
        yield c


def tenant_of(app: FastAPI, key: str = KEY_A) -> Any:
    return app.state.registry.get(key)


async def insert(client: httpx.AsyncClient, *records: dict[str, Any], headers: dict[str, str] = A,
                 keys: str | None = None) -> list[str]:
    params = {"keys": keys} if keys else None
    r = await client.post("/v1/data/objects/Company", json={"records": list(records)}, headers=headers,
                          params=params)
    assert r.status_code == 200, r.text
    return [rec["Gsid"] for rec in r.json()["data"]["records"]]


async def query(client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] = A,
                obj: str = "Company") -> list[dict[str, Any]]:
    r = await client.post(f"/v1/data/objects/query/{obj}", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]["records"]


def where(*conditions: tuple[str, str, Any], expression: str | None = None) -> dict[str, Any]:
    conds = [{"name": n, "alias": chr(ord("A") + i), "operator": op, "value": v if isinstance(v, list) else [v]}
             for i, (n, op, v) in enumerate(conditions)]
    return {"conditions": conds, "expression": expression}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["result"] is False
    assert body["errorCode"] == code, body
    assert body["data"] is None and body["errorDesc"] and body["requestId"]
    return body
