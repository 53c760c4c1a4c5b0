"""Customer-success connector: the Gainsight-style APIs over httpx.

- Auth `accesskey: <key>`. Every answer wears the envelope `{"result", "errorCode", "errorDesc", "data"}`.
- Version: `X-Gainsight-Version` when `send_version`; drift is caught by shape (v1 `HealthScore` / `CSM` /
  stage names vs v2 `Health` / `CsmId` / stage codes). A write naming a field the server does not know
  (GSOBJ_1002) is drift too: the pinned mapping writes a field this version renamed.
- Idempotency: companies are upserted by ExternalId; timeline activities dedupe by ExternalId; a CTA has
  no external id in this API, so the key is stamped into its Comments (`[lockstep:<key>]`) and looked up
  among the company's CTAs before creating; starting an onboarding plan that is already active returns it.
- Limits: 200 calls per minute per tenant (429 + Retry-After); the client keeps to 3/s, bursts of 20.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import httpx

from core.connectors.base import BaseClient, Limits, retry_after_of
from core.connectors.errors import (
    ConflictError,
    ConnectorError,
    NotFoundError,
    RateLimitedError,
    SchemaDriftError,
    VendorError,
)
from core.connectors.mapping.cs import (
    VERSIONS,
    CompanyInput,
    CsCompany,
    CsCta,
    CsPlan,
    CsScorecard,
    company_body,
    parse_company,
    parse_cta,
    parse_plan,
    parse_scorecard,
)

__all__ = ["CsClient", "WriteResult", "cta_marker"]

T = TypeVar("T")
PAGE = 50
DUPLICATE = "GSOBJ_1009"
INVALID_FIELD = "GSOBJ_1002"
UNKNOWN_VERSION = "GS_2002"


def cta_marker(key: str) -> str:
    return f"[lockstep:{key}]"


@dataclass(frozen=True)
class WriteResult:
    gsid: str
    action: str | None


class CsClient(BaseClient):
    system: ClassVar[str] = "cs"
    versions: ClassVar[tuple[str, ...]] = VERSIONS
    version_header: ClassVar[str | None] = "X-Gainsight-Version"
    # Gainsight: 200 calls in a rolling minute; at most burst + rate x 60 s = 10 + 180 = 190 in any minute.
    default_limits: ClassVar[Limits] = Limits(rate_per_s=3.0, burst=10)

    def __init__(self, *, base_url: str, access_key: str, api_version: str, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, api_version=api_version, **kwargs)
        self._key = access_key

    def _auth_headers(self) -> dict[str, str]:
        return {"accesskey": self._key}

    def _error(self, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        try:
            body = response.json()
            code, message = body.get("errorCode"), body.get("errorDesc") or ""
        except (ValueError, AttributeError):
            code, message = None, response.text[:300] or response.reason_phrase
        if status == 429:
            return RateLimitedError(self.system, status, code, message, retry_after=retry_after_of(response))
        if status == 404:
            return NotFoundError(self.system, status, code, message)
        if code == UNKNOWN_VERSION:
            return SchemaDriftError(self.system, "api", None, message, pinned=self.api_version)
        if code == INVALID_FIELD and "re-check data mapping" in message:
            return SchemaDriftError(self.system, "company", _field_in(message), message, pinned=self.api_version)
        if code == DUPLICATE:
            return ConflictError(self.system, status, code, message)
        return VendorError(self.system, status, code, message, retryable=status >= 500)

    def _data(self, response: httpx.Response, obj: str) -> Any:
        body = self._json(response, obj)
        if not isinstance(body, dict) or body.get("result") is not True or "data" not in body:
            raise SchemaDriftError(self.system, obj, "data", "the response is not a successful envelope",
                                   pinned=self.api_version)
        return body["data"]

    def _records(self, response: httpx.Response, obj: str, parser: Callable[[Any, str], T]) -> list[T]:
        data = self._data(response, obj)
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise SchemaDriftError(self.system, obj, "records", "the response has no records list",
                                   pinned=self.api_version)
        return [parser(row, self.api_version) for row in data["records"]]

    # ---- companies -----------------------------------------------------------------------------------
    async def upsert_company(self, external_id: str, data: CompanyInput) -> WriteResult:
        """Inserts or updates the company with this ExternalId (repeatable)."""
        body = {"records": [company_body(data, self.api_version, external_id)]}
        resp = await self._request("POST", "/v1/data/objects/Company", params={"keys": "ExternalId"}, json=body,
                                   safe=True)
        return self._write_result(resp)

    async def update_company(self, external_id: str, data: CompanyInput) -> WriteResult:
        """Updates an existing company (ARR, MRR, renewal date, stage ...); NotFoundError when there is none."""
        body = {"records": [company_body(data, self.api_version, external_id)]}
        resp = await self._request("PUT", "/v1/data/objects/Company", params={"keys": "ExternalId"}, json=body)
        return self._write_result(resp)

    def _write_result(self, resp: httpx.Response) -> WriteResult:
        data = self._data(resp, "company")
        try:
            row = data["records"][0]
            return WriteResult(str(row["Gsid"]), row.get("action"))
        except (KeyError, IndexError, TypeError) as exc:
            raise SchemaDriftError(self.system, "company", "records", "a write result without Gsid",
                                   pinned=self.api_version) from exc

    async def get_company(self, external_id: str) -> CsCompany:
        query = {"select": [], "limit": 2, "offset": 0,
                 "where": {"conditions": [{"name": "ExternalId", "operator": "EQ", "value": [external_id]}]}}
        resp = await self._request("POST", "/v1/data/objects/query/Company", json=query, safe=True)
        rows = self._records(resp, "company", parse_company)
        if not rows:
            raise NotFoundError(self.system, 404, "GS_3004", f"no Company with ExternalId {external_id!r}")
        if len(rows) > 1:
            raise ConflictError(self.system, 200, "MULTIPLE", f"several companies with ExternalId {external_id!r}")
        return rows[0]

    # ---- health --------------------------------------------------------------------------------------
    async def get_scorecard(self, company_id: str) -> CsScorecard:
        resp = await self._request("GET", f"/v1/scorecard/company/{quote(company_id, safe='')}")
        return parse_scorecard(self._data(resp, "scorecard"), self.api_version)

    # ---- CTAs ----------------------------------------------------------------------------------------
    async def list_ctas(self, company_id: str, *, status: str | None = None) -> list[CsCta]:
        out: list[CsCta] = []
        offset = 0
        while True:
            params: dict[str, Any] = {"companyId": company_id, "limit": PAGE, "offset": offset}
            if status:
                params["status"] = status
            resp = await self._request("GET", "/v2/cockpit/cta", params=params)
            page = self._records(resp, "cta", parse_cta)
            out.extend(page)
            if len(page) < PAGE:
                return out
            offset += PAGE

    async def create_cta(self, *, idempotency_key: str, company_id: str, name: str, type: str = "Risk",
                         priority: str | None = None, reason: str | None = None, due_date: date | None = None,
                         owner: str | None = None, comments: str | None = None) -> CsCta:
        """Opens a call-to-action once per idempotency key (an open or closed CTA carrying the key counts)."""
        marker = cta_marker(idempotency_key)
        for cta in await self.list_ctas(company_id):
            if cta.comments and marker in cta.comments:
                return cta
        row: dict[str, Any] = {"Name": name, "CompanyId": company_id, "TypeName": type,
                               "Comments": f"{comments} {marker}" if comments else marker}
        for key, value in (("PriorityName", priority), ("ReasonName", reason), ("OwnerId", owner),
                           ("DueDate", due_date.isoformat() if due_date else None)):
            if value is not None:
                row[key] = value
        # Not repeated on 5xx / connection errors: the lookup above makes the next call (a flow retry) safe.
        resp = await self._request("POST", "/v2/cockpit/cta", json={"requests": [row]}, safe=False)
        rows = self._records(resp, "cta", parse_cta)
        if len(rows) != 1:
            raise SchemaDriftError(self.system, "cta", "records", f"expected one CTA, got {len(rows)}",
                                   pinned=self.api_version)
        return rows[0]

    async def close_cta(self, cta_id: str, *, status: str = "Closed Success", reason: str | None = None) -> CsCta:
        body: dict[str, Any] = {"StatusName": status}
        if reason:
            body["ReasonName"] = reason
        resp = await self._request("POST", f"/v2/cockpit/cta/{quote(cta_id, safe='')}/close", json=body, safe=False)
        return parse_cta(self._data(resp, "cta"), self.api_version)

    # ---- onboarding ----------------------------------------------------------------------------------
    async def start_onboarding(self, company_id: str, *, template: str = "Standard Onboarding",
                               start_date: date | None = None, name: str | None = None) -> CsPlan:
        """Starts the onboarding plan, or returns the active one from this template (idempotent)."""
        body: dict[str, Any] = {"CompanyId": company_id, "TemplateName": template}
        if start_date is not None:
            body["StartDate"] = start_date.isoformat()
        if name is not None:
            body["Name"] = name
        try:
            resp = await self._request("POST", "/v2/cockpit/successplan", json=body, safe=True)
        except ConflictError:
            for plan in await self.list_plans(company_id):
                if plan.template == template and plan.status == "Active":
                    return plan
            raise
        return parse_plan(self._data(resp, "successplan"), self.api_version)

    async def list_plans(self, company_id: str) -> list[CsPlan]:
        resp = await self._request("GET", "/v2/cockpit/successplan", params={"companyId": company_id, "limit": PAGE})
        return self._records(resp, "successplan", parse_plan)

    # ---- timeline ------------------------------------------------------------------------------------
    async def log_activity(self, *, external_id: str, company_id: str, subject: str, notes: str | None = None,
                           type: str = "Update") -> str:
        """A timeline entry, deduplicated by ExternalId (e.g. an entitlement change keyed by the flow step)."""
        body: dict[str, Any] = {"ExternalId": external_id, "CompanyId": company_id, "Subject": subject,
                                "TypeName": type}
        if notes is not None:
            body["Notes"] = notes
        resp = await self._request("POST", "/v1/ant/timeline/activity", json=body, safe=True)
        data = self._data(resp, "activity")
        if not isinstance(data, dict) or not isinstance(data.get("activityId"), str):
            raise SchemaDriftError(self.system, "activity", "activityId", "is missing from the response",
                                   pinned=self.api_version)
        return data["activityId"]


def _field_in(message: str) -> str | None:
    """The field named in Gainsight's '(X is not a field of ...)' message."""
    start = message.rfind("(")
    if start < 0:
        return None
    return message[start + 1:].split(" ", 1)[0] or None
