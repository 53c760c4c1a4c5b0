"""`create_mock_app`: one FastAPI app per mock system, with the kernel middleware assembled in order.

Nothing is built at import time; tests drive the app through `httpx.ASGITransport`, uvicorn serves
the same object.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from mocks.kernel.control import AdminGuard, control_router
from mocks.kernel.middleware import (
    CONTROL_PREFIX,
    AuthMiddleware,
    BodyLimitMiddleware,
    FaultMiddleware,
    JournalMiddleware,
    RateLimitMiddleware,
    VersionMiddleware,
)
from mocks.kernel.system import KernelRejection, MockSystem
from mocks.kernel.tenants import TenantRegistry
from mocks.kernel.webhooks import DeliveryRoutes


def admin_token_from_env() -> str:
    return os.environ.get("LOCKSTEP_ADMIN_TOKEN") or secrets.token_urlsafe(24)


def _control_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)


def create_mock_app(
    system: MockSystem,
    *,
    registry: TenantRegistry | None = None,
    admin_token: str | None = None,
    auto_provision: bool = True,
    seed: int = 0,
    clock_start: float | None = None,
    routes: DeliveryRoutes | None = None,
    state_file: Path | None = None,
) -> FastAPI:
    if registry is None:
        kwargs: dict[str, Any] = {"auto_provision": auto_provision, "seed": seed, "routes": routes}
        if clock_start is not None:
            kwargs["clock_start"] = clock_start
        registry = TenantRegistry(system, **kwargs)
    token = admin_token or admin_token_from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state_file is not None and state_file.exists():
            registry.load(json.loads(state_file.read_text()))
        try:
            yield
        finally:
            if state_file is not None:
                state_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = state_file.with_suffix(state_file.suffix + ".tmp")
                tmp.write_text(json.dumps(registry.dump()))
                tmp.replace(state_file)
            for tenant in registry:
                await tenant.webhooks.aclose()

    app = FastAPI(
        title=system.title or f"Lockstep {system.name} mock",
        version=system.versions.default,
        lifespan=lifespan,
        openapi_tags=[{"name": "sandbox", "description": "Lockstep control API (admin token)"}],
    )
    app.state.system = system
    app.state.registry = registry
    app.state.admin_token = token
    app.state.state_file = state_file

    app.include_router(system.router_factory())
    app.include_router(control_router(system, registry, AdminGuard(token)), prefix=CONTROL_PREFIX)
    for exc_type, handler in system.exception_handlers.items():
        app.add_exception_handler(exc_type, handler)

    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(CONTROL_PREFIX):
            return _control_error(exc.status_code, str(exc.detail))
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        message = f"Unrecognized request URL ({request.method}: {request.url.path})."
        if exc.status_code not in (404, 405):
            message = str(exc.detail)
        return system.render_rejection(KernelRejection(kind, message, exc.status_code, method=request.method,
                                                       path=request.url.path))

    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else str(first.get("msg", "invalid"))
        if request.url.path.startswith(CONTROL_PREFIX):
            return _control_error(400, message)
        return system.render_rejection(KernelRejection("bad_request", message, 400, param=where or None))

    async def crashed(request: Request, exc: Exception) -> Response:
        # A bug in a mock must still answer in the vendor's envelope, never a bare traceback page.
        return system.render_rejection(KernelRejection("internal", "An unexpected error occurred.", 500,
                                                       error=type(exc).__name__))

    app.add_exception_handler(StarletteHTTPException, not_found)
    app.add_exception_handler(Exception, crashed)
    app.add_exception_handler(RequestValidationError, invalid)

    versions = system.versions
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI caches the schema on the app; extend it once, the first time it is built.
        if app.openapi_schema is None:
            document = generate_openapi()
            if system.openapi_extend is not None:
                system.openapi_extend(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/openapi/{version}.json", include_in_schema=False)
    async def openapi_for_version(version: str) -> Response:
        if version not in versions:
            return _control_error(404, f"unknown API version {version!r}; known: {versions.names()}")
        return JSONResponse(versions.openapi(app.openapi(), version))

    # Added last = outermost. Read bottom-up for the order a request meets them.
    app.add_middleware(FaultMiddleware, system=system)
    app.add_middleware(RateLimitMiddleware, system=system)
    app.add_middleware(VersionMiddleware, system=system)
    app.add_middleware(BodyLimitMiddleware, system=system)
    app.add_middleware(AuthMiddleware, system=system, registry=registry)
    app.add_middleware(JournalMiddleware, system=system)
    return app
