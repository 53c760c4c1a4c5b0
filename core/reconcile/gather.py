"""Reading what each system says about each canonical account, through the connectors (async, bounded).

- `account_ids(crosswalk)`: the surviving canonical accounts (merged-away ids are read through their survivor).
- `read_account(...)`: every linked native record of one account, the four systems concurrently, each mapped to
  a `Snapshot` of canonical account fields. A native id the system answers 404 for (or shows as deleted /
  merged away) is *gone*; any other failure (drift, 5xx, spent limits) is a `ReadError`, never a finding.
- `scan_claims(...)`: each system's account list (CRM Accounts, ERP customers, billing customers, CS
  companies), bounded per system, for records carrying a canonical account id (CRM `External_Id__c`, ERP
  `externalId` (`lockstep-<id>` or the bare id), Stripe `metadata.lockstep_account` or `metadata.canonical_id`,
  Gainsight `ExternalId`), each classified against the crosswalk.

What each system can say about an account (canonical fields; the owner of each is in core/ownership.yaml):
  crm      name, domain, industry, country, status (at_risk | active), health_score, renewal_date
  erp      name (companyName), legal_name, country (tax registration), currency, billing_email (email),
           tax_registration, credit_hold (on hold now), status (inactive -> churned, else not churned)
  billing  name, billing_email, currency, status (delinquent -> at_risk), arr, renewal_date
  cs       name, arr (major units, in the account's billing currency), renewal_date, health_score,
           status (Inactive -> churned, Active -> active or at_risk)
ARR (billing's word) is the yearly value of the customer's live subscriptions — status active, trialing or
past_due — sum of unit amount x quantity, x12 for monthly prices; renewal_date is the latest current period
end (UTC day) among them. With no live subscription billing says ARR 0 and no renewal date. After a merge the
subscriptions of billing customers merged into the account (crosswalk aliases) count too.

The connectors have no list / by-Gsid calls yet, so the few reads they lack are made here with the client's own
request path (`_request`: auth, limits, retries, error typing) and parsed with the connectors' pinned mappings,
so drift is still caught by the same code.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from core.connectors import BillingClient, ConnectorError, CrmClient, CsClient, ErpClient, NotFoundError
from core.connectors.mapping.billing import parse_customer, parse_subscription
from core.connectors.mapping.common import major_to_money
from core.connectors.mapping.cs import parse_company
from core.crosswalk import Crosswalk, UnknownCanonicalIdError
from core.model import AccountStatus, BillingInterval, Money, SubscriptionStatus
from core.model.ids import id_pattern
from core.reconcile.compare import ENTITY, Claim, OneOf, Snapshot
from core.reconcile.model import ReadError

__all__ = [
    "CANONICAL_ACCOUNT",
    "DEFAULT_SCAN_LIMIT",
    "LIVE_SUBSCRIPTIONS",
    "AccountRead",
    "Scan",
    "account_ids",
    "classify_claims",
    "read_account",
    "scan_claims",
]

CANONICAL_ACCOUNT = re.compile(id_pattern(ENTITY))
CLAIM = re.compile(r"^(?:[A-Za-z0-9_.]*[-:])?(" + id_pattern(ENTITY).strip("^$") + r")$")
# Stripe metadata keys holding the canonical account id (the flows write `lockstep_account`).
BILLING_CLAIM_KEYS = ("lockstep_account", "canonical_id")
DEFAULT_SCAN_LIMIT = 5_000
LIVE_SUBSCRIPTIONS = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE})
NOT_CHURNED = OneOf.of(AccountStatus.PROSPECT, AccountStatus.ACTIVE, AccountStatus.AT_RISK)
LIVE = OneOf.of(AccountStatus.ACTIVE, AccountStatus.AT_RISK)
SUITEQL = "/services/rest/query/v1/suiteql"
CS_PAGE = 50
PAGE = 100


class _Gone(Exception):
    """The linked native record does not exist (404, deleted, merged away)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


# ---- the crosswalk side ---------------------------------------------------------------------------------


def account_ids(crosswalk: Crosswalk) -> list[str]:
    """Surviving canonical account ids, in id (= minting time) order."""
    return crosswalk.survivors(ENTITY)


# ---- per-system reads -------------------------------------------------------------------------------------


def _domain(website: str | None) -> str | None:
    if not website:
        return None
    host = website.split("://", 1)[-1].split("/", 1)[0]
    return host.removeprefix("www.") or None


async def _read_crm(c: CrmClient, native_id: str) -> Snapshot:
    try:
        acc = await c.get_account(native_id)
    except NotFoundError as exc:
        raise _Gone(f"crm answers 404 for Account {native_id!r}") from exc
    if acc.is_deleted:
        into = f", merged into {acc.master_record_id}" if acc.master_record_id else ""
        raise _Gone(f"crm Account {native_id!r} is deleted{into}")
    return Snapshot("crm", acc.id, {
        "name": acc.name, "domain": _domain(acc.website), "industry": acc.industry, "country": acc.country_code(),
        "status": AccountStatus.AT_RISK if acc.at_risk else AccountStatus.ACTIVE,
        "health_score": int(acc.health_score) if acc.health_score is not None else None,
        "renewal_date": acc.renewal_date,
    })


async def _read_erp(c: ErpClient, native_id: str) -> Snapshot:
    try:
        cust = await c.get_customer(native_id)
    except NotFoundError as exc:
        raise _Gone(f"erp answers 404 for customer {native_id!r}") from exc
    return Snapshot("erp", cust.id, {
        "name": cust.company_name, "legal_name": cust.legal_name, "country": cust.tax_country,
        "currency": cust.currency, "billing_email": cust.email, "tax_registration": cust.tax_number,
        "credit_hold": cust.on_credit_hold, "status": AccountStatus.CHURNED if cust.inactive else NOT_CHURNED,
    })


def billing_arr(subscriptions: Iterable[Any], currency: str) -> tuple[Money, date | None]:
    """ARR and renewal date of a customer's subscriptions (see the module docstring)."""
    total = 0
    renewal: date | None = None
    for sub in subscriptions:
        if sub.status not in LIVE_SUBSCRIPTIONS or sub.currency != currency:
            continue
        for item in sub.items:
            per_year = 12 if item.interval is BillingInterval.MONTH else 1
            total += item.unit_amount * item.quantity * per_year
        end = sub.current_period_end.astimezone(UTC).date()
        renewal = end if renewal is None or end > renewal else renewal
    return Money(amount_minor=total, currency=currency), renewal


async def _billing_subscriptions(c: BillingClient, customer_id: str, bound: int = 1_000) -> list[Any]:
    out: list[Any] = []
    after: str | None = None
    while len(out) < bound:
        params = {"customer": customer_id, "status": "all", "limit": PAGE}
        if after:
            params["starting_after"] = after
        resp = await c._request("GET", "/v1/subscriptions", params=params)
        page = c._json(resp, "list")
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise ValueError("billing: a subscription list without data")
        out.extend(parse_subscription(row, c.api_version) for row in page["data"])
        c.check_served_version(resp, "subscription")
        if not page.get("has_more") or not page["data"]:
            break
        after = out[-1].id
    return out


async def _read_billing(c: BillingClient, native_id: str, merged_in: Iterable[str] = ()) -> Snapshot:
    try:
        resp = await c._request("GET", f"/v1/customers/{quote(native_id, safe='')}")
    except NotFoundError as exc:
        raise _Gone(f"billing answers 404 for customer {native_id!r}") from exc
    body = c._json(resp, "customer")
    if isinstance(body, dict) and body.get("deleted") is True:
        raise _Gone(f"billing customer {native_id!r} is deleted")
    cust = parse_customer(body, c.api_version)
    c.check_served_version(resp, "customer")
    subs = await _billing_subscriptions(c, cust.id)
    # After a merge the losers' subscriptions stay on their (merged-in) customers, re-pointed to the survivor:
    # they are the survivor's ARR too.
    for other in merged_in:
        try:
            subs += await _billing_subscriptions(c, other)
        except NotFoundError:
            continue
    currency = cust.currency or next((s.currency for s in subs if s.status in LIVE_SUBSCRIPTIONS), None)
    fields: dict[str, Any] = {"name": cust.name, "billing_email": cust.email, "currency": currency}
    if cust.delinquent:
        fields["status"] = AccountStatus.AT_RISK
    if currency is not None:
        fields["arr"], fields["renewal_date"] = billing_arr(subs, currency)
    return Snapshot("billing", cust.id, fields)


async def _read_cs(c: CsClient, native_id: str) -> Snapshot:
    query = {"select": [], "limit": 2, "offset": 0,
             "where": {"conditions": [{"name": "Gsid", "operator": "EQ", "value": [native_id]}]}}
    resp = await c._request("POST", "/v1/data/objects/query/Company", json=query, safe=True)
    rows = c._records(resp, "company", parse_company)
    if not rows:
        raise _Gone(f"cs has no Company with Gsid {native_id!r}")
    company = rows[0]
    status = {"Inactive": AccountStatus.CHURNED, "Active": LIVE}.get(company.status or "")
    # ARR is in major units of the account's currency, which CS does not carry: `finish_cs` converts it.
    return Snapshot("cs", company.gsid, {"name": company.name, "arr": company.arr, "renewal_date": company.renewal_date,
                                         "health_score": company.health_score, "status": status})


def finish_cs(snapshots: dict[str, Snapshot]) -> None:
    """CS ARR -> Money in the account's billing currency (billing's word, else the ERP's); dropped if unknown."""
    cs = snapshots.get("cs")
    if cs is None or not isinstance(cs.fields.get("arr"), Decimal):
        return
    currency = next((snapshots[s].fields.get("currency") for s in ("billing", "erp")
                     if s in snapshots and snapshots[s].fields.get("currency")), None)
    fields = dict(cs.fields)
    if currency is None:
        fields.pop("arr")
    else:
        fields["arr"] = major_to_money(fields["arr"], currency)
    snapshots["cs"] = Snapshot("cs", cs.native_id, fields)


READERS: dict[str, Callable[[Any, str], Awaitable[Snapshot]]] = {
    "crm": _read_crm, "erp": _read_erp, "billing": _read_billing, "cs": _read_cs,
}


@dataclass
class AccountRead:
    account: str
    linked: dict[str, str]
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    gone: dict[str, str] = field(default_factory=dict)
    gone_why: dict[str, str] = field(default_factory=dict)
    errors: list[ReadError] = field(default_factory=list)

    @property
    def unreadable(self) -> set[str]:
        return {e.system for e in self.errors}


def _read_error(account: str | None, system: str, native_id: str | None, exc: BaseException) -> ReadError:
    return ReadError(account=account, system=system, native_id=native_id, error=type(exc).__name__,
                     message=str(exc)[:500])


async def read_account(connections: Any, account: str, linked: dict[str, str],
                       merged_in: dict[str, list[str]] | None = None) -> AccountRead:
    """Reads every linked record of `account` concurrently (the clients' own limiters pace each vendor).
    `merged_in`: system -> native ids merged into the account (crosswalk aliases that are not primary); only
    billing reads them (their subscriptions count towards the survivor's ARR)."""
    out = AccountRead(account, dict(linked))
    merged_in = merged_in or {}

    async def one(system: str, native_id: str) -> None:
        client = getattr(connections, system)
        try:
            if system == "billing":
                out.snapshots[system] = await _read_billing(client, native_id, merged_in.get("billing", ()))
            else:
                out.snapshots[system] = await READERS[system](client, native_id)
        except _Gone as gone:
            out.gone[system] = native_id
            out.gone_why[system] = gone.why
        except (ConnectorError, ValueError) as exc:  # drift, 5xx, limits, unmappable values: not evidence
            out.errors.append(_read_error(account, system, native_id, exc))

    await asyncio.gather(*(one(s, n) for s, n in linked.items() if s in READERS))
    finish_cs(out.snapshots)
    return out


# ---- orphan scans -------------------------------------------------------------------------------------------


@dataclass
class Scan:
    """Records of one system that carry a canonical account id: (native id, claimed id, name)."""

    system: str
    rows: list[tuple[str, str, str | None]] = field(default_factory=list)
    truncated: bool = False
    error: ReadError | None = None


def _claimed(value: Any) -> str | None:
    """The canonical account id a native external id carries: the id itself, or the id after a prefix
    ending in '-' or ':' (the flows write NetSuite externalIds as `lockstep-<canonical id>`)."""
    if not isinstance(value, str):
        return None
    match = CLAIM.match(value)
    return match.group(1) if match else None


async def _scan_crm(c: CrmClient, limit: int) -> Scan:
    rows = await c.query("SELECT Id, Name, External_Id__c FROM Account WHERE External_Id__c != null",
                         max_records=limit + 1)
    scan = Scan("crm", truncated=len(rows) > limit)
    for r in rows[:limit]:
        if claimed := _claimed(r.get("External_Id__c")):
            scan.rows.append((str(r["Id"]), claimed, r.get("Name")))
    return scan


async def _scan_erp(c: ErpClient, limit: int) -> Scan:
    scan = Scan("erp")
    offset, seen = 0, 0
    body = {"q": "SELECT id, externalid, companyname FROM customer WHERE externalid IS NOT NULL ORDER BY id"}
    while True:
        page_size = min(PAGE, limit - seen)
        resp = await c._request("POST", SUITEQL, params={"limit": page_size, "offset": offset}, json=body,
                                headers={"Prefer": "transient"}, safe=True)
        page = c._json(resp, "suiteql")
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise ValueError("erp: a SuiteQL result without items")
        for r in page["items"]:
            if claimed := _claimed(r.get("externalid")):
                scan.rows.append((str(r["id"]), claimed, r.get("companyname")))
        seen += len(page["items"])
        if not page.get("hasMore") or not page["items"]:
            return scan
        if seen >= limit:
            scan.truncated = True
            return scan
        offset += len(page["items"])


async def _scan_billing(c: BillingClient, limit: int) -> Scan:
    scan = Scan("billing")
    after: str | None = None
    seen = 0
    while True:
        params = {"limit": min(PAGE, limit - seen), **({"starting_after": after} if after else {})}
        resp = await c._request("GET", "/v1/customers", params=params)
        page = c._json(resp, "list")
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise ValueError("billing: a customer list without data")
        for r in page["data"]:
            metadata = r.get("metadata") if isinstance(r.get("metadata"), dict) else {}
            claimed = next((c for k in BILLING_CLAIM_KEYS if (c := _claimed(metadata.get(k)))), None)
            if claimed:
                scan.rows.append((str(r["id"]), claimed, r.get("name")))
        seen += len(page["data"])
        if not page.get("has_more") or not page["data"]:
            return scan
        if seen >= limit:
            scan.truncated = True
            return scan
        after = str(page["data"][-1]["id"])


async def _scan_cs(c: CsClient, limit: int) -> Scan:
    scan = Scan("cs")
    offset = 0
    while True:
        query = {"select": ["Gsid", "ExternalId", "Name"], "limit": min(CS_PAGE, limit - offset), "offset": offset}
        resp = await c._request("POST", "/v1/data/objects/query/Company", json=query, safe=True)
        data = c._data(resp, "company")
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list):
            raise ValueError("cs: a company query without records")
        for r in records:
            if claimed := _claimed(r.get("ExternalId")):
                scan.rows.append((str(r["Gsid"]), claimed, r.get("Name")))
        offset += len(records)
        if len(records) < query["limit"]:
            return scan
        if offset >= limit:
            scan.truncated = True
            return scan


SCANNERS: dict[str, Callable[[Any, int], Awaitable[Scan]]] = {
    "crm": _scan_crm, "erp": _scan_erp, "billing": _scan_billing, "cs": _scan_cs,
}


async def scan_claims(connections: Any, *, limit: int = DEFAULT_SCAN_LIMIT) -> list[Scan]:
    """Every system's account list, concurrently, at most `limit` records each."""

    async def one(system: str) -> Scan:
        try:
            return await SCANNERS[system](getattr(connections, system), limit)
        except (ConnectorError, ValueError, KeyError, TypeError) as exc:
            return Scan(system, error=_read_error(None, system, None, exc))

    return list(await asyncio.gather(*(one(s) for s in SCANNERS)))


def classify_claims(crosswalk: Crosswalk, scans: Iterable[Scan]) -> list[Claim]:
    """Each scanned record against the crosswalk (blocking: run it in a thread)."""
    claims = []
    for scan in scans:
        for native_id, claimed, name in scan.rows:
            linked = crosswalk.lookup(ENTITY, scan.system, native_id)
            try:
                resolved: str | None = crosswalk.resolve(claimed)
            except UnknownCanonicalIdError:
                resolved = None
            if linked is not None and linked == resolved:
                continue
            expected = crosswalk.native(resolved, scan.system) if resolved is not None else None
            claims.append(Claim(scan.system, native_id, claimed, linked, resolved, expected, name))
    return claims
