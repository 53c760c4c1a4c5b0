"""A tiny vendor used to test the kernel alone: things with names, two API versions, an expiry job."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from mocks.kernel.ratelimit import Admission, RateLimitPolicy
from mocks.kernel.system import Headers, KernelRejection, MockSystem
from mocks.kernel.tenants import Tenant
from mocks.kernel.versions import ApiVersion, Rename, VersionRegistry


class ToyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ToyState:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.things: dict[str, dict[str, Any]] = {}
        self.counter = 0

    def create(self, name: str, ttl: float | None) -> dict[str, Any]:
        self.counter += 1
        thing = {"object": "thing", "id": f"t{self.counter}", "name": name,
                 "created": self.tenant.clock.now_int()}
        self.things[thing["id"]] = thing
        if ttl is not None:
            self.tenant.clock.schedule(self.tenant.clock.now() + ttl, "expire", {"id": thing["id"]})
        body = json.dumps({"id": f"evt{self.counter}", "type": "thing.created", "thing": thing}).encode()
        self.tenant.webhooks.enqueue(f"evt{self.counter}", "thing.created", body)
        return thing

    def dump(self) -> dict[str, Any]:
        return {"things": self.things, "counter": self.counter}

    def load(self, data: dict[str, Any]) -> None:
        self.things = dict(data.get("things", {}))
        self.counter = int(data.get("counter", 0))

    def run_job(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "expire":
            self.things.pop(payload["id"], None)


def credential(headers: Headers, path: str) -> str | None:
    key = headers.get("x-api-key", "")
    return key if key.startswith("key_") and key[4:].isalnum() else None


def render_rejection(rejection: KernelRejection) -> Response:
    headers = {}
    if rejection.details.get("retry_after"):
        headers["Retry-After"] = str(int(rejection.details["retry_after"]) + 1)
    return JSONResponse({"toy_error": {"kind": rejection.kind, "message": rejection.message}},
                        status_code=rejection.status, headers=headers)


def router_factory() -> APIRouter:
    router = APIRouter()

    @router.post("/things", status_code=201)
    async def create(request: Request) -> Response:
        tenant: Tenant = request.scope["lockstep.tenant"]
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise ToyError(400, "bad_json", "body is not JSON") from exc
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str):
            raise ToyError(400, "name_required", "name is required")
        thing = tenant.state.create(name, body.get("ttl"))
        version = request.scope["lockstep.version"]
        return JSONResponse(tenant.system.versions.render("thing", thing, version), status_code=201)

    @router.get("/things/{thing_id}")
    async def get(thing_id: str, request: Request) -> Response:
        tenant: Tenant = request.scope["lockstep.tenant"]
        thing = tenant.state.things.get(thing_id)
        if thing is None:
            raise ToyError(404, "not_found", f"no thing {thing_id}")
        return JSONResponse(tenant.system.versions.render("thing", thing, request.scope["lockstep.version"]))

    return router


async def toy_error_handler(request: Request, exc: ToyError) -> Response:
    return JSONResponse({"toy_error": {"kind": exc.code, "message": exc.message}}, status_code=exc.status)


def sign(body: bytes, secret: str, ts: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Toy-Signature": f"t={ts},v1={mac}"}


def limit_headers(tenant: Tenant, admission: Admission | None) -> dict[str, str]:
    usage = tenant.limiter.usage()
    return {"X-Toy-Usage": ";".join(f"{k}={u}/{lim}" for k, (u, lim) in sorted(usage.items()))}


def toy_system(*, limits: list[RateLimitPolicy] | None = None) -> MockSystem:
    versions = VersionRegistry(
        "toy",
        [ApiVersion("v1", [Rename("thing", "name", "title")]), ApiVersion("v2", [])],
        default="v2",
    )
    return MockSystem(
        name="toy",
        credential=credential,
        new_state=ToyState,
        render_rejection=render_rejection,
        router_factory=router_factory,
        versions=versions,
        request_version=lambda headers, path: headers.get("x-api-version"),
        default_limits=lambda: list(limits or []),
        limit_headers=limit_headers,
        sign=sign,
        exception_handlers={ToyError: toy_error_handler},
        max_body_bytes=2048,
    )
