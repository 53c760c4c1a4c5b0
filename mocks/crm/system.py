"""`crm_system()`: the Salesforce-compatible CRM mock as the kernel sees it.

- Credentials: `Authorization: Bearer <token>` (or Salesforce's older `OAuth <token>`). Any non-empty token
  of session-id characters (letters, digits, `!._~+/=-`, at most 500) is well-formed; the token is the tenant
  key, so a fresh token provisions a fresh org (unless auto-provisioning is off). Anything else -> 401
  INVALID_SESSION_ID "Session expired or invalid".
- Version: from the path (`/services/data/v60.0/...`); an unknown version answers 404 NOT_FOUND.
- Limits: a daily quota ("DailyApiRequests", 15,000 by default, per tenant, changeable through the control
  API); spent -> 403 REQUEST_LIMIT_EXCEEDED. Every response of a known tenant carries
  `Sforce-Limit-Info: api-usage=<used>/<quota>`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mocks.crm.actions import run_action, seed
from mocks.crm.api import DAILY_POLICY, build_router
from mocks.crm.errors import CrmError, error_response, render
from mocks.crm.events import sign
from mocks.crm.models import CrmState
from mocks.crm.versions import crm_versions
from mocks.kernel.ratelimit import Admission, RateLimitPolicy
from mocks.kernel.system import Headers, KernelRejection, MockSystem
from mocks.kernel.tenants import Tenant
from mocks.kernel.versions import VersionRegistry

__all__ = ["DEFAULT_DAILY_QUOTA", "crm_system"]

DEFAULT_DAILY_QUOTA = 15_000
TOKEN_RE = re.compile(r"^[A-Za-z0-9!._~+/=\-]{1,500}$")
PATH_VERSION_RE = re.compile(r"^/services/data/v(\d{2,3}\.0)(?:/|$)")
SESSION_INVALID = "Session expired or invalid"


def credential(headers: Headers, path: str) -> str | None:
    auth = headers.get("authorization")
    if not auth:
        return None
    scheme, _, token = auth.strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in ("bearer", "oauth") or not TOKEN_RE.match(token):
        return None
    return token


def _usage(tenant: Tenant, admission: Admission | None) -> tuple[int, int] | None:
    usage = admission.usage if admission is not None else {}
    if DAILY_POLICY in usage:
        return usage[DAILY_POLICY]
    for policy in tenant.limiter.policies():
        if policy.kind == "daily":
            return usage.get(policy.name) or tenant.limiter.usage().get(policy.name)
    return None


def limit_headers(tenant: Tenant, admission: Admission | None) -> dict[str, str]:
    usage = _usage(tenant, admission)
    return {} if usage is None else {"Sforce-Limit-Info": f"api-usage={usage[0]}/{usage[1]}"}


def render_rejection(rejection: KernelRejection) -> Response:
    kind, details = rejection.kind, rejection.details
    if kind == "unauthorized":
        return error_response(401, "INVALID_SESSION_ID", SESSION_INVALID)
    if kind == "rate_limited":
        tenant = details.get("tenant")
        headers = limit_headers(tenant, details.get("admission")) if tenant is not None else {}
        policy = details.get("policy")
        name = policy.name if policy is not None and policy.kind != "daily" else "TotalRequests"
        return error_response(403, "REQUEST_LIMIT_EXCEEDED", f"{name} Limit exceeded.", headers=headers)
    if kind in ("unknown_version", "not_found"):
        return error_response(404, "NOT_FOUND", "The requested resource does not exist")
    if kind == "method_not_allowed":
        method = details.get("method", "")
        return error_response(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")
    if kind == "too_large":
        return error_response(413, "REQUEST_ENTITY_TOO_LARGE", rejection.message)
    if kind == "bad_request":
        return error_response(400, "MALFORMED_REQUEST" if details.get("param") else "JSON_PARSER_ERROR",
                              rejection.message)
    if kind == "fault":
        status = rejection.status
        default = {503: "SERVER_UNAVAILABLE", 429: "REQUEST_LIMIT_EXCEEDED", 403: "REQUEST_LIMIT_EXCEEDED",
                   401: "INVALID_SESSION_ID", 404: "NOT_FOUND"}.get(status, "UNKNOWN_EXCEPTION")
        return error_response(status, details.get("code") or default, rejection.message)
    return error_response(rejection.status if rejection.status >= 400 else 500, "UNKNOWN_EXCEPTION",
                          "An unexpected error occurred. Please include this ErrorId if you contact support: "
                          "0-lockstep")


async def _handle_crm_error(request: Request, exc: CrmError) -> Response:
    return render(exc)


def crm_system(*, daily_quota: int = DEFAULT_DAILY_QUOTA, versions: VersionRegistry | None = None) -> MockSystem:
    registry = versions or crm_versions()

    def request_version(headers: Headers, path: str) -> str | None:
        match = PATH_VERSION_RE.match(path)
        # An unknown version is answered by the routes (404 inside the limits, so it carries the header).
        return match.group(1) if match and match.group(1) in registry else None

    def render_values(obj: str, values: dict[str, Any], version: str) -> dict[str, Any]:
        if version not in registry:
            version = registry.latest
        out = registry.render(obj, {"attributes": {"type": obj}, **values}, version)
        return {k: v for k, v in out.items() if k != "attributes"}

    def new_state(tenant: Tenant) -> CrmState:
        return CrmState(tenant, render_values)

    def router_factory() -> APIRouter:
        return build_router(registry)

    def default_limits() -> list[RateLimitPolicy]:
        return [RateLimitPolicy(name=DAILY_POLICY, kind="daily", limit=daily_quota, route="/services/data/*")]

    return MockSystem(
        name="crm",
        credential=credential,
        new_state=new_state,
        render_rejection=render_rejection,
        router_factory=router_factory,
        versions=registry,
        request_version=request_version,
        default_limits=default_limits,
        limit_headers=limit_headers,
        seed=seed,
        action=run_action,
        sign=sign,
        exception_handlers={CrmError: _handle_crm_error},
        title="Lockstep CRM mock (Salesforce REST)",
    )
