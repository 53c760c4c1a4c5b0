"""The Gainsight-style customer-success mock as a kernel `MockSystem`.

- Credential: the `accesskey` header (8-128 characters of letters, digits, `.`, `_`, `-`) picks the tenant.
- Versions: `X-Gainsight-Version: v1 | v2` (see versions.py); tenant default v1.
- Limits: 200 calls per minute per tenant, fixed window (switchable through the control API) -> 429 in the
  Gainsight envelope with `Retry-After`.
- Webhooks: signed with `X-Gainsight-Signature` (see events.py).

    app = create_mock_app(cs_system(), admin_token=...)
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from starlette.responses import Response

from mocks.cs.api import router_factory
from mocks.cs.errors import INVALID_FIELD, CSError, handle_cs_error, render_rejection
from mocks.cs.events import sign
from mocks.cs.models import CSState
from mocks.cs.seed import action, seed
from mocks.cs.versions import cs_versions
from mocks.kernel.ratelimit import RateLimitPolicy
from mocks.kernel.system import Headers, MockSystem
from mocks.kernel.versions import VersionParseError

__all__ = ["cs_system", "default_limits"]

_KEY = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
VERSION_HEADER = "x-gainsight-version"


def default_limits() -> list[RateLimitPolicy]:
    return [RateLimitPolicy(name="calls_per_minute", kind="fixed", limit=200, window_s=60)]


def credential(headers: Headers, path: str) -> str | None:
    key = headers.get("accesskey", "").strip()
    return key if _KEY.match(key) else None


def request_version(headers: Headers, path: str) -> str | None:
    value = headers.get(VERSION_HEADER)
    return value.strip() if value is not None else None


async def handle_version_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VersionParseError)
    return await handle_cs_error(request, CSError(INVALID_FIELD, f"Invalid field, please re-check data mapping "
                                                                 f"({exc.message})", field=exc.field))


def extend_openapi(document: dict[str, Any]) -> None:
    """Kernel hook: the access-key security scheme; no 422s (validation failures are Gainsight 400s)."""
    document.setdefault("components", {})["securitySchemes"] = {
        "accesskey": {"type": "apiKey", "in": "header", "name": "accesskey"}}
    for path, item in document.get("paths", {}).items():
        if path.startswith("/_sandbox"):
            continue
        for operation in item.values():
            operation.get("responses", {}).pop("422", None)
            operation["security"] = [{"accesskey": []}]


def cs_system(*, limits: list[RateLimitPolicy] | None = None) -> MockSystem:
    return MockSystem(
        name="cs",
        credential=credential,
        new_state=CSState,
        render_rejection=render_rejection,
        router_factory=router_factory,
        versions=cs_versions(),
        request_version=request_version,
        default_limits=(lambda: list(limits)) if limits is not None else default_limits,
        seed=seed,
        action=action,
        sign=sign,
        exception_handlers={CSError: handle_cs_error, VersionParseError: handle_version_error},
        title="Lockstep CS mock (Gainsight-style)",
        openapi_extend=extend_openapi,
    )
