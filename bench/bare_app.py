"""The yardstick: the smallest FastAPI app doing the same create + retrieve, on the same server stack."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    app = FastAPI()
    store: dict[str, dict[str, Any]] = {}
    counter = itertools.count(1)

    @app.post("/v1/customers")
    async def create(request: Request) -> dict[str, Any]:
        await request.body()
        obj = {"id": f"cus_{next(counter)}", "object": "customer"}
        store[obj["id"]] = obj
        return obj

    @app.get("/v1/customers/{customer_id}")
    async def retrieve(customer_id: str) -> dict[str, Any]:
        return store.get(customer_id, {"id": customer_id})

    return app
