"""The control API under /_sandbox: what a test harness or a person in the vendor UI can do.

Guarded by the admin token (`Lockstep-Admin-Token` header or `Authorization: Bearer <token>`), kept apart
from the vendor API, tagged "sandbox" in the OpenAPI.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, ValidationError

from mocks.kernel.clock import ClockError
from mocks.kernel.faults import FaultRule
from mocks.kernel.ratelimit import RateLimitPolicy
from mocks.kernel.system import MockSystem
from mocks.kernel.tenants import Tenant, TenantRegistry
from mocks.kernel.webhooks import MAX_IN_FLIGHT, WebhookChaos

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: float | str) -> float:
    """Seconds from a number or a string like "90", "15m", "36h", "30d"."""
    if isinstance(value, int | float):
        return float(value)
    match = DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use seconds or e.g. 15m, 36h, 30d)")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def parse_instant(value: float | str) -> float:
    """Unix seconds from a number or an ISO 8601 timestamp (UTC when no offset is given)."""
    if isinstance(value, int | float):
        return float(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a timestamp: {value!r} (use unix seconds or ISO 8601)") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class AdminGuard:
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: Request) -> None:
        given = request.headers.get("lockstep-admin-token")
        if given is None:
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else None
        if given is None or not secrets.compare_digest(given, self.token):
            raise HTTPException(401, "admin token required: send the Lockstep-Admin-Token header")


class NewTenant(BaseModel):
    key: str = Field(min_length=1, max_length=200)
    seed: int | None = None
    clock_start: float | str | None = None
    api_version: str | None = None


class ClockAdvance(BaseModel):
    to: float | str | None = None
    by: float | str | None = None


class FaultConfig(BaseModel):
    rules: list[FaultRule]
    seed: int | None = None


class LimitConfig(BaseModel):
    policies: list[RateLimitPolicy]


class VersionConfig(BaseModel):
    api_version: str


class ChaosConfig(BaseModel):
    """Validated input for the dispatcher's chaos settings."""

    duplicate_probability: float = Field(0.0, ge=0, le=1)
    reorder_probability: float = Field(0.0, ge=0, le=1)
    delay_ms: float | tuple[float, float] = 0.0
    delay_probability: float = Field(1.0, ge=0, le=1)
    hold_ms: float = Field(50.0, ge=0, le=60_000)

    def to_chaos(self) -> WebhookChaos:
        delay = list(self.delay_ms) if isinstance(self.delay_ms, tuple) else self.delay_ms
        return WebhookChaos(self.duplicate_probability, self.reorder_probability, delay, self.delay_probability,
                            self.hold_ms)


class EndpointIn(BaseModel):
    url: str = Field(min_length=1)
    secret: str | None = None
    events: list[str] | None = None
    max_in_flight: int = Field(default=1, ge=1, le=MAX_IN_FLIGHT,
                               description="deliveries in flight at once (1: in order, one at a time)")


def tenant_of(key: str, request: Request) -> Tenant:
    registry: TenantRegistry = request.app.state.registry
    tenant = registry.get(key)
    if tenant is None:
        raise HTTPException(404, f"no tenant {key!r} on {registry.system.name}")
    return tenant


# Module level so FastAPI can resolve the annotation (this module uses postponed annotations).
TenantDep = Annotated[Tenant, Depends(tenant_of)]


def control_router(system: MockSystem, registry: TenantRegistry, guard: AdminGuard) -> APIRouter:
    router = APIRouter(tags=["sandbox"])
    admin = APIRouter(tags=["sandbox"], dependencies=[Depends(guard)])

    def clock_view(tenant: Tenant) -> dict[str, Any]:
        now = tenant.clock.now()
        return {"now": now, "iso": iso(now), "next_due": tenant.clock.next_due(),
                "pending_jobs": [j.to_dict() for j in tenant.clock.pending()[:50]]}

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "system": system.name, "tenants": len(registry),
                "versions": system.versions.names(), "default_version": system.versions.default}

    @admin.get("/tenants")
    async def list_tenants() -> list[dict[str, Any]]:
        return [{"key": t.key, "api_version": t.api_version, "clock": t.clock.now(), "seed": t.seed}
                for t in registry]

    @admin.post("/tenants", status_code=201)
    async def create_tenant(body: NewTenant) -> dict[str, Any]:
        if registry.get(body.key) is not None:
            raise HTTPException(409, f"tenant {body.key!r} already exists on {system.name}; reset or delete it")
        if body.api_version is not None and body.api_version not in system.versions:
            raise HTTPException(400, f"unknown API version {body.api_version!r}; known: {system.versions.names()}")
        try:
            start = parse_instant(body.clock_start) if body.clock_start is not None else None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        tenant = registry.create(body.key, seed=body.seed, clock_start=start, api_version=body.api_version)
        return {"key": tenant.key, "api_version": tenant.api_version, "clock": clock_view(tenant)}

    @admin.delete("/tenants/{key}")
    async def delete_tenant(key: str) -> dict[str, Any]:
        if not registry.remove(key):
            raise HTTPException(404, f"no tenant {key!r} on {system.name}")
        return {"deleted": True, "key": key}

    @admin.post("/reset")
    async def reset_all() -> dict[str, Any]:
        for tenant in registry:
            tenant.reset()
        return {"reset": len(registry)}

    @admin.post("/tenants/{key}/reset")
    async def reset_tenant(tenant: TenantDep) -> dict[str, Any]:
        tenant.reset()
        return {"reset": True, "key": tenant.key}

    @admin.post("/tenants/{key}/seed")
    async def seed_tenant(tenant: TenantDep, request: Request) -> dict[str, Any]:
        if system.seed is None:
            raise HTTPException(404, f"{system.name} has no seed hook")
        body = await _json_object(request)
        return _user_errors(lambda: system.seed(tenant, body))

    @admin.post("/tenants/{key}/actions")
    async def user_action(tenant: TenantDep, request: Request) -> dict[str, Any]:
        if system.action is None:
            raise HTTPException(404, f"{system.name} has no user actions")
        body = await _json_object(request)
        return _user_errors(lambda: system.action(tenant, body))

    @admin.get("/snapshot")
    async def snapshot_all() -> dict[str, Any]:
        return registry.dump()

    @admin.post("/restore")
    async def restore_all(request: Request) -> dict[str, Any]:
        body = await _json_object(request)
        _user_errors(lambda: registry.load(body))
        return {"restored": len(registry)}

    @admin.get("/tenants/{key}/snapshot")
    async def snapshot_tenant(tenant: TenantDep) -> dict[str, Any]:
        return tenant.dump()

    @admin.post("/tenants/{key}/restore")
    async def restore_tenant(tenant: TenantDep, request: Request) -> dict[str, Any]:
        body = await _json_object(request)
        _user_errors(lambda: tenant.load(body))
        return {"restored": True, "key": tenant.key, "clock": clock_view(tenant)}

    @admin.get("/tenants/{key}/clock")
    async def get_clock(tenant: TenantDep) -> dict[str, Any]:
        return clock_view(tenant)

    @admin.post("/tenants/{key}/clock/advance")
    async def advance_clock(tenant: TenantDep, body: ClockAdvance) -> dict[str, Any]:
        if (body.to is None) == (body.by is None):
            raise HTTPException(400, "give exactly one of 'to' (timestamp) or 'by' (duration)")
        try:
            target = parse_instant(body.to) if body.to is not None else tenant.clock.now() + parse_duration(body.by)
            ran = tenant.clock.advance(target)
        except (ValueError, ClockError) as exc:
            raise HTTPException(400, str(exc)) from exc
        return {**clock_view(tenant), "jobs_run": len(ran)}

    @admin.get("/tenants/{key}/faults")
    async def get_faults(tenant: TenantDep) -> dict[str, Any]:
        return {"rules": [r.model_dump() for r in tenant.faults.rules()], "hits": tenant.faults.hits()}

    @admin.put("/tenants/{key}/faults")
    async def set_faults(tenant: TenantDep, body: FaultConfig) -> dict[str, Any]:
        tenant.faults.set_rules(body.rules, seed=body.seed)
        return {"rules": [r.model_dump() for r in tenant.faults.rules()]}

    @admin.delete("/tenants/{key}/faults")
    async def clear_faults(tenant: TenantDep) -> dict[str, Any]:
        tenant.faults.clear()
        return {"rules": []}

    @admin.get("/tenants/{key}/limits")
    async def get_limits(tenant: TenantDep) -> dict[str, Any]:
        usage = tenant.limiter.usage()
        return {"policies": [p.model_dump() for p in tenant.limiter.policies()],
                "usage": {name: {"used": u, "limit": lim} for name, (u, lim) in usage.items()}}

    @admin.put("/tenants/{key}/limits")
    async def set_limits(tenant: TenantDep, body: LimitConfig) -> dict[str, Any]:
        tenant.limiter.set_policies(body.policies)
        return {"policies": [p.model_dump() for p in tenant.limiter.policies()]}

    @admin.get("/tenants/{key}/version")
    async def get_version(tenant: TenantDep) -> dict[str, Any]:
        return {"api_version": tenant.api_version, "versions": system.versions.names()}

    @admin.put("/tenants/{key}/version")
    async def set_version(tenant: TenantDep, body: VersionConfig) -> dict[str, Any]:
        if body.api_version not in system.versions:
            raise HTTPException(400, f"unknown API version {body.api_version!r}; known: {system.versions.names()}")
        tenant.api_version = body.api_version
        return {"api_version": tenant.api_version}

    @admin.get("/tenants/{key}/journal")
    async def journal(
        tenant: TenantDep,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        correlation_id: str | None = None,
        fault: bool | None = None,
        since_seq: int = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    ) -> list[dict[str, Any]]:
        return tenant.journal.query(method=method, path=path, status=status, correlation_id=correlation_id,
                                    fault=fault, since_seq=since_seq, limit=limit)

    @admin.get("/tenants/{key}/webhooks/endpoints")
    async def list_endpoints(tenant: TenantDep) -> list[dict[str, Any]]:
        return [e.to_dict() for e in tenant.webhooks.endpoints()]

    @admin.post("/tenants/{key}/webhooks/endpoints", status_code=201)
    async def add_endpoint(tenant: TenantDep, body: EndpointIn) -> dict[str, Any]:
        secret = body.secret or f"whsec_{secrets.token_hex(16)}"
        endpoint = tenant.webhooks.add_endpoint(body.url, secret=secret, events=body.events,
                                                max_in_flight=body.max_in_flight)
        return {**endpoint.to_dict(), "secret": secret}

    @admin.delete("/tenants/{key}/webhooks/endpoints/{endpoint_id}")
    async def remove_endpoint(tenant: TenantDep, endpoint_id: str) -> dict[str, Any]:
        if not tenant.webhooks.remove_endpoint(endpoint_id):
            raise HTTPException(404, f"no endpoint {endpoint_id!r}")
        return {"deleted": True, "id": endpoint_id}

    @admin.put("/tenants/{key}/webhooks/chaos")
    async def set_chaos(tenant: TenantDep, body: ChaosConfig) -> dict[str, Any]:
        tenant.webhooks.set_chaos(body.to_chaos())
        return body.model_dump()

    @admin.get("/tenants/{key}/deliveries")
    async def deliveries(
        tenant: TenantDep,
        event_id: str | None = None,
        endpoint_id: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    ) -> list[dict[str, Any]]:
        return tenant.webhooks.deliveries(event_id=event_id, endpoint_id=endpoint_id, status=status, limit=limit)

    @admin.post("/tenants/{key}/deliveries/{delivery_id}/redeliver")
    async def redeliver(tenant: TenantDep, delivery_id: str) -> dict[str, Any]:
        try:
            delivery = tenant.webhooks.redeliver(delivery_id)
        except KeyError as exc:
            raise HTTPException(404, f"no delivery {delivery_id!r}") from exc
        return delivery.to_dict()

    @admin.post("/tenants/{key}/webhooks/drain")
    async def drain(tenant: TenantDep, timeout: Annotated[float, Query(gt=0, le=120)] = 10.0) -> dict[str, Any]:
        drained = await tenant.webhooks.drain(timeout)
        return {"drained": drained, "pending": tenant.webhooks.pending_count()}

    @admin.get("/versions")
    async def versions() -> dict[str, Any]:
        return {"default": system.versions.default, "latest": system.versions.latest,
                "versions": system.versions.names()}

    router.include_router(admin)
    return router


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HTTPException(400, "body must be a JSON object")
    return body


def _user_errors(call: Any) -> Any:
    """Turn a hook's complaint about its input into a 400 with the reason, never a 500."""
    try:
        return call()
    except HTTPException:
        raise
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise HTTPException(400, f"{type(exc).__name__}: {exc}") from exc
