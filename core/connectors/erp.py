"""ERP connector: the NetSuite REST record service over httpx.

- Auth `Authorization: Bearer <token>`. Record paths `/services/rest/record/v1/{type}[/{id | eid:<externalId>}]`.
- Idempotency by external id: customers and invoices are upserted (`PUT .../eid:<key>`, repeatable);
  a sales order is created with `externalId` = the caller's idempotency key, and a create that finds the
  key taken (a retry after a lost response, a replayed flow) returns the existing order instead.
- Version: `X-NetSuite-Version` when `send_version`; NetSuite does not echo a version, so drift is caught
  by shape (select fields as strings on 2024.2, `{id, refName}` on 2025.1). Writes whose body depends on the
  version (credit hold) read the record first, so a version switch is caught before anything is written.
- Governance is concurrency: the account allows N requests in flight (5 by default); the client keeps to
  4 and retries the CONCURRENCY_LIMIT_EXCEEDED 429s other clients cause, with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
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
from core.connectors.mapping.erp import (
    VERSIONS,
    CustomerInput,
    ErpCustomer,
    ErpInvoice,
    ErpSalesOrder,
    LineInput,
    credit_hold_value,
    customer_body,
    lines_body,
    parse_customer,
    parse_invoice,
    parse_sales_order,
)

__all__ = ["UNREAD", "ErpClient", "eid"]

RECORD = "/services/rest/record/v1"
# `existing=UNREAD`: the caller has not read the record; the connector reads it itself.
UNREAD: Any = object()


def _key(record_id: str) -> str:
    """An internal id, or `eid:<externalId>`, path-quoted."""
    return quote(record_id, safe=":")


def eid(external_id: str) -> str:
    return f"eid:{external_id}"


class ErpClient(BaseClient):
    system: ClassVar[str] = "erp"
    versions: ClassVar[tuple[str, ...]] = VERSIONS
    version_header: ClassVar[str | None] = "X-NetSuite-Version"
    default_limits: ClassVar[Limits] = Limits(max_in_flight=4)

    def __init__(self, *, base_url: str, token: str, api_version: str, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, api_version=api_version, **kwargs)
        self._token = token

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _error(self, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        try:
            body = response.json()
            detail = (body.get("o:errorDetails") or [{}])[0]
            code, message, path = detail.get("o:errorCode"), detail.get("detail") or body.get("title", ""), \
                detail.get("o:errorPath")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            code, message, path = None, response.text[:300] or response.reason_phrase, None
        if status == 429:
            return RateLimitedError(self.system, status, code, message, retry_after=retry_after_of(response))
        if status == 404 or code == "NONEXISTENT_ID":
            return NotFoundError(self.system, status, code, message)
        if status == 400 and code == "INVALID_PARAMETER" and "version" in message.lower():
            return SchemaDriftError(self.system, "api", None, message, pinned=self.api_version)
        if status == 412 or (code == "USER_ERROR" and "already exists" in message):
            return ConflictError(self.system, status, code, message, field=path)
        return VendorError(self.system, status, code, message, retryable=status >= 500, field=path)

    # ---- customers -----------------------------------------------------------------------------------
    async def get_customer(self, record_id: str) -> ErpCustomer:
        """By internal id or `eid:<externalId>`."""
        resp = await self._request("GET", f"{RECORD}/customer/{_key(record_id)}")
        return self._parse(resp, "customer", parse_customer)

    async def upsert_customer(self, external_id: str, data: CustomerInput) -> ErpCustomer:
        """Creates or updates the customer with this external id (repeatable), then reads it back."""
        body = customer_body(data, self.api_version)
        await self._request("PUT", f"{RECORD}/customer/{_key(eid(external_id))}", json=body)
        return await self.get_customer(eid(external_id))

    async def update_customer(self, record_id: str, data: CustomerInput | Mapping[str, Any]) -> ErpCustomer:
        body = customer_body(data, self.api_version) if isinstance(data, CustomerInput) else dict(data)
        await self._request("PATCH", f"{RECORD}/customer/{_key(record_id)}", json=body, safe=True)
        return await self.get_customer(record_id)

    async def set_credit_hold(self, record_id: str, hold: bool | str) -> ErpCustomer:
        """Places (`True` / "ON") or releases (`False` / "AUTO", or "OFF") a credit hold. Reads the customer
        first: the shape check catches a version switch before the write, and an unchanged hold is not
        written again."""
        override = ("ON" if hold else "AUTO") if isinstance(hold, bool) else hold
        current = await self.get_customer(record_id)
        if current.credit_hold_override == override:
            return current
        body = {"creditHoldOverride": credit_hold_value(override, self.api_version)}
        await self._request("PATCH", f"{RECORD}/customer/{_key(current.id)}", json=body, safe=True)
        return await self.get_customer(current.id)

    # ---- sales orders --------------------------------------------------------------------------------
    async def get_sales_order(self, record_id: str) -> ErpSalesOrder:
        resp = await self._request("GET", f"{RECORD}/salesOrder/{_key(record_id)}",
                                   params={"expandSubResources": "true"})
        return self._parse(resp, "salesOrder", parse_sales_order)

    async def create_sales_order(self, *, idempotency_key: str, customer: str, lines: list[LineInput],
                                 tran_date: date | None = None, memo: str | None = None,
                                 other_ref_num: str | None = None) -> ErpSalesOrder:
        """Creates the order once per idempotency key (stored as its externalId). `customer` is an internal
        id or `eid:<externalId>`."""
        body: dict[str, Any] = {"entity": _ref(customer), "externalId": idempotency_key, "item": lines_body(lines)}
        if tran_date is not None:
            body["tranDate"] = tran_date.isoformat()
        if memo is not None:
            body["memo"] = memo
        if other_ref_num is not None:
            body["otherRefNum"] = other_ref_num
        try:
            await self._request("POST", f"{RECORD}/salesOrder", json=body, safe=True)
        except ConflictError as exc:
            if exc.field != "externalId":
                raise
        return await self.get_sales_order(eid(idempotency_key))

    async def amend_sales_order(self, record_id: str, *, lines: list[LineInput] | None = None,
                                memo: str | None = None) -> ErpSalesOrder:
        """Amends an order (new revision). Absolute values: repeating the same amendment changes nothing."""
        body: dict[str, Any] = {}
        if lines is not None:
            body["item"] = lines_body(lines)
        if memo is not None:
            body["memo"] = memo
        if not body:
            raise ValueError("nothing to amend")
        await self._request("PATCH", f"{RECORD}/salesOrder/{_key(record_id)}", json=body, safe=True)
        return await self.get_sales_order(record_id)

    # ---- invoices ------------------------------------------------------------------------------------
    async def get_invoice(self, record_id: str) -> ErpInvoice:
        resp = await self._request("GET", f"{RECORD}/invoice/{_key(record_id)}", params={"expandSubResources": "true"})
        return self._parse(resp, "invoice", parse_invoice)

    async def upsert_invoice(self, external_id: str, *, customer: str, sales_order: str,
                             lines: list[LineInput] | None = None, tran_date: date | None = None,
                             due_date: date | None = None, memo: str | None = None,
                             existing: ErpInvoice | object | None = UNREAD) -> ErpInvoice:
        """Creates or updates the invoice with this external id (e.g. the billing invoice id), then reads it
        back. Without `lines` a new invoice bills the whole order. Customer and order of an existing invoice
        cannot change, so an update does not send them. `existing`: the invoice as the caller just read it
        (None: it does not exist), which saves this call its own read; by default the invoice is read first."""
        if existing is UNREAD:
            try:
                existing = await self.get_invoice(eid(external_id))
            except NotFoundError:
                existing = None
        new = existing is None
        if isinstance(existing, ErpInvoice) and lines is None and tran_date is None and due_date is None \
                and memo is None:
            return existing
        await self.put_invoice(external_id, customer=customer if new else None,
                               sales_order=sales_order if new else None, lines=lines, tran_date=tran_date,
                               due_date=due_date, memo=memo)
        return await self.get_invoice(eid(external_id))

    async def put_invoice(self, external_id: str, *, customer: str | None = None, sales_order: str | None = None,
                          lines: list[LineInput] | None = None, tran_date: date | None = None,
                          due_date: date | None = None, memo: str | None = None) -> str | None:
        """One upsert `PUT .../invoice/eid:<external_id>` and no reads: what a caller that knows the values
        it wrote needs. With `customer` and `sales_order` it can create the invoice; re-sending them to an
        existing one is no change (NetSuite refuses only a different customer or order, a `VendorError`).
        Returns the internal id when the PUT created the invoice (the `Location` NetSuite answers a create
        with), None when it updated one."""
        body: dict[str, Any] = {}
        if customer is not None:
            body["entity"] = _ref(customer)
        if sales_order is not None:
            body["createdFrom"] = _ref(sales_order)
        if lines is not None:
            body["item"] = lines_body(lines)
        if tran_date is not None:
            body["tranDate"] = tran_date.isoformat()
        if due_date is not None:
            body["dueDate"] = due_date.isoformat()
        if memo is not None:
            body["memo"] = memo
        resp = await self._request("PUT", f"{RECORD}/invoice/{_key(eid(external_id))}", json=body)
        created_at = resp.headers.get("location", "").rstrip("/")
        return created_at.rpartition("/")[2] or None

def _ref(record_id: str) -> dict[str, str]:
    if record_id.startswith("eid:"):
        return {"externalId": record_id[4:]}
    return {"id": record_id}

