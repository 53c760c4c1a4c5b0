"""The kernel's pure-ASGI middleware, one class per job. `app.py` assembles them in a visible order:

    Journal -> Auth (tenant) -> BodyLimit -> Version -> RateLimit -> Faults -> vendor routes

Each layer reads what the previous put into the ASGI scope under "lockstep.*" keys. Rejections are
rendered by the system (`MockSystem.render_rejection`) so every refusal wears the vendor's envelope.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mocks.kernel.journal import clip
from mocks.kernel.system import KernelRejection, MockSystem
from mocks.kernel.tenants import TenantRegistry

CONTROL_PREFIX = "/_sandbox"
CORRELATION_HEADERS = ("x-correlation-id", "x-request-id")


def headers_of(scope: Scope) -> dict[str, str]:
    """Lower-cased request headers, decoded once per request and cached in the scope."""
    cached = scope.get("lockstep.headers")
    if cached is None:
        cached = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        scope["lockstep.headers"] = cached
    return cached


def is_vendor_request(scope: Scope, system: MockSystem) -> bool:
    path: str = scope["path"]
    return not path.startswith(CONTROL_PREFIX) and not path.startswith(system.public_prefixes)


async def reject(system: MockSystem, rejection: KernelRejection, scope: Scope, receive: Receive, send: Send) -> None:
    response = system.render_rejection(rejection)
    await response(scope, receive, send)


class ConnectionDropped(Exception):
    """Raised after the response has started so the server closes the socket mid-response."""


class JournalMiddleware:
    """Records every vendor request and its response in the tenant's journal (bounded)."""

    def __init__(self, app: ASGIApp, system: MockSystem) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_vendor_request(scope, self.system):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_body: list[bytes] = []
        response_body: list[bytes] = []
        outcome: dict[str, Any] = {"status": None, "headers": {}}

        async def receive_logged() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.append(message.get("body", b""))
            return message

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
            elif message["type"] == "http.response.body":
                response_body.append(message.get("body", b""))
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive_logged, send_logged)
        except BaseException as exc:  # the journal must see drops and crashes too
            error = type(exc).__name__
            raise
        finally:
            tenant = scope.get("lockstep.tenant")
            if tenant is not None:
                headers = headers_of(scope)
                corr = next((headers[h] for h in CORRELATION_HEADERS if h in headers), None)
                tenant.journal.record(
                    {
                        "method": scope["method"],
                        "path": scope["path"],
                        "query": scope.get("query_string", b"").decode("latin-1"),
                        "status": outcome["status"],
                        "correlation_id": corr,
                        "traceparent": headers.get("traceparent"),
                        "idempotency_key": headers.get("idempotency-key"),
                        "api_version": scope.get("lockstep.version"),
                        "clock": tenant.clock.now(),
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "request_body": clip(b"".join(request_body)),
                        "response_body": clip(b"".join(response_body)),
                        "fault": scope.get("lockstep.fault"),
                        "error": error,
                    }
                )


class BodyLimitMiddleware:
    """Refuses bodies over the system's cap, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, system: MockSystem) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Control requests (snapshots to restore) are trusted and may be large; vendor requests are not.
        if scope["type"] != "http" or not is_vendor_request(scope, self.system):
            await self.app(scope, receive, send)
            return
        cap = self.system.max_body_bytes
        declared = headers_of(scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await reject(self.system, KernelRejection("too_large", f"Request body exceeds {cap} bytes.", 413),
                         scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # Chunked upload: read it all up front so an oversized stream is refused before any route runs.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > cap:
                await reject(self.system, KernelRejection("too_large", f"Request body exceeds {cap} bytes.", 413),
                             scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class AuthMiddleware:
    """Credential -> tenant. Unknown well-formed credentials provision a tenant unless switched off."""

    def __init__(self, app: ASGIApp, system: MockSystem, registry: TenantRegistry) -> None:
        self.app = app
        self.system = system
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_vendor_request(scope, self.system):
            await self.app(scope, receive, send)
            return
        key = self.system.credential(headers_of(scope), scope["path"])
        tenant = self.registry.resolve(key) if key else None
        if tenant is None:
            reason = "missing or malformed credentials" if key is None else "unknown credentials"
            await reject(self.system, KernelRejection("unauthorized", reason, 401, credential=key),
                         scope, receive, send)
            return
        scope["lockstep.tenant"] = tenant
        await self.app(scope, receive, send)


class VersionMiddleware:
    """Resolves the API version the vendor's way; the tenant's pinned version otherwise."""

    def __init__(self, app: ASGIApp, system: MockSystem) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = scope.get("lockstep.tenant")
        if tenant is None:
            await self.app(scope, receive, send)
            return
        asked = self.system.request_version(headers_of(scope), scope["path"])
        if asked is not None and asked not in self.system.versions:
            await reject(self.system, KernelRejection("unknown_version", f"Unknown API version: {asked}", 400,
                                                      version=asked), scope, receive, send)
            return
        scope["lockstep.version"] = asked or tenant.api_version
        await self.app(scope, receive, send)


class RateLimitMiddleware:
    """Applies the tenant's policies; the system renders both the refusal and the usage headers."""

    def __init__(self, app: ASGIApp, system: MockSystem) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = scope.get("lockstep.tenant")
        if tenant is None:
            await self.app(scope, receive, send)
            return
        admission = tenant.limiter.acquire(scope["method"], scope["path"])
        if not admission.allowed:
            policy = admission.policy
            rejection = KernelRejection(
                "rate_limited",
                f"Rate limit '{policy.name if policy else '?'}' exceeded.",
                429,
                policy=policy,
                retry_after=admission.retry_after,
                admission=admission,
                tenant=tenant,
            )
            await reject(self.system, rejection, scope, receive, send)
            return
        render_headers = self.system.limit_headers

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                         for k, v in render_headers(tenant, admission).items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send if render_headers is None else send_with_limits)
        finally:
            tenant.limiter.release(admission)


class FaultMiddleware:
    """Injects the tenant's seeded faults: latency, vendor-style errors, timeouts and dropped connections."""

    def __init__(self, app: ASGIApp, system: MockSystem) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = scope.get("lockstep.tenant")
        decision = tenant.faults.pick(scope["method"], scope["path"]) if tenant is not None else None
        if decision is None:
            await self.app(scope, receive, send)
            return
        rule = decision.rule
        scope["lockstep.fault"] = {"rule": rule.id, "kind": decision.kind}
        if decision.kind == "latency":
            await asyncio.sleep(decision.delay_s)
            scope["lockstep.fault"]["delay_ms"] = round(decision.delay_s * 1000, 3)
            await self.app(scope, receive, send)
        elif decision.kind == "error":
            status = decision.status or 500
            rejection = KernelRejection("fault", rule.message or f"Injected fault ({status}).", status,
                                        code=rule.error_code, rule=rule.id)
            await reject(self.system, rejection, scope, receive, send)
        else:
            if decision.kind == "timeout":
                await asyncio.sleep(decision.delay_s)
            # Start a response that promises a body, then fail: servers close the socket mid-response,
            # which clients see as a dropped connection rather than a tidy 500.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"1024"), (b"content-type", b"application/json")]})
            raise ConnectionDropped(f"fault {rule.id}: connection dropped")
