"""Sandbox-only entry points: seeding (demo data from the tenant's seeded RNG, or explicit records) and
"user actions" — what a person does in the Salesforce UI (merge, close an opportunity, edit a field,
undelete from the recycle bin, declare a custom field).

Seeding is fixture setup: it emits no change events unless the body says {"emit_events": true}.
Control-API errors: bad input -> 400 (ValueError), unknown records -> 404.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from mocks.crm.errors import CrmError
from mocks.crm.events import UI_ORIGIN
from mocks.crm.schema import INDUSTRIES, OBJECTS, STAGE_NAMES

if TYPE_CHECKING:
    from mocks.crm.models import CrmState
    from mocks.kernel.tenants import Tenant

__all__ = ["run_action", "seed"]

_FIRST = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia",
          "Tim", "Katherine", "John", "Sophie", "Niklaus", "Hedy", "Vint", "Annie", "Donald")
_LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen",
         "Dijkstra", "Perlman", "Berners-Lee", "Johnson", "McCarthy", "Wilson", "Wirth", "Lamarr", "Cerf",
         "Easley", "Knuth")
_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne",
          "Soylent", "Vandelay", "Aperture", "Massive", "Pied Piper", "Gringotts", "Oceanic", "Monarch", "Virtucon",
          "Nakatomi")
_SUFFIX = ("Inc", "LLC", "Group", "Corp", "Holdings", "Labs", "Systems", "Partners", "GmbH", "Ltd")
_COUNTRIES = ("United States", "Germany", "United Kingdom", "France", "Canada", "Japan", "Australia", "Brazil")
_OPEN_STAGES = STAGE_NAMES[:8]


@contextlib.contextmanager
def _quiet(state: CrmState, emit: bool) -> Iterator[None]:
    before = state.events.enabled
    state.events.enabled = emit
    try:
        yield
    finally:
        state.events.enabled = before


def _today(tenant: Tenant) -> date:
    return datetime.fromtimestamp(tenant.clock.now(), UTC).date()


def _demo(tenant: Tenant, spec: dict[str, Any]) -> dict[str, int]:
    state: CrmState = tenant.state  # type: ignore[assignment]
    rng = tenant.rng
    n_accounts = int(spec.get("accounts", 30))
    per_contacts = int(spec.get("contacts_per_account", 2))
    per_opps = int(spec.get("opportunities_per_account", 1))
    n_leads = int(spec.get("leads", 10))
    if not (0 <= n_accounts <= 100_000 and 0 <= per_contacts <= 20 and 0 <= per_opps <= 20 and 0 <= n_leads <= 10_000):
        raise ValueError("demo sizes: accounts 0..100000, contacts/opportunities per account 0..20, leads 0..10000")
    today = _today(tenant)
    counts = {"Account": 0, "Contact": 0, "Opportunity": 0, "Lead": 0}
    for i in range(n_accounts):
        company = f"{rng.choice(_WORDS)} {rng.choice(_SUFFIX)}"
        domain = company.lower().replace(" ", "") + ".example.com"
        account = state._insert("Account", {
            "Name": f"{company} {i + 1}" if n_accounts > len(_WORDS) else company,
            "Industry": rng.choice(INDUSTRIES), "BillingCountry": rng.choice(_COUNTRIES),
            "AnnualRevenue": float(rng.randrange(1, 500) * 100_000), "NumberOfEmployees": rng.randrange(5, 20_000),
            "Website": f"https://www.{domain}", "Type": rng.choice(("Prospect", "Customer - Direct")),
            "External_Id__c": f"EXT-{i + 1:06d}", "Health_Score__c": float(rng.randrange(20, 100)),
            "Renewal_Date__c": (today + timedelta(days=rng.randrange(30, 400))).isoformat(),
            "AR_Balance__c": 0.0,
        }, None)
        counts["Account"] += 1
        for _ in range(per_contacts):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            state._insert("Contact", {
                "AccountId": account["Id"], "FirstName": first, "LastName": last,
                "Email": f"{first.lower()}.{last.lower()}@{domain}", "Title": rng.choice(("CEO", "CFO", "VP Sales",
                                                                                         "IT Director", "Buyer")),
            }, None)
            counts["Contact"] += 1
        for _ in range(per_opps):
            state._insert("Opportunity", {
                "AccountId": account["Id"], "Name": f"{company} - {rng.choice(('New Business', 'Renewal', 'Upsell'))}",
                "StageName": rng.choice(_OPEN_STAGES), "Amount": float(rng.randrange(5, 500) * 1000),
                "CloseDate": (today + timedelta(days=rng.randrange(7, 180))).isoformat(),
            }, None)
            counts["Opportunity"] += 1
    for _ in range(n_leads):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        state._insert("Lead", {"FirstName": first, "LastName": last,
                               "Company": f"{rng.choice(_WORDS)} {rng.choice(_SUFFIX)}",
                               "Email": f"{first.lower()}@lead.example.com", "Status": "Open - Not Contacted"}, None)
        counts["Lead"] += 1
    return counts


def _explicit(state: CrmState, records: dict[str, Any]) -> dict[str, list[str]]:
    """{"Account": [{"@ref": "acme", "Name": ...}], "Contact": [{"AccountId": "@acme", ...}]}, in that order."""
    refs: dict[str, str] = {}
    created: dict[str, list[str]] = {}
    for obj_name, rows in records.items():
        obj = state.object_name(obj_name)
        if obj is None or not isinstance(rows, list):
            raise ValueError(f"records: unknown object {obj_name!r} or not a list")
        for row in rows:
            if not isinstance(row, dict):
                raise ValueError(f"records.{obj}: each record must be an object")
            body = {k: (refs[v[1:]] if isinstance(v, str) and v.startswith("@") and v[1:] in refs else v)
                    for k, v in row.items() if k != "@ref"}
            record = state.create(obj, body)
            created.setdefault(obj, []).append(record["Id"])
            if "@ref" in row:
                refs[str(row["@ref"])] = record["Id"]
    return created


def _crm_errors(call: Any) -> Any:
    try:
        return call()
    except CrmError as exc:
        raise HTTPException(exc.status, f"{exc.code}: {exc.message}") from exc


def seed(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """{"custom_fields": {"Account": [{"name": "Tier__c", "type": "picklist", ...}]},
        "demo": true | {"accounts": 30, "contacts_per_account": 2, "opportunities_per_account": 1, "leads": 10},
        "records": {...explicit...}, "emit_events": false}. An empty body seeds the default demo."""
    state: CrmState = tenant.state  # type: ignore[assignment]
    out: dict[str, Any] = {}
    declared = []
    for obj, specs in (body.get("custom_fields") or {}).items():
        for spec in specs:
            declared.append(f"{obj}.{state.declare_field(obj, spec).name}")
    if declared:
        out["custom_fields"] = declared
    demo = body.get("demo", not body)
    with _quiet(state, bool(body.get("emit_events", False))):
        if demo:
            out["demo"] = _demo(tenant, demo if isinstance(demo, dict) else {})
        if body.get("records"):
            out["created"] = _crm_errors(lambda: _explicit(state, body["records"]))
    out["totals"] = {obj: sum(1 for r in state.records[obj].values() if not r["IsDeleted"]) for obj in OBJECTS}
    return out


def _need(body: dict[str, Any], *keys: str) -> list[Any]:
    missing = [k for k in keys if body.get(k) in (None, "")]
    if missing:
        raise ValueError(f"action {body.get('action')!r} needs {missing}")
    return [body[k] for k in keys]


def _object(state: CrmState, name: Any) -> str:
    obj = state.object_name(str(name))
    if obj is None:
        raise ValueError(f"unknown object {name!r}; known: {sorted(OBJECTS)}")
    return obj


def run_action(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    state: CrmState = tenant.state  # type: ignore[assignment]
    kind = body.get("action")
    if kind == "merge":
        obj, master, losers = _need(body, "object", "master", "losers")
        take = body.get("take") or {}
        if not isinstance(take, dict):
            raise ValueError("take must map field names to the id of the merged record to take them from")
        return _crm_errors(lambda: state.merge(obj, master, losers, take))
    if kind == "close_opportunity":
        (opp_id,) = _need(body, "id")
        won = body.get("won", True)
        if not isinstance(won, bool):
            raise ValueError("won must be true or false")
        record = _crm_errors(lambda: state.close_opportunity(opp_id, won))
        return {"id": record["Id"], "StageName": record["StageName"], "IsClosed": record["IsClosed"],
                "IsWon": record["IsWon"]}
    if kind == "edit":
        obj_name, rid, fields = _need(body, "object", "id", "fields")
        obj = _object(state, obj_name)
        changed = _crm_errors(lambda: state.update(obj, rid, fields, origin=UI_ORIGIN))
        return {"id": state.get(obj, rid)["Id"], "changedFields": changed}
    if kind == "delete":
        obj_name, rid = _need(body, "object", "id")
        return {"deleted": _crm_errors(lambda: state.delete(_object(state, obj_name), rid, origin=UI_ORIGIN))}
    if kind == "undelete":
        obj_name, rid = _need(body, "object", "id")
        return {"undeleted": _crm_errors(lambda: state.undelete(_object(state, obj_name), rid, origin=UI_ORIGIN))}
    if kind == "declare_field":
        obj_name, spec = _need(body, "object", "field")
        f = state.declare_field(str(obj_name), spec)
        return {"declared": f.describe()}
    raise ValueError(f"unknown action {kind!r}; known: merge, close_opportunity, edit, delete, undelete, "
                     "declare_field")
