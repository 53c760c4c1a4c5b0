"""What the core's flows share: idempotency keys, crosswalk and ownership access, step retry policy, error
unwrapping, trace notes, and the few vendor calls the connectors do not offer yet.

Idempotency keys (every outbound write carries one):
- `idem_key(business_key, step)` -> `<business key>:<step>` (no "/": it may travel in a URL path, e.g.
  NetSuite `eid:<key>`). Deterministic, so a retried step, a crash
  recovery and a DLQ replay of the same business transaction send the same key (Stripe `Idempotency-Key`,
  NetSuite `externalId`, Gainsight `ExternalId`, Salesforce `External_Id__c`). Keys longer than 200
  characters are shortened to a readable prefix + sha256, so every vendor's limit (255 at most) holds.
- `account_key(canonical_id)` -> `account:<canonical id>`: the business key of account master data. A
  customer record belongs to the account, not to one deal, so two closed-won deals of one account write
  the same ERP customer / billing customer / CS company (keyed by the account, looked up in the crosswalk first).

Ownership (core/ownership.yaml): `owned(entity, system, values)` keeps the fields `system` owns and records
every ignored one in the flow's trace (system "core", status "ignored"); `survive(entity, candidates)`
builds one record from several systems' values, each field from its owner (survivorship).

Errors: `unwrap(exc)` turns DBOS's "max step retries exceeded" back into the connector error that caused it,
so the DLQ names the real reason (e.g. `VendorError erp 503 ...`). `CompensatedError` ends a flow that
rolled back its commercial effects; it is parked in the DLQ with what was undone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from core import trace
from core.connectors.billing import BillingClient
from core.connectors.crm import CrmClient
from core.connectors.cs import CsClient
from core.connectors.erp import RECORD, ErpClient
from core.connectors.errors import NotFoundError, SchemaDriftError
from core.connectors.mapping.billing import parse_subscription
from core.crosswalk import Crosswalk, IgnoredWrite, Ownership
from core.runtime import transient

__all__ = [
    "COUNTRY_CURRENCY",
    "LIVE_SUBSCRIPTION_STATUSES",
    "STEP_RETRY",
    "SUBSIDIARY_BY_COUNTRY",
    "CompensatedError",
    "Compensation",
    "account_key",
    "billing_cancel_subscription",
    "billing_ensure_price",
    "billing_ensure_product",
    "billing_list_subscriptions",
    "billing_preflight",
    "crm_raw_record",
    "crosswalk",
    "cs_company_by_gsid",
    "cs_update_company_by_gsid",
    "currency_for",
    "erp_delete_sales_order",
    "erp_sales_orders_of",
    "erp_update_record",
    "idem_key",
    "note",
    "owned",
    "ownership",
    "set_crosswalk",
    "survive",
    "unwrap",
]

_log = logging.getLogger("lockstep.core.flows")
MAX_KEY = 200
# Subscription statuses that still bill (or may): what must never be orphaned or duplicated.
LIVE_SUBSCRIPTION_STATUSES = frozenset({"active", "trialing", "past_due", "incomplete", "unpaid"})

# Step retries on top of each connector's own (which already retried 5xx / 429 in-call): a step is re-run
# only for errors that may get better (`transient`: not drift, not a 4xx refusal).
STEP_RETRY: dict[str, Any] = {"retries_allowed": True, "max_attempts": 3, "interval_seconds": 0.2,
                              "backoff_rate": 2.0, "should_retry": transient}


# -- idempotency keys ---------------------------------------------------------------------------------------


def idem_key(business_key: str, step: str) -> str:
    """The idempotency key of one write: (business key, step). Stable across retries, recovery and replay."""
    if not business_key or not step:
        raise ValueError("an idempotency key needs a business key and a step")
    key = f"{business_key}:{step}"
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[:MAX_KEY - 72]}~{digest}"


def account_key(canonical_id: str) -> str:
    """Business key of an account's master data (customer / company records), shared by all its deals."""
    return f"account:{canonical_id}"


# -- crosswalk and ownership --------------------------------------------------------------------------------

_override: dict[str, Crosswalk | None] = {"crosswalk": None}


def set_crosswalk(xwalk: Crosswalk | None) -> None:
    """Use this crosswalk instead of the runtime's (unit tests)."""
    _override["crosswalk"] = xwalk


def crosswalk() -> Crosswalk:
    """The process's crosswalk: the launched runtime's (one per process), unless a test set one."""
    if _override["crosswalk"] is not None:
        return _override["crosswalk"]
    from core.runtime import active_runtime

    runtime = active_runtime()
    xwalk = getattr(runtime, "crosswalk", None) if runtime is not None else None
    if xwalk is None:
        raise RuntimeError("no crosswalk: the core runtime is not launched")
    return xwalk


@lru_cache(maxsize=1)
def ownership() -> Ownership:
    return Ownership.load()


def note(system: str, action: str, status: str, detail: str | None = None) -> None:
    """A step of the flow's own in the trace (the connectors already log every HTTP call)."""
    trace.record(system, action, status, detail=detail)


def _record_ignored(ignored: list[IgnoredWrite]) -> None:
    for item in ignored:
        note("core", f"ownership: ignored {item.entity}.{item.field} from {item.system}", "ignored",
             detail=f"owned by {item.owner or 'the core'}; value {item.value!r}"[:500])


def owned(entity: str, system: str, values: Mapping[str, Any], *, own: Ownership | None = None) -> dict[str, Any]:
    """The fields of `values` that `system` owns; the others are ignored and recorded in the trace."""
    accepted, ignored = (own or ownership()).filter_write(entity, system, values)
    _record_ignored(ignored)
    return accepted


def survive(entity: str, candidates: Mapping[str, Mapping[str, Any] | list[Mapping[str, Any]]], *,
            own: Ownership | None = None) -> tuple[dict[str, Any], list[IgnoredWrite]]:
    """Survivorship: one value per field, taken from the field's owning system.

    `candidates`: system -> that system's view (or views, best first: the survivor's own record, then the
    merged-in ones). A field takes the first non-None value its owner offers; values offered by non-owners
    are ignored (returned and recorded)."""
    own = own or ownership()
    out: dict[str, Any] = {}
    ignored_all: list[IgnoredWrite] = []
    for system, views in candidates.items():
        for view in views if isinstance(views, list) else [views]:
            accepted, ignored = own.filter_write(entity, system, {k: v for k, v in view.items() if v is not None})
            ignored_all.extend(ignored)
            for name, value in accepted.items():
                out.setdefault(name, value)
    _record_ignored(ignored_all)
    return out, ignored_all


# -- errors and compensation --------------------------------------------------------------------------------


def unwrap(exc: BaseException) -> BaseException:
    """The connector error behind DBOS's DBOSMaxStepRetriesExceeded (its last attempt), else `exc`."""
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ == "DBOSMaxStepRetriesExceeded" and errors:
        return errors[-1]
    return exc


@dataclass
class Compensation:
    """What a flow undid, in order; recorded in the trace and carried by CompensatedError to the DLQ."""

    undone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class CompensatedError(Exception):
    """The flow failed for good and rolled back its commercial effects; parked in the DLQ with the reason."""

    retryable = False

    def __init__(self, reason: str, compensation: Compensation) -> None:
        done = ", ".join(compensation.undone) or "nothing to undo"
        failed = f"; could NOT undo: {', '.join(compensation.failed)}" if compensation.failed else ""
        super().__init__(f"compensated after: {reason} (undone: {done}{failed})")
        self.reason = reason
        self.compensation = compensation


# -- reference data -----------------------------------------------------------------------------------------

COUNTRY_CURRENCY = {"US": "USD", "GB": "GBP", "CA": "CAD", "AU": "AUD", "JP": "JPY", "BR": "BRL", "CH": "CHF",
                    "SE": "SEK", "DK": "DKK", "PL": "PLN"}
EURO_COUNTRIES = frozenset({"DE", "FR", "NL", "ES", "IT", "IE", "AT", "BE", "FI", "PT", "LU", "GR"})
# The ERP account's subsidiaries (NetSuite OneWorld setup data: a country's customers book in its subsidiary;
# countries without one book in the parent). Subsidiary -> its base currency id.
SUBSIDIARY_BY_COUNTRY = {"US": "1", "GB": "2", "DE": "3", "CA": "4", "AU": "5"}


def currency_for(country: str) -> str:
    """The currency an account in `country` is billed in when billing has not said otherwise."""
    if country in EURO_COUNTRIES:
        return "EUR"
    return COUNTRY_CURRENCY.get(country, "USD")


# -- connector gaps ---------------------------------------------------------------------------------------
# Vendor calls the flows need that the connectors don't offer (yet). Each goes through the connector's own
# request path, so retries, limits, auth, correlation headers and drift checks still apply. Candidates to
# move into core/connectors.


async def crm_raw_record(crm: CrmClient, obj: str, record_id: str) -> dict[str, Any]:
    """A record with every field the org has (custom ones included), unmapped."""
    resp = await crm._call("GET", f"/sobjects/{quote(obj, safe='')}/{quote(record_id, safe='')}")
    data = crm._json(resp, obj)
    if not isinstance(data, dict):
        raise SchemaDriftError("crm", obj, None, "expected an object", pinned=crm.api_version)
    return data


async def billing_preflight(billing: BillingClient) -> None:
    """A canary read before billing writes: the newest subscription of the account, parsed with the pinned
    mapping, then the served version checked. A version switch shows up as SchemaDriftError naming the field
    (or, on an account without subscriptions, the version) before anything is written. (Stripe stores and
    replays a write's first response, so a write answered in the wrong version could never be read back.)"""
    resp = await billing._request("GET", "/v1/subscriptions", params={"limit": 1, "status": "all"})
    page = billing._json(resp, "list")
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        raise SchemaDriftError("billing", "list", "data", "a list response without data", pinned=billing.api_version)
    for row in page["data"]:
        try:
            parse_subscription(row, billing.api_version)
        except SchemaDriftError as exc:
            exc.served = exc.served or response_version(resp)
            raise
    billing.check_served_version(resp, "subscription")


def response_version(resp: Any) -> str | None:
    return resp.headers.get("stripe-version")


async def billing_ensure_product(billing: BillingClient, *, sku: str, name: str) -> str:
    """The product for `sku` (metadata `lockstep_sku`), created once (idempotency key per sku)."""
    resp = await billing._request("GET", "/v1/products", params={"limit": 100})
    billing.check_served_version(resp, "product")
    page = billing._json(resp, "list")
    for row in page.get("data", []) if isinstance(page, dict) else []:
        if isinstance(row, dict) and (row.get("metadata") or {}).get("lockstep_sku") == sku:
            return str(row["id"])
    resp = await billing._post("/v1/products", {"name": name, "metadata": {"lockstep_sku": sku}},
                               key=f"lockstep:{sku}", operation="product.create")
    product = billing._json(resp, "product")
    if not isinstance(product, dict) or not isinstance(product.get("id"), str):
        raise SchemaDriftError("billing", "product", "id", "is missing from the response", pinned=billing.api_version)
    return product["id"]


async def billing_ensure_price(billing: BillingClient, *, product: str, currency: str, unit_amount: int,
                               interval: str) -> str:
    """A recurring price, found by its lookup key (product, currency, amount, interval) or created once."""
    lookup = f"lockstep:{product}:{currency.lower()}:{unit_amount}:{interval}"
    resp = await billing._request("GET", "/v1/prices", params={"lookup_keys[0]": lookup, "limit": 1})
    billing.check_served_version(resp, "price")
    page = billing._json(resp, "list")
    rows = page.get("data") if isinstance(page, dict) else None
    if rows:
        return str(rows[0]["id"])
    resp = await billing._post("/v1/prices", {"product": product, "currency": currency.lower(),
                                              "unit_amount": unit_amount, "recurring": {"interval": interval},
                                              "lookup_key": lookup}, key=lookup, operation="price.create")
    price = billing._json(resp, "price")
    if not isinstance(price, dict) or not isinstance(price.get("id"), str):
        raise SchemaDriftError("billing", "price", "id", "is missing from the response", pinned=billing.api_version)
    return price["id"]


async def billing_list_subscriptions(billing: BillingClient, customer_id: str) -> list[dict[str, Any]]:
    """Every subscription of a customer (any status), raw (ids, status, metadata, items)."""
    resp = await billing._request("GET", "/v1/subscriptions",
                                  params={"customer": customer_id, "status": "all", "limit": 100})
    billing.check_served_version(resp, "subscription")
    page = billing._json(resp, "list")
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        raise SchemaDriftError("billing", "list", "data", "a list response without data", pinned=billing.api_version)
    return [row for row in page["data"] if isinstance(row, dict)]


async def billing_cancel_subscription(billing: BillingClient, subscription_id: str, *, comment: str) -> str:
    """Cancels now (DELETE is idempotent on Stripe's side: an already canceled one is left as it is)."""
    try:
        resp = await billing._request("DELETE", f"/v1/subscriptions/{quote(subscription_id, safe='')}",
                                      data={"cancellation_details[comment]": comment[:500]})
    except NotFoundError:
        return "missing"
    data = billing._json(resp, "subscription")
    return str(data.get("status")) if isinstance(data, dict) else "?"


async def erp_delete_sales_order(erp: ErpClient, record_id: str) -> bool:
    """Deletes an unbilled order (the REST record service cannot set an order's status; cancelling is a
    UI action). False when it was already gone."""
    try:
        await erp._request("DELETE", f"{RECORD}/salesOrder/{quote(record_id, safe=':')}")
    except NotFoundError:
        return False
    return True


async def erp_update_record(erp: ErpClient, record_type: str, record_id: str, body: Mapping[str, Any]) -> None:
    """An absolute PATCH of some fields (safe to repeat)."""
    await erp._request("PATCH", f"{RECORD}/{record_type}/{quote(record_id, safe=':')}", json=dict(body), safe=True)


async def erp_sales_orders_of(erp: ErpClient, customer_id: str) -> list[str]:
    """Internal ids of the customer's sales orders."""
    resp = await erp._request("GET", f"{RECORD}/salesOrder", params={"q": f"entity ANY_OF [{customer_id}]",
                                                                    "limit": 1000})
    data = erp._json(resp, "salesOrder")
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise SchemaDriftError("erp", "salesOrder", "items", "a list response without items", pinned=erp.api_version)
    return [str(row["id"]) for row in items if isinstance(row, dict) and "id" in row]


async def cs_company_by_gsid(cs: CsClient, gsid: str) -> dict[str, Any]:
    query = {"select": ["Gsid", "Name", "ExternalId", "Status", "ARR"], "limit": 2, "offset": 0,
             "where": {"conditions": [{"name": "Gsid", "operator": "EQ", "value": [gsid]}]}}
    resp = await cs._request("POST", "/v1/data/objects/query/Company", json=query, safe=True)
    data = cs._data(resp, "company")
    rows = data.get("records") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise SchemaDriftError("cs", "company", "records", "the response has no records list", pinned=cs.api_version)
    if not rows:
        raise NotFoundError("cs", 404, "GS_3004", f"no Company {gsid!r}")
    return rows[0]


async def cs_update_company_by_gsid(cs: CsClient, gsid: str, fields: Mapping[str, Any]) -> None:
    """Updates raw fields of the company with this Gsid (`PUT ...?keys=Gsid`: absolute, repeatable)."""
    body = {"records": [{"Gsid": gsid, **fields}]}
    resp = await cs._request("PUT", "/v1/data/objects/Company", params={"keys": "Gsid"}, json=body)
    cs._data(resp, "company")
