"""What a mock system hands the kernel: its name, credentials, error renderer, versions and state factory.

The kernel is vendor-neutral; everything vendor-shaped (how a credential looks, what a 401 or 429 body
looks like, how a request picks its API version) comes from a `MockSystem` instance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter
from starlette.responses import Response

if TYPE_CHECKING:
    from mocks.kernel.ratelimit import Admission, RateLimitPolicy
    from mocks.kernel.tenants import Tenant
    from mocks.kernel.versions import VersionRegistry


class SystemState(Protocol):
    """Per-tenant state of one mock system. Knows no HTTP."""

    def dump(self) -> dict[str, Any]: ...

    def load(self, data: dict[str, Any]) -> None: ...

    def run_job(self, kind: str, payload: dict[str, Any]) -> None: ...


class KernelRejection(Exception):
    """A request the kernel refuses before it reaches the vendor routes; the system renders it.

    kind: "unauthorized" | "rate_limited" | "unknown_version" | "fault" | "too_large" | "bad_request"
          | "not_found" (no such route) | "method_not_allowed" | "internal" (a bug: render the vendor's 500)
    """

    def __init__(self, kind: str, message: str, status: int, **details: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.details = details


Headers = Mapping[str, str]


@dataclass
class MockSystem:
    name: str
    # Returns a tenant key for a well-formed credential, None for a missing or malformed one.
    credential: Callable[[Headers, str], str | None]
    # Builds empty state for a new tenant (it may read tenant.clock, tenant.rng, tenant.emit ...).
    new_state: Callable[[Tenant], SystemState]
    # Renders a kernel rejection in the vendor's error envelope.
    render_rejection: Callable[[KernelRejection], Response]
    # The vendor routes.
    router_factory: Callable[[], APIRouter]
    versions: VersionRegistry
    # Picks the API version the vendor's way (header, path ...); None means the tenant default.
    request_version: Callable[[Headers, str], str | None]
    # Default rate-limit policies of a fresh tenant.
    default_limits: Callable[[], list[RateLimitPolicy]] = field(default_factory=lambda: list)
    # Extra headers on every response (e.g. Salesforce's Sforce-Limit-Info).
    limit_headers: Callable[[Tenant, Admission | None], dict[str, str]] | None = None
    # Seeds demo or explicit data into a tenant (control API `seed`).
    seed: Callable[[Tenant, dict[str, Any]], dict[str, Any]] | None = None
    # Performs a "user action" (what a person does in the vendor UI).
    action: Callable[[Tenant, dict[str, Any]], dict[str, Any]] | None = None
    # Signs webhook payloads the vendor's way: (body, secret, timestamp) -> headers.
    sign: Callable[[bytes, str, int], dict[str, str]] | None = None
    # Paths (prefixes) that skip auth, e.g. docs.
    # Completes the generated OpenAPI document in place (component schemas, security schemes ...).
    openapi_extend: Callable[[dict[str, Any]], None] | None = None
    # Vendor exception type -> handler (e.g. BillingError -> Stripe envelope), installed on the app.
    exception_handlers: dict[type[Exception], Callable[..., Any]] = field(default_factory=dict)
    # Paths (prefixes) that skip auth, e.g. docs.
    public_prefixes: tuple[str, ...] = ("/openapi", "/docs", "/redoc")
    title: str = ""
    max_body_bytes: int = 1_000_000
