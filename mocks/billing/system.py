"""`billing_system()`: the Stripe-compatible billing mock as the kernel sees it.

Credentials (`Authorization: Bearer sk_test_...`, or HTTP basic with the key as user name) pick the
tenant; kernel refusals are rendered in Stripe's error envelope; webhooks are signed with
`Stripe-Signature`; each tenant's `BillingState` publishes its events to the tenant's webhook outbox,
rendered in the endpoint's API version (or the tenant's).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mocks.billing import api_routes
from mocks.billing.api import build_router
from mocks.billing.api_common import dumps, error_response
from mocks.billing.errors import API_ERROR, CARD_ERROR, IDEMPOTENCY_ERROR, INVALID_REQUEST, BillingError
from mocks.billing.idempotency import IdempotencyStore
from mocks.billing.openapi import extend_openapi, operation_extra
from mocks.billing.versions import billing_versions
from mocks.kernel import signing
from mocks.kernel.ratelimit import RateLimitPolicy
from mocks.kernel.system import KernelRejection, MockSystem

__all__ = ["BillingTenantState", "billing_system", "sign", "verify_key"]

KEY_RE = re.compile(r"^(sk|rk)_test_[A-Za-z0-9]{1,247}$")
# Stripe's test mode: 25 requests per second, reads and writes together, per account.
TEST_MODE_RATE = 25

# The credential as presented on this request, for the 401 message (set by `credential`, read by the
# renderer in the same request's context).
_presented: contextvars.ContextVar[str | None] = contextvars.ContextVar("billing_presented_key", default=None)


def mask(key: str) -> str:
    """`sk_test_abcdef1234` -> `sk_test_****1234`, as Stripe shows a rejected key."""
    prefix = key[:8] if key.startswith(("sk_", "rk_", "pk_")) else ""
    return f"{prefix}****{key[-4:]}" if len(key) > 4 else "****"


def _presented_key(headers: Any) -> str | None:
    auth = headers.get("authorization")
    if auth is None:
        return None
    scheme, _, value = auth.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return ""
        return decoded.partition(":")[0]
    return ""


def verify_key(key: str | None) -> bool:
    return key is not None and KEY_RE.match(key) is not None


def credential(headers: Any, path: str) -> str | None:
    key = _presented_key(headers)
    _presented.set(key)
    return key if verify_key(key) else None


def request_version(headers: Any, path: str) -> str | None:
    value = headers.get("stripe-version")
    return value.strip() if value else None


sign = signing.signer("Stripe-Signature")


# ---- rendering kernel refusals ---------------------------------------------------------------------------------


def _error(status: int, message: str, type_: str = INVALID_REQUEST, code: str | None = None,
           param: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return error_response(BillingError(message, status=status, type=type_, code=code, param=param,
                                       headers=headers))


def _unauthorized(rejection: KernelRejection) -> Response:
    key = rejection.details.get("credential") or _presented.get()
    www = {"WWW-Authenticate": 'Basic realm="Stripe"'}
    if not key:
        return _error(401, "You did not provide an API key. You need to provide your API key in the Authorization "
                           "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
                           "https://stripe.com/docs/api#authentication for details, or we can help at "
                           "https://support.stripe.com/.", headers=www)
    return _error(401, f"Invalid API Key provided: {mask(key)}", headers=www)


def make_renderer(should_retry_429: bool) -> Any:
    def render_rejection(rejection: KernelRejection) -> Response:
        kind, status, details = rejection.kind, rejection.status, rejection.details
        if kind == "unauthorized":
            return _unauthorized(rejection)
        if kind == "rate_limited":
            headers = {"Stripe-Should-Retry": "true" if should_retry_429 else "false"}
            retry_after = details.get("retry_after")
            if retry_after:
                headers["Retry-After"] = str(max(1, round(float(retry_after))))
            return _error(429, "Request rate limit exceeded. You can learn more about rate limits here "
                               "https://stripe.com/docs/rate-limits.", code="rate_limit", headers=headers)
        if kind == "unknown_version":
            version = details.get("version") or rejection.message
            return _error(400, f"Invalid Stripe API version: {version}", param="Stripe-Version")
        if kind == "too_large":
            return _error(413, f"Request body too large. {rejection.message}", code="request_too_large")
        if kind in ("not_found", "method_not_allowed"):
            method, path = details.get("method", "?"), details.get("path", "?")
            return _error(404, f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                               "or we can help at https://support.stripe.com/.")
        if kind == "bad_request":
            return _error(400, rejection.message, param=details.get("param"))
        if kind == "fault":
            code = details.get("code")
            if status == 429:
                return _error(429, rejection.message, code=code or "rate_limit",
                              headers={"Stripe-Should-Retry": "true" if should_retry_429 else "false"})
            if status == 402:
                return _error(402, rejection.message, CARD_ERROR, code=code or "card_declined")
            if status == 409:
                return _error(409, rejection.message, IDEMPOTENCY_ERROR if code == "idempotency" else INVALID_REQUEST,
                              code=code or "lock_timeout")
            if status >= 500:
                return _error(status, rejection.message, API_ERROR, code=code)
            return _error(status, rejection.message, code=code)
        if status >= 500:
            return _error(status, "An unknown error occurred. Please retry your request.", API_ERROR)
        return _error(status, rejection.message)

    return render_rejection


async def handle_billing_error(request: Request, exc: BillingError) -> Response:
    return error_response(exc, request.scope.get("lockstep.version"))


# ---- per-tenant state ---------------------------------------------------------------------------------------------


def _state_class() -> type:
    from mocks.billing.models import BillingState

    class BillingTenantState(BillingState):  # type: ignore[misc, valid-type]
        """The domain state plus what the HTTP layer keeps per tenant (idempotency, endpoint details)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.idempotency = IdempotencyStore(self.clock.now)
            self.webhook_meta: dict[str, dict[str, Any]] = {}

        def dump(self) -> dict[str, Any]:
            data = dict(super().dump())
            data["http"] = {"idempotency": self.idempotency.dump(), "webhook_meta": dict(self.webhook_meta)}
            return data

        def load(self, data: dict[str, Any]) -> None:
            data = dict(data)
            http = data.pop("http", None) or {}
            super().load(data)
            self.idempotency.load(http.get("idempotency") or {})
            self.webhook_meta = dict(http.get("webhook_meta") or {})

    return BillingTenantState


_STATE_CLASS: type | None = None


def BillingTenantState(**kwargs: Any) -> Any:
    global _STATE_CLASS
    if _STATE_CLASS is None:
        _STATE_CLASS = _state_class()
    return _STATE_CLASS(**kwargs)


def make_new_state(versions: Any, settings: Any = None) -> Any:
    def new_state(tenant: Any) -> Any:
        def publish(event: dict[str, Any]) -> None:
            cache: dict[str, bytes] = {}

            def body(endpoint: Any) -> bytes:
                version = endpoint.api_version or tenant.api_version
                if version not in cache:
                    rendered = versions.render("event", {**event, "api_version": version}, version)
                    cache[version] = dumps(rendered)
                return cache[version]

            tenant.webhooks.enqueue(event["id"], event["type"], body)

        kwargs: dict[str, Any] = {"clock": tenant.clock, "rng": tenant.rng, "publish": publish}
        if settings is not None:
            kwargs["settings"] = settings
        return BillingTenantState(**kwargs)

    return new_state


# ---- the system ------------------------------------------------------------------------------------------------------


def billing_system(*, rate_limit: int | None = TEST_MODE_RATE, should_retry_429: bool = False,
                   settings: Any = None, max_body_bytes: int = 1_000_000) -> MockSystem:
    """The billing mock. `rate_limit=None` switches the default limit off; `settings` is a BillingSettings."""
    from mocks.billing.api_sandbox import action, seed

    versions = billing_versions()

    def router_factory() -> APIRouter:
        return build_router(api_routes.OPS, versions, operation_extra)

    def default_limits() -> list[RateLimitPolicy]:
        if not rate_limit:
            return []
        return [RateLimitPolicy(name="stripe-test-mode", kind="rolling", limit=rate_limit, window_s=1.0)]

    return MockSystem(
        name="billing",
        credential=credential,
        new_state=make_new_state(versions, settings),
        render_rejection=make_renderer(should_retry_429),
        router_factory=router_factory,
        versions=versions,
        request_version=request_version,
        default_limits=default_limits,
        seed=seed,
        action=action,
        sign=sign,
        exception_handlers={BillingError: handle_billing_error},
        openapi_extend=extend_openapi,
        title="Lockstep billing (Stripe-compatible)",
        max_body_bytes=max_body_bytes,
    )
