"""The ERP mock handed to the kernel: `erp_system()` -> `MockSystem`; `create_erp_app()` builds the app.

- Credential: `Authorization: Bearer <token>` (NetSuite's OAuth 2.0 style); the token is the tenant key.
- Version: `X-NetSuite-Version: 2024.2 | 2025.1` per request, else the tenant default (see versions.py).
- Governance: a per-tenant concurrency limit (default 5 requests in flight on /services/rest/*), the next
  request gets 429 CONCURRENCY_LIMIT_EXCEEDED. Change it through the control API's limits.
- Webhooks: signed `X-NetSuite-Signature` (see events.py); endpoints registered through the control API.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from mocks.erp.api import erp_error_handler, router_factory
from mocks.erp.errors import ErpError, render_rejection
from mocks.erp.events import sign
from mocks.erp.models import ErpState
from mocks.erp.seed import perform_action, seed_tenant
from mocks.erp.versions import VERSION_HEADER, erp_versions
from mocks.kernel.app import create_mock_app
from mocks.kernel.ratelimit import RateLimitPolicy
from mocks.kernel.system import Headers, MockSystem

__all__ = ["DEFAULT_CONCURRENCY", "create_erp_app", "credential", "erp_system"]

DEFAULT_CONCURRENCY = 5
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{1,512}$")


def credential(headers: Headers, path: str) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.match(token):
        return None
    return token


def request_version(headers: Headers, path: str) -> str | None:
    return headers.get(VERSION_HEADER) or None


def default_limits(concurrency: int = DEFAULT_CONCURRENCY) -> list[RateLimitPolicy]:
    return [RateLimitPolicy(name="concurrency", kind="concurrency", limit=concurrency, route="/services/rest/*")]


def erp_system(*, concurrency: int = DEFAULT_CONCURRENCY, max_body_bytes: int = 1_000_000) -> MockSystem:
    return MockSystem(
        name="erp",
        credential=credential,
        new_state=ErpState,
        render_rejection=render_rejection,
        router_factory=router_factory,
        versions=erp_versions(),
        request_version=request_version,
        default_limits=lambda: default_limits(concurrency),
        seed=seed_tenant,
        action=perform_action,
        sign=sign,
        exception_handlers={ErpError: erp_error_handler},
        title="Lockstep ERP mock (NetSuite-style REST)",
        max_body_bytes=max_body_bytes,
    )


def create_erp_app(**kwargs: Any) -> FastAPI:
    """`create_mock_app(erp_system(), **kwargs)`; `concurrency=` / `max_body_bytes=` go to the system."""
    system_kwargs = {k: kwargs.pop(k) for k in ("concurrency", "max_body_bytes") if k in kwargs}
    return create_mock_app(erp_system(**system_kwargs), **kwargs)
