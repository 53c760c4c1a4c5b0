"""CRM connector: Salesforce REST over httpx.

- Auth `Authorization: Bearer <session id / access token>`; `base_url` is the org's instance URL.
- Version: in the path (`/services/data/v59.0/...`), always the pinned one. A 404 is checked against
  `GET /services/data` (once, cached): when the org does not serve the pinned version it is
  SchemaDriftError, not NotFoundError.
- Writes are keyed: updates are absolute PATCHes (safe to repeat), creates go through upsert by external id
  (`PATCH sobjects/Account/External_Id__c/<value>`), so a retry never makes a second record.
- Limits: every response carries `Sforce-Limit-Info: api-usage=<used>/<quota>`; above `slow_at` of the
  daily quota the client paces itself (a pause growing linearly to `max_pause` at the quota), so a busy
  flow does not burn the org's last calls. A spent quota (403 REQUEST_LIMIT_EXCEEDED) is a
  RateLimitedError without in-call retry. Client-side: at most 10 requests in flight.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
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
from core.connectors.mapping.crm import (
    VERSIONS,
    AccountUpdate,
    CrmAccount,
    CrmOpportunity,
    account_update_body,
    parse_account,
    parse_opportunity,
)

__all__ = ["CrmClient", "LimitUsage", "UpsertResult"]

LIMIT_RE = re.compile(r"api-usage=(\d+)/(\d+)")
EXTERNAL_ID_FIELD = "External_Id__c"


@dataclass(frozen=True)
class UpsertResult:
    id: str
    created: bool


@dataclass(frozen=True)
class LimitUsage:
    used: int
    quota: int

    @property
    def ratio(self) -> float:
        return self.used / self.quota if self.quota else 1.0


class CrmClient(BaseClient):
    system: ClassVar[str] = "crm"
    versions: ClassVar[tuple[str, ...]] = VERSIONS
    version_header: ClassVar[str | None] = None
    default_limits: ClassVar[Limits] = Limits(max_in_flight=10)

    def __init__(self, *, base_url: str, access_token: str, api_version: str, slow_at: float = 0.8,
                 max_pause: float = 2.0, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, api_version=api_version, **kwargs)
        self._token = access_token
        self.slow_at = slow_at
        self.max_pause = max_pause
        self.usage: LimitUsage | None = None
        self.paused_s = 0.0
        self._served_versions: list[str] | None = None

    @property
    def prefix(self) -> str:
        return f"/services/data/v{self.api_version}"

    # ---- vendor specifics ----------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _observe(self, response: httpx.Response) -> None:
        match = LIMIT_RE.search(response.headers.get("sforce-limit-info", ""))
        if match:
            self.usage = LimitUsage(int(match.group(1)), int(match.group(2)))

    def pause_for(self, usage: LimitUsage | None) -> float:
        """Seconds to wait before the next call at this usage: 0 below `slow_at`, up to `max_pause` at quota."""
        if usage is None or usage.ratio < self.slow_at:
            return 0.0
        span = max(1e-9, 1.0 - self.slow_at)
        return self.max_pause * min(1.0, (usage.ratio - self.slow_at) / span)

    async def _pace(self) -> None:
        pause = self.pause_for(self.usage)
        if pause > 0:
            self.paused_s += pause
            await self._sleep(pause)

    def _error(self, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        try:
            first = response.json()[0]
            code, message, fields = first.get("errorCode"), first.get("message", ""), first.get("fields") or []
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            code, message, fields = None, response.text[:300] or response.reason_phrase, []
        if status == 429 or code == "REQUEST_LIMIT_EXCEEDED":
            return RateLimitedError(self.system, status, code, message, retry_after=retry_after_of(response))
        if status == 404:
            return NotFoundError(self.system, status, code, message)
        if status == 300:
            return ConflictError(self.system, status, "MULTIPLE_CHOICES", "several records match the external id")
        if code == "INVALID_FIELD":
            # A field the pinned mapping reads or writes does not exist in this org / version.
            return SchemaDriftError(self.system, "sobject", fields[0] if fields else None, message,
                                    pinned=self.api_version)
        if code in ("DUPLICATE_VALUE", "DUPLICATES_DETECTED"):
            return ConflictError(self.system, status, code, message, field=fields[0] if fields else None)
        return VendorError(self.system, status, code, message, retryable=status >= 500,
                           field=fields[0] if fields else None)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._request(method, self.prefix + path, **kwargs)
        except NotFoundError:
            await self._check_version()
            raise
        if response.status_code == 300:
            raise ConflictError(self.system, 300, "MULTIPLE_CHOICES", "several records match the external id")
        return response

    async def served_versions(self) -> list[str]:
        if self._served_versions is None:
            response = await self._request("GET", "/services/data")
            rows = self._json(response, "versions")
            if not isinstance(rows, list):
                raise SchemaDriftError(self.system, "versions", None, "expected a list of versions")
            self._served_versions = [str(r.get("version")) for r in rows if isinstance(r, dict)]
        return self._served_versions

    async def _check_version(self) -> None:
        served = await self.served_versions()
        if self.api_version not in served:
            raise SchemaDriftError(self.system, "api", None, f"the org does not serve the pinned API version "
                                   f"{self.api_version}; it serves {', '.join(served)}", pinned=self.api_version)

    # ---- reads ---------------------------------------------------------------------------------------
    async def get_account(self, account_id: str) -> CrmAccount:
        resp = await self._call("GET", f"/sobjects/Account/{quote(account_id, safe='')}")
        return self._parse(resp, "Account", parse_account)

    async def get_account_by_external_id(self, value: str, *, field: str = EXTERNAL_ID_FIELD) -> CrmAccount:
        resp = await self._call("GET", f"/sobjects/Account/{quote(field, safe='')}/{quote(value, safe='')}")
        return self._parse(resp, "Account", parse_account)

    async def get_opportunity(self, opportunity_id: str) -> CrmOpportunity:
        resp = await self._call("GET", f"/sobjects/Opportunity/{quote(opportunity_id, safe='')}")
        return self._parse(resp, "Opportunity", parse_opportunity)

    async def query(self, soql: str, *, include_deleted: bool = False,
                    max_records: int = 50_000) -> list[dict[str, Any]]:
        """SOQL rows (raw, `attributes` removed), following `nextRecordsUrl`. `include_deleted` uses queryAll
        (merged / deleted rows with IsDeleted and MasterRecordId)."""
        resp = await self._call("GET", "/queryAll" if include_deleted else "/query", params={"q": soql})
        rows: list[dict[str, Any]] = []
        while True:
            page = self._json(resp, "QueryResult")
            if not isinstance(page, dict) or not isinstance(page.get("records"), list) or "done" not in page:
                raise SchemaDriftError(self.system, "QueryResult", "records", "a query result without records / done",
                                       pinned=self.api_version)
            rows.extend({k: v for k, v in r.items() if k != "attributes"} for r in page["records"])
            if page["done"] or not page.get("nextRecordsUrl") or len(rows) >= max_records:
                return rows[:max_records]
            resp = await self._request("GET", page["nextRecordsUrl"])

    # ---- writes --------------------------------------------------------------------------------------
    async def update_account(self, account_id: str, update: AccountUpdate | Mapping[str, Any]) -> None:
        """Sets account fields (at-risk flag, AR balance, renewal date, health ...). An absolute PATCH: safe
        to repeat, so it is retried on 5xx / connection errors."""
        body = account_update_body(update, self.api_version) if isinstance(update, AccountUpdate) else dict(update)
        await self._call("PATCH", f"/sobjects/Account/{quote(account_id, safe='')}", json=body, safe=True)

    async def upsert_account(self, external_id: str, update: AccountUpdate | Mapping[str, Any], *,
                             field: str = EXTERNAL_ID_FIELD) -> UpsertResult:
        """Creates or updates the account whose `field` is `external_id` (the idempotency key of account
        creation). Returns its id and whether it was created."""
        body = account_update_body(update, self.api_version) if isinstance(update, AccountUpdate) else dict(update)
        body.pop(field, None)
        path = f"/sobjects/Account/{quote(field, safe='')}/{quote(external_id, safe='')}"
        resp = await self._call("PATCH", path, json=body, safe=True)
        if resp.status_code == 201:
            data = self._json(resp, "SaveResult")
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise SchemaDriftError(self.system, "SaveResult", "id", "is missing from the response",
                                       pinned=self.api_version)
            return UpsertResult(data["id"], True)
        account = await self.get_account_by_external_id(external_id, field=field)
        return UpsertResult(account.id, False)
