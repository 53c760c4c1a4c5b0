"""Billing connector: the Stripe API (v1) over httpx.

- Auth `Authorization: Bearer sk_...`; bodies form-encoded with bracket nesting (`items[0][price]=...`).
- Every POST carries `Idempotency-Key`, derived from the caller's key and the operation
  (`derive_idempotency_key`), so one flow-step key can drive several calls without collisions, and a
  retried POST — by this client or by a replayed flow — is answered from Stripe's stored first result.
- Version: pinned; `Stripe-Version` is echoed on every response and checked against the pin.
- Limits: Stripe test mode allows 25 requests/s per account; the client keeps under it (20/s, burst 10).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
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
from core.connectors.mapping.billing import (
    VERSIONS,
    BillingCustomer,
    BillingInvoice,
    BillingSubscription,
    parse_customer,
    parse_invoice,
    parse_subscription,
)

__all__ = ["BillingClient", "SubscriptionItemInput", "derive_idempotency_key", "form_encode"]

MAX_KEY = 255


def derive_idempotency_key(key: str, operation: str) -> str:
    """`<operation>:<key>`, hashed down when longer than Stripe's 255 characters."""
    if not key:
        raise ValueError("an idempotency key is required for every billing write")
    derived = f"{operation}:{key}"
    if len(derived) <= MAX_KEY:
        return derived
    return f"{operation}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def form_encode(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's bracket nesting: {"items": [{"price": "p"}]} -> [("items[0][price]", "p")]. None is skipped."""
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            out.extend(form_encode(value, name))
        elif isinstance(value, list | tuple):
            for i, element in enumerate(value):
                if isinstance(element, Mapping):
                    out.extend(form_encode(element, f"{name}[{i}]"))
                else:
                    out.append((f"{name}[{i}]", _scalar(element)))
        else:
            out.append((name, _scalar(value)))
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class SubscriptionItemInput:
    price: str
    quantity: int = 1
    # On updates: the subscription item to change (omit to add a new item).
    id: str | None = None
    deleted: bool | None = None
    metadata: Mapping[str, str] | None = None

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"price": self.price, "quantity": self.quantity}
        if self.id is not None:
            out["id"] = self.id
        if self.deleted is not None:
            out["deleted"] = self.deleted
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


class BillingClient(BaseClient):
    system: ClassVar[str] = "billing"
    versions: ClassVar[tuple[str, ...]] = VERSIONS
    version_header: ClassVar[str | None] = "Stripe-Version"
    # Stripe test mode allows 25 requests in any rolling second; a token bucket lets through at most
    # burst + rate x 1 s in one second, so 18 + 5 = 23 keeps under it with a margin (20 + 10 did not: 429s).
    default_limits: ClassVar[Limits] = Limits(rate_per_s=18.0, burst=5)

    def __init__(self, *, base_url: str, api_key: str, api_version: str, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, api_version=api_version, **kwargs)
        self._api_key = api_key

    # ---- vendor specifics ----------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def _served(self, response: httpx.Response) -> str | None:
        return response.headers.get("stripe-version")

    def _error(self, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        try:
            body = response.json()["error"]
            kind, code, message, param = body.get("type"), body.get("code"), body.get("message", ""), body.get("param")
        except (ValueError, KeyError, TypeError, AttributeError):
            kind, code, message, param = None, None, response.text[:300] or response.reason_phrase, None
        code = code or kind
        if status == 400 and param == "Stripe-Version":
            return SchemaDriftError(self.system, "api", None, f"the vendor does not serve the pinned version: "
                                    f"{message}", pinned=self.api_version)
        if status == 429:
            return RateLimitedError(self.system, status, code, message, retry_after=retry_after_of(response))
        if status == 404:
            return NotFoundError(self.system, status, code, message)
        if status == 409:
            if code == "lock_timeout":
                return VendorError(self.system, status, code, message, retryable=True)
            return ConflictError(self.system, status, code, message, field=param)
        if status == 400 and kind == "idempotency_error":
            return ConflictError(self.system, status, code, message, field=param)
        return VendorError(self.system, status, code, message, retryable=status >= 500, field=param)

    async def _post(self, path: str, params: Mapping[str, Any], *, key: str, operation: str) -> httpx.Response:
        return await self._request("POST", path, data=dict(form_encode(params)) if params else None,
                                   headers={"Idempotency-Key": derive_idempotency_key(key, operation)}, safe=True)

    # ---- customers -----------------------------------------------------------------------------------
    async def create_customer(self, *, idempotency_key: str, name: str | None = None, email: str | None = None,
                              metadata: Mapping[str, str] | None = None, payment_method: str | None = None,
                              extra: Mapping[str, Any] | None = None) -> BillingCustomer:
        params: dict[str, Any] = {"name": name, "email": email, "metadata": dict(metadata or {}),
                                  "payment_method": payment_method, **(extra or {})}
        if payment_method:
            params["invoice_settings"] = {"default_payment_method": payment_method}
        resp = await self._post("/v1/customers", params, key=idempotency_key, operation="customer.create")
        return self._parse(resp, "customer", parse_customer)

    async def get_customer(self, customer_id: str) -> BillingCustomer:
        resp = await self._request("GET", f"/v1/customers/{quote(customer_id, safe='')}")
        return self._parse(resp, "customer", parse_customer)

    async def update_customer(self, customer_id: str, fields: Mapping[str, Any], *,
                              idempotency_key: str) -> BillingCustomer:
        resp = await self._post(f"/v1/customers/{quote(customer_id, safe='')}", fields, key=idempotency_key,
                                operation="customer.update")
        return self._parse(resp, "customer", parse_customer)

    async def attach_payment_method(self, payment_method: str, customer_id: str, *, idempotency_key: str,
                                    make_default: bool = True) -> str:
        """Attaches (test cards: `pm_card_visa` ...) and returns the attached payment method's id."""
        resp = await self._post(f"/v1/payment_methods/{quote(payment_method, safe='')}/attach",
                                {"customer": customer_id}, key=idempotency_key, operation="payment_method.attach")
        pm_id = self._json(resp, "payment_method").get("id")
        if not isinstance(pm_id, str):
            raise SchemaDriftError(self.system, "payment_method", "id", "is missing from the response",
                                   pinned=self.api_version)
        if make_default:
            await self.update_customer(customer_id, {"invoice_settings": {"default_payment_method": pm_id}},
                                       idempotency_key=idempotency_key)
        return pm_id

    # ---- subscriptions -------------------------------------------------------------------------------
    async def create_subscription(self, *, idempotency_key: str, customer_id: str,
                                  items: Sequence[SubscriptionItemInput], metadata: Mapping[str, str] | None = None,
                                  default_payment_method: str | None = None, payment_behavior: str | None = None,
                                  extra: Mapping[str, Any] | None = None) -> BillingSubscription:
        params: dict[str, Any] = {"customer": customer_id, "items": [i.params() for i in items],
                                  "metadata": dict(metadata or {}), "default_payment_method": default_payment_method,
                                  "payment_behavior": payment_behavior, **(extra or {})}
        resp = await self._post("/v1/subscriptions", params, key=idempotency_key, operation="subscription.create")
        return self._parse(resp, "subscription", parse_subscription)

    async def get_subscription(self, subscription_id: str) -> BillingSubscription:
        resp = await self._request("GET", f"/v1/subscriptions/{quote(subscription_id, safe='')}")
        return self._parse(resp, "subscription", parse_subscription)

    async def update_subscription(self, subscription_id: str, *, idempotency_key: str,
                                  items: Sequence[SubscriptionItemInput] | None = None,
                                  proration_behavior: str | None = None, metadata: Mapping[str, str] | None = None,
                                  cancel_at_period_end: bool | None = None,
                                  extra: Mapping[str, Any] | None = None) -> BillingSubscription:
        params: dict[str, Any] = {"proration_behavior": proration_behavior,
                                  "cancel_at_period_end": cancel_at_period_end, **(extra or {})}
        if items is not None:
            params["items"] = [i.params() for i in items]
        if metadata is not None:
            params["metadata"] = dict(metadata)
        resp = await self._post(f"/v1/subscriptions/{quote(subscription_id, safe='')}", params,
                                key=idempotency_key, operation="subscription.update")
        return self._parse(resp, "subscription", parse_subscription)

    # ---- invoices ------------------------------------------------------------------------------------
    async def get_invoice(self, invoice_id: str) -> BillingInvoice:
        resp = await self._request("GET", f"/v1/invoices/{quote(invoice_id, safe='')}")
        return self._parse(resp, "invoice", parse_invoice)

    async def list_invoices(self, customer_id: str, *, status: str | None = None, subscription_id: str | None = None,
                            max_items: int = 1000) -> list[BillingInvoice]:
        """A customer's invoices, newest first, following `has_more` pages up to `max_items`."""
        out: list[BillingInvoice] = []
        after: str | None = None
        while len(out) < max_items:
            params = {"customer": customer_id, "limit": min(100, max_items - len(out))}
            params.update({k: v for k, v in (("status", status), ("subscription", subscription_id),
                                             ("starting_after", after)) if v})
            resp = await self._request("GET", "/v1/invoices", params=params)
            page = self._json(resp, "list")
            if not isinstance(page, dict) or not isinstance(page.get("data"), list) or "has_more" not in page:
                raise SchemaDriftError(self.system, "list", "data", "a list response without data / has_more",
                                       pinned=self.api_version)
            for row in page["data"]:
                out.append(parse_invoice(row, self.api_version))
            self.check_served_version(resp, "invoice")
            if not page["has_more"] or not page["data"]:
                break
            after = out[-1].id
        return out
