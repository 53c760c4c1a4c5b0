"""Fixtures for the ERP mock's tests: the app in-process (httpx + ASGITransport), plus record helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mocks.erp.system import create_erp_app

TOKEN_A = "tenant-a-token"
TOKEN_B = "tenant-b-token"
ADMIN_TOKEN = "erp-admin-secret"
ADMIN = {"Lockstep-Admin-Token": ADMIN_TOKEN}
ROOT = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"


def make_app(**kwargs: Any) -> FastAPI:
    return create_erp_app(admin_token=ADMIN_TOKEN, **kwargs)


def client_for(app: FastAPI, token: str | None = TOKEN_A, **headers: str) -> httpx.AsyncClient:
    hdrs = dict(headers)
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://erp.test", headers=hdrs)


@pytest.fixture
def app() -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@pytest.fixture
async def client_b(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, TOKEN_B) as c:
        yield c


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The single `o:errorDetails` entry, after checking the NetSuite envelope around it."""
    body = response.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"}, body
    assert body["status"] == response.status_code
    assert body["type"].startswith("https://www.rfc-editor.org/rfc/")
    assert response.headers["content-type"].startswith("application/vnd.oracle.resource+json")
    assert len(body["o:errorDetails"]) == 1
    return body["o:errorDetails"][0]


def new_id(response: httpx.Response) -> str:
    assert response.status_code == 204, response.text
    assert response.content == b""
    return response.headers["location"].rsplit("/", 1)[1]


async def create(client: httpx.AsyncClient, rtype: str, body: dict[str, Any], **headers: str) -> str:
    return new_id(await client.post(f"{ROOT}/{rtype}", json=body, headers=headers))


async def make_item(client: httpx.AsyncClient, item_id: str = "SEAT", price: float = 100) -> str:
    return await create(client, "item", {"itemId": item_id, "basePrice": price, "itemType": "Service"})


async def make_customer(client: httpx.AsyncClient, **fields: Any) -> str:
    body = {"companyName": "Acme Ltd", "email": "ap@acme.example", "subsidiary": {"id": "2"},
            "terms": {"id": "5"}, **fields}
    return await create(client, "customer", body)


def lines(item: str, quantity: float = 1, rate: float | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"item": {"id": item}, "quantity": quantity}
    if rate is not None:
        line["rate"] = rate
    return {"items": [line]}


async def make_order(client: httpx.AsyncClient, customer: str, item: str, quantity: float = 1,
                     rate: float | None = None, **fields: Any) -> str:
    return await create(client, "salesOrder",
                        {"entity": {"id": customer}, "item": lines(item, quantity, rate), **fields})


async def get(client: httpx.AsyncClient, rtype: str, rid: str, **headers: str) -> dict[str, Any]:
    response = await client.get(f"{ROOT}/{rtype}/{rid}", params={"expandSubResources": "true"}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def action(client: httpx.AsyncClient, body: dict[str, Any], tenant: str = TOKEN_A) -> httpx.Response:
    return await client.post(f"/_sandbox/tenants/{tenant}/actions", json=body, headers=ADMIN)
