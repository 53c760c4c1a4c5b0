"""The dashboard's sandbox console: each system's /_sandbox control API, reached by the core.

The core knows each system's URL and credential (its LOCKSTEP_CORE_<SYSTEM>_URL / _KEY settings); on the
mocks the credential names the tenant, so `<url>/_sandbox/tenants/<key>/...` is the tenant the core talks
to. With `sandbox_admin_token` set the console can read and move that tenant's clock, set fault rules and
pin an API version (drift), and act as a user in the vendor UI (close a deal as won). Without it, or
against real vendors, every route here answers 409 `sandbox_disabled` and the page hides the controls.

Refusals from a mock come back with the mock's status and message as `{"error": {...}}`; a mock that does
not answer is a 502 `sandbox_unreachable`, never a 500.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from core.intake.receivers import error
from core.settings import SYSTEM_NAMES, CoreSettings

__all__ = ["FAULT_PRESETS", "SandboxError", "sandbox_router"]

SystemName = Literal["crm", "erp", "billing", "cs"]
SystemParam = Annotated[SystemName, PathParam(description="crm, erp, billing or cs")]

# One-click fault toggles: what an integration meets on a bad day. Rule shapes are the kernel's FaultRule.
FAULT_PRESETS: dict[str, dict[str, Any]] = {
    "flaky": {"label": "flaky: 30% of calls fail with 503", "rules": [
        {"route": "*", "kind": "error", "status": 503, "probability": 0.3}]},
    "slow": {"label": "slow: +800 ms on every call", "rules": [
        {"route": "*", "kind": "latency", "latency_ms": 800, "latency_jitter_ms": 200}]},
    "down": {"label": "down: every call fails with 503", "rules": [
        {"route": "*", "kind": "error", "status": 503}]},
    "reject": {"label": "rejects writes: 400 on every POST/PUT/PATCH", "rules": [
        {"route": "*", "method": m, "kind": "error", "status": 400} for m in ("POST", "PUT", "PATCH")]},
}
_DEAL_FIELD = {"name": "Tax_Registration__c", "type": "string", "length": 40}


class SandboxError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ClockMove(BaseModel):
    by: str | float | None = Field(default=None, description="a duration: '1d', '30d', '6h' or seconds")
    to: str | float | None = Field(default=None, description="an instant: ISO 8601 or epoch seconds")


class FaultToggle(BaseModel):
    preset: str | None = Field(default=None, description=f"one of {', '.join(FAULT_PRESETS)}; null clears")
    rules: list[dict[str, Any]] | None = Field(default=None, description="explicit rules instead of a preset")
    seed: int = 1


class VersionPin(BaseModel):
    api_version: str = Field(min_length=1, max_length=64)


class Deal(BaseModel):
    account: str = Field(default="Globex Iberia", min_length=1, max_length=80)
    country: str = Field(default="Spain", min_length=2, max_length=60)
    tax_registration: str = Field(default="ESB12345678", min_length=1, max_length=40)
    amount: int = Field(default=24_000, ge=1, le=100_000_000, description="annual amount, whole currency units")


class Sandbox:
    """Async client for the control APIs of the systems the core is wired to."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.token = settings.sandbox_admin_token

    def tenant_base(self, system: str) -> str:
        url: str = getattr(self.settings, f"{system}_url")
        return f"{url.rstrip('/')}/_sandbox/tenants/{getattr(self.settings, f'{system}_key')}"

    def client(self) -> httpx.AsyncClient:
        verify: Any = str(self.settings.ca_bundle) if self.settings.ca_bundle else True
        return httpx.AsyncClient(timeout=30, verify=verify, headers={"Lockstep-Admin-Token": self.token or ""})

    async def call(self, client: httpx.AsyncClient, method: str, system: str, path: str, **kw: Any) -> Any:
        if not self.token:
            raise SandboxError(409, "sandbox_disabled", "the core has no sandbox admin token "
                               "(set LOCKSTEP_CORE_SANDBOX_ADMIN_TOKEN to the mocks' LOCKSTEP_ADMIN_TOKEN)")
        url = self.tenant_base(system) + path
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise SandboxError(502, "sandbox_unreachable", f"{system} at {url} did not answer: "
                               f"{type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise SandboxError(response.status_code if response.status_code < 500 else 502, "sandbox_refused",
                               f"{system} answered {response.status_code}: {_message(response)}")
        return response.json()

    async def erp_has_item(self, client: httpx.AsyncClient, external_id: str) -> bool:
        """Through the ERP's own API (as the core's connector would ask)."""
        url = f"{self.settings.erp_url.rstrip('/')}/services/rest/record/v1/item/eid:{external_id}"
        try:
            response = await client.get(url, headers={"Authorization": f"Bearer {self.settings.erp_key}"})
        except httpx.HTTPError as exc:
            raise SandboxError(502, "sandbox_unreachable", f"erp at {url} did not answer: "
                               f"{type(exc).__name__}") from exc
        return response.status_code == 200

    async def system_view(self, client: httpx.AsyncClient, system: str) -> dict[str, Any]:
        view: dict[str, Any] = {"url": getattr(self.settings, f"{system}_url"),
                                "tenant": getattr(self.settings, f"{system}_key"),
                                "pinned_version": getattr(self.settings, f"{system}_version")}
        try:
            clock, faults, version = await asyncio.gather(
                self.call(client, "GET", system, "/clock"), self.call(client, "GET", system, "/faults"),
                self.call(client, "GET", system, "/version"))
        except SandboxError as exc:
            return {**view, "reachable": False, "error": exc.message}
        return {**view, "reachable": True, "clock": {k: clock[k] for k in ("now", "iso", "next_due")},
                "pending_jobs": len(clock.get("pending_jobs", [])), "faults": faults["rules"],
                "fault_hits": faults.get("hits", {}), "preset": _preset_of(faults["rules"]),
                "api_version": version["api_version"], "versions": version["versions"]}


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("detail") or inner)[:300]
        return str(body.get("detail") or inner)[:300]
    return str(body)[:300]


def _preset_of(rules: list[dict[str, Any]]) -> str | None:
    """The preset these rules came from (ids and defaults aside), or None for custom rules / no rules."""
    def shape(rule: dict[str, Any]) -> tuple[Any, ...]:
        return (rule.get("route"), rule.get("method"), rule.get("kind"), rule.get("status", 500)
                if rule.get("kind") == "error" else None, rule.get("probability", 1.0))

    got = sorted(map(shape, rules), key=str)
    for name, preset in FAULT_PRESETS.items():
        if got and got == sorted(map(shape, preset["rules"]), key=str):
            return name
    return None


def _fail(exc: SandboxError) -> JSONResponse:
    return error(exc.status, exc.code, exc.message)


# Every console route may answer these (besides FastAPI's 422): the core has no admin token (409), the mock
# refused the change (its 4xx passed on), or the mock did not answer (502).
_CONSOLE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "refused: invalid, or the mock refused the change"},
    404: {"description": "the mock does not know what was named"},
    409: {"description": "sandbox_disabled: the core has no sandbox admin token"},
    502: {"description": "sandbox_unreachable: the mock did not answer"},
}


def sandbox_router(settings: CoreSettings) -> APIRouter:
    router = APIRouter(responses=_CONSOLE_ERRORS)
    sandbox = Sandbox(settings)

    @router.get("", summary="Each system's tenant: clock, faults, API version (and whether it answers)")
    async def overview() -> dict[str, Any]:
        if not sandbox.token:
            return {"enabled": False, "reason": "no sandbox admin token: the dashboard only observes",
                    "presets": {k: v["label"] for k, v in FAULT_PRESETS.items()}, "systems": {}}
        async with sandbox.client() as client:
            views = await asyncio.gather(*(sandbox.system_view(client, s) for s in SYSTEM_NAMES))
        return {"enabled": True, "presets": {k: v["label"] for k, v in FAULT_PRESETS.items()},
                "systems": dict(zip(SYSTEM_NAMES, views, strict=True))}

    @router.post("/{system}/clock/advance", summary="Move a system's sandbox clock (due jobs run in order)")
    async def advance(system: SystemParam, body: ClockMove) -> Any:
        if (body.by is None) == (body.to is None):
            return error(400, "invalid_request", "give exactly one of 'by' (a duration) or 'to' (an instant)")
        move = {"by": body.by} if body.by is not None else {"to": body.to}
        try:
            async with sandbox.client() as client:
                clock = await sandbox.call(client, "POST", system, "/clock/advance", json=move)
        except SandboxError as exc:
            return _fail(exc)
        return {"system": system, "now": clock["now"], "iso": clock["iso"], "jobs_run": clock.get("jobs_run", 0)}

    @router.put("/{system}/faults", summary="Set a fault preset (or explicit rules); preset null clears")
    async def set_faults(system: SystemParam, body: FaultToggle) -> Any:
        if body.preset is not None and body.preset not in FAULT_PRESETS:
            return error(400, "unknown_preset", f"no fault preset {body.preset!r}; known: {', '.join(FAULT_PRESETS)}")
        rules = body.rules if body.rules is not None else (
            FAULT_PRESETS[body.preset]["rules"] if body.preset else [])
        try:
            async with sandbox.client() as client:
                if not rules:
                    await sandbox.call(client, "DELETE", system, "/faults")
                    return {"system": system, "rules": [], "preset": None}
                made = await sandbox.call(client, "PUT", system, "/faults", json={"rules": rules, "seed": body.seed})
        except SandboxError as exc:
            return _fail(exc)
        return {"system": system, "rules": made["rules"], "preset": _preset_of(made["rules"])}

    @router.put("/{system}/version", summary="Pin the tenant's API version (what the vendor serves: drift)")
    async def set_version(system: SystemParam, body: VersionPin) -> Any:
        try:
            async with sandbox.client() as client:
                made = await sandbox.call(client, "PUT", system, "/version", json=body.model_dump())
        except SandboxError as exc:
            return _fail(exc)
        return {"system": system, "api_version": made["api_version"],
                "core_pinned": getattr(settings, f"{system}_version")}

    @router.post("/actions/close-won", status_code=202,
                 summary="Act as a sales rep: create an account + opportunity in the CRM and close it won "
                         "(starts lead-to-cash through the CRM's change event)")
    async def close_won(body: Deal) -> Any:
        try:
            async with sandbox.client() as client:
                return await _close_won(sandbox, client, body)
        except SandboxError as exc:
            return _fail(exc)

    return router


async def _close_won(sandbox: Sandbox, client: httpx.AsyncClient, deal: Deal) -> dict[str, Any]:
    # What a lead-to-cash run needs from the estate: the CRM's tax-registration field, the ERP's items.
    await sandbox.call(client, "POST", "crm", "/actions", json={"action": "declare_field", "object": "Account",
                                                                "field": _DEAL_FIELD})
    if not await sandbox.erp_has_item(client, "ITEM-PLAT-ANNUAL"):
        await sandbox.call(client, "POST", "erp", "/seed", json={"customers": 0, "items": True})
    created = await sandbox.call(client, "POST", "crm", "/seed", json={"demo": False, "records": {
        "Account": [{"@ref": "acc", "Name": deal.account, "BillingCountry": deal.country,
                     "Tax_Registration__c": deal.tax_registration}],
        "Opportunity": [{"AccountId": "@acc", "Name": f"{deal.account} - Platform", "StageName": "Proposal/Price Quote",
                         "CloseDate": "2026-01-15", "Amount": deal.amount}]}})
    opportunity = created["created"]["Opportunity"][0]
    await sandbox.call(client, "POST", "crm", "/actions", json={"action": "close_opportunity", "id": opportunity,
                                                                "won": True})
    business_key = f"closed-won:{opportunity}"
    return {"opportunity": opportunity, "account": created["created"]["Account"][0], "business_key": business_key,
            "flow_url": f"/flows/{business_key}"}
