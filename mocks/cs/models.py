"""CS state of one tenant and the company / person / timeline rules. Knows no HTTP.

Records are plain dicts keyed by internal field names (API v1 wire names). Ids are Gainsight-style GSIDs
(36 characters, a 4-character object prefix + 32 upper-case alphanumerics) drawn from the tenant RNG, so a
seeded tenant always produces the same ids. Time is the tenant's sandbox clock.

Scorecards live in `health.py`, CTAs and success plans in `cockpit.py`; both work on this state.
"""

from __future__ import annotations

import zlib
from typing import Any

from mocks.cs import cockpit, health
from mocks.cs.errors import DUPLICATE, INVALID_FIELD, INVALID_GSID, INVALID_VALUE, NOT_FOUND, REQUIRED, CSError
from mocks.cs.events import EventSink
from mocks.cs.fields import (
    ACTIVITY_FIELDS,
    COMPANY_FIELDS,
    DAY,
    PERSON_FIELDS,
    clean,
    date_ts,
    iso_date,
    iso_datetime,
)

__all__ = ["GSID_PREFIX", "CSState"]

Record = dict[str, Any]
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
GSID_PREFIX = {"company": "1P02", "person": "1C01", "activity": "1I00", "cta": "1S01", "plan": "1S02",
               "milestone": "1S03"}
RENEWAL_LEAD_DAYS = 90
COLLECTIONS = ("companies", "persons", "activities", "ctas", "plans", "scorecards")


class CSState:
    def __init__(self, tenant: Any) -> None:
        self.tenant = tenant
        self.events = EventSink(tenant)
        self.companies: dict[str, Record] = {}
        self.persons: dict[str, Record] = {}
        self.activities: dict[str, Record] = {}
        self.ctas: dict[str, Record] = {}
        self.plans: dict[str, Record] = {}
        self.scorecards: dict[str, Record] = {}  # company Gsid -> {"measures": {...}, "history": [...]}
        self.request_seq = 0
        self._reindex()

    # ---- plumbing --------------------------------------------------------------------------------
    @property
    def clock(self) -> Any:
        return self.tenant.clock  # the tenant swaps its clock on reset / restore

    def now_iso(self) -> str:
        return iso_datetime(self.clock.now())

    def today(self) -> str:
        return iso_date(self.clock.now())

    def new_gsid(self, kind: str) -> str:
        taken = (self.companies, self.persons, self.activities, self.ctas, self.plans, self.milestone_plan)
        while True:
            gsid = GSID_PREFIX[kind] + "".join(self.tenant.rng.choices(ALPHABET, k=32))
            if not any(gsid in c for c in taken):
                return gsid

    def next_request_id(self) -> str:
        self.request_seq += 1
        return f"{self.request_seq:08x}-{zlib.crc32(self.tenant.key.encode()) & 0xFFFF:04x}-4000-8000-" \
               f"{self.request_seq:012x}"

    def emit(self, event_type: str, data: Record, objects: dict[str, tuple[str, Record]] | None = None) -> None:
        self.events.emit(event_type, data, objects=objects, occurred_at=self.now_iso())

    def _reindex(self) -> None:
        self.company_by_ext = {c["ExternalId"]: g for g, c in self.companies.items() if c.get("ExternalId")}
        self.person_by_email = {p["Email"].lower(): g for g, p in self.persons.items()}
        self.activity_by_ext = {a["ExternalId"]: g for g, a in self.activities.items() if a.get("ExternalId")}
        self.milestone_plan = {m["Gsid"]: pid for pid, p in self.plans.items() for m in p["Milestones"]}

    def dump(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in COLLECTIONS},
                "request_seq": self.request_seq, "event_seq": self.events.seq}

    def load(self, data: dict[str, Any]) -> None:
        for name in COLLECTIONS:
            setattr(self, name, {k: dict(v) for k, v in data.get(name, {}).items()})
        self.request_seq = int(data.get("request_seq", 0))
        self.events.seq = int(data.get("event_seq", 0))
        self._reindex()

    def run_job(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "milestone_due":
            cockpit.milestone_due(self, payload["milestone"])
        elif kind == "renewal_reminder":
            cockpit.renewal_reminder(self, payload["company"])

    # ---- companies -------------------------------------------------------------------------------
    def company(self, gsid: Any) -> Record:
        if not isinstance(gsid, str) or not gsid:
            raise CSError(INVALID_GSID, "Either the Gainsight ID is invalid or missing, please re-check your "
                                        "request.", field="Gsid")
        company = self.companies.get(gsid)
        if company is None:
            raise CSError(NOT_FOUND, f"No Company record with Gsid {gsid}", 404)
        return company

    def company_ref(self, gsid: Any, field: str = "CompanyId") -> str:
        """A company reference in a write: it must name an existing company (400, not 404)."""
        if gsid not in self.companies:
            raise CSError(INVALID_VALUE, f"Invalid lookup ({field} = {gsid}): no such Company", field=field)
        return gsid

    def insert_companies(self, rows: list[Record]) -> list[Record]:
        """All or nothing: every row is checked before any is stored (Gainsight's insert semantics)."""
        cleaned = [clean(COMPANY_FIELDS, row, required=("Name",), obj="Company") for row in rows]
        seen: set[str] = set()
        for row in cleaned:
            ext = row.get("ExternalId")
            if ext and (ext in self.company_by_ext or ext in seen):
                raise CSError(DUPLICATE, f"Duplicate value for unique field (ExternalId = {ext})", field="ExternalId")
            if ext:
                seen.add(ext)
        return [{"Gsid": self._create_company(row)["Gsid"]} for row in cleaned]

    def upsert_companies(self, rows: list[Record], keys: list[str], *, insert_missing: bool) -> list[Record]:
        """Match each row on `keys` (all must be equal); update matches, insert (or refuse) the rest."""
        for key in keys:
            spec = COMPANY_FIELDS.get(key)
            if spec is None or (not spec[1] and key != "Gsid"):
                raise CSError(INVALID_FIELD, f"Invalid key field ({key}); keys must be writable Company fields "
                                             "or Gsid", field=key)
        plan: list[tuple[str | None, Record]] = []
        claimed: set[str] = set()
        for index, row in enumerate(rows):
            missing = [k for k in keys if row.get(k) in (None, "")]
            if missing:
                raise CSError(REQUIRED, f"Record {index}: key field {missing[0]} is required", field=missing[0])
            gsid = self._match(row, keys)
            body = {k: v for k, v in row.items() if k != "Gsid"}
            if gsid is None and not insert_missing:
                raise CSError(NOT_FOUND, f"Record {index}: no Company matches keys {keys}", 404)
            cleaned = clean(COMPANY_FIELDS, body, required=() if gsid else ("Name",), obj="Company")
            ext = cleaned.get("ExternalId")
            owner = self.company_by_ext.get(ext) if ext else None
            if ext and ((owner is not None and owner != gsid) or ext in claimed):
                raise CSError(DUPLICATE, f"Duplicate value for unique field (ExternalId = {ext})", field="ExternalId")
            if ext:
                claimed.add(ext)
            plan.append((gsid, cleaned))
        out = []
        for gsid, cleaned in plan:
            if gsid is None:
                out.append({"Gsid": self._create_company(cleaned)["Gsid"], "action": "inserted"})
            else:
                self.update_company(gsid, cleaned, checked=True)
                out.append({"Gsid": gsid, "action": "updated"})
        return out

    def _match(self, row: Record, keys: list[str]) -> str | None:
        if keys == ["ExternalId"]:
            return self.company_by_ext.get(row["ExternalId"])
        if keys == ["Gsid"]:
            gsid = row["Gsid"]
            if gsid not in self.companies:
                raise CSError(INVALID_GSID, f"Either the Gainsight ID is invalid or missing ({gsid})", field="Gsid")
            return gsid
        hits = [g for g, c in self.companies.items() if all(c.get(k) == row[k] for k in keys)]
        if len(hits) > 1:
            raise CSError(INVALID_VALUE, f"More than one Company matches keys {keys}; use unique keys")
        return hits[0] if hits else None

    def _create_company(self, row: Record) -> Record:
        now = self.now_iso()
        company = {name: None for name in COMPANY_FIELDS}
        company.update({"Stage": "Kick Off", "Status": "Active"})
        company.update(row)
        company.update({"Gsid": self.new_gsid("company"), "CreatedDate": now, "ModifiedDate": now})
        if company["Stage"] == "Churned":
            company["Status"] = "Inactive"
        self.companies[company["Gsid"]] = company
        if company.get("ExternalId"):
            self.company_by_ext[company["ExternalId"]] = company["Gsid"]
        self._schedule_renewal(company)
        self.emit("company.created", {}, {"company": ("company", company)})
        return company

    def update_company(self, gsid: str, changes: Record, *, checked: bool = False) -> list[str]:
        """Applies a write; returns the fields that changed (and emits company.updated if any did)."""
        company = self.company(gsid)
        if not checked:
            changes = clean(COMPANY_FIELDS, changes, obj="Company")
        if changes.get("Name", 1) in (None, ""):
            raise CSError(REQUIRED, "Invalid field value (Name = null): Name is required", field="Name")
        if changes.get("Stage") == "Churned":
            changes = {**changes, "Status": "Inactive"}
        ext = changes.get("ExternalId")
        if ext and self.company_by_ext.get(ext, gsid) != gsid:
            raise CSError(DUPLICATE, f"Duplicate value for unique field (ExternalId = {ext})", field="ExternalId")
        changed = [k for k, v in changes.items() if company.get(k) != v]
        if not changed:
            return []
        if "ExternalId" in changed:
            self.company_by_ext.pop(company.get("ExternalId"), None)
            if ext:
                self.company_by_ext[ext] = gsid
        for k in changed:
            company[k] = changes[k]
        company["ModifiedDate"] = self.now_iso()
        if "RenewalDate" in changed:
            self._schedule_renewal(company)
        self.emit("company.updated", {"changedFields": changed}, {"company": ("company", company)})
        return changed

    def delete_company(self, gsid: str) -> None:
        company = self.company(gsid)
        del self.companies[gsid]
        self.company_by_ext.pop(company.get("ExternalId"), None)
        self.clock.cancel(f"renewal:{gsid}")
        for pid in [p for p, plan in self.plans.items() if plan["CompanyId"] == gsid]:
            for m in self.plans.pop(pid)["Milestones"]:
                self.milestone_plan.pop(m["Gsid"], None)
                self.clock.cancel(f"milestone:{m['Gsid']}")
        for cid in [c for c, cta in self.ctas.items() if cta["CompanyId"] == gsid]:
            del self.ctas[cid]
        for aid in [a for a, act in self.activities.items() if act["CompanyId"] == gsid]:
            self.activity_by_ext.pop(self.activities.pop(aid).get("ExternalId"), None)
        for person in self.persons.values():
            if person.get("CompanyId") == gsid:
                person["CompanyId"] = None
        self.scorecards.pop(gsid, None)
        self.emit("company.deleted", {"companyId": gsid, "externalId": company.get("ExternalId")})

    def _schedule_renewal(self, company: Record) -> None:
        key = f"renewal:{company['Gsid']}"
        self.clock.cancel(key)
        renewal = company.get("RenewalDate")
        if not renewal:
            return
        due = date_ts(renewal)
        if due <= self.clock.now():
            return
        at = max(self.clock.now(), due - RENEWAL_LEAD_DAYS * DAY)
        self.clock.schedule(at, "renewal_reminder", {"company": company["Gsid"]}, key=key)

    # ---- people ----------------------------------------------------------------------------------
    def upsert_person(self, row: Record) -> tuple[Record, bool]:
        """Gainsight's Person API: one person, matched on Email (case-insensitive)."""
        cleaned = clean(PERSON_FIELDS, row, required=("Email",), obj="Person")
        if cleaned.get("CompanyId") is not None:
            self.company_ref(cleaned["CompanyId"])
        now = self.now_iso()
        gsid = self.person_by_email.get(cleaned["Email"].lower())
        created = gsid is None
        if created:
            person = {name: None for name in PERSON_FIELDS}
            person.update({"Gsid": self.new_gsid("person"), "CreatedDate": now})
            self.persons[person["Gsid"]] = person
            self.person_by_email[cleaned["Email"].lower()] = person["Gsid"]
        else:
            person = self.persons[gsid]
        person.update(cleaned)
        person["Name"] = " ".join(p for p in (person.get("FirstName"), person.get("LastName")) if p) or None
        person["ModifiedDate"] = now
        return person, created

    def delete_person(self, gsid: str) -> None:
        person = self.persons.pop(gsid, None)
        if person is None:
            raise CSError(NOT_FOUND, f"No Person record with Gsid {gsid}", 404)
        self.person_by_email.pop(person["Email"].lower(), None)

    # ---- timeline --------------------------------------------------------------------------------
    def log_activity(self, row: Record) -> tuple[Record, bool]:
        """Creates an activity; a known ExternalId updates that activity instead (dedupe)."""
        ext = row.get("ExternalId")
        existing = self.activity_by_ext.get(ext) if isinstance(ext, str) and ext else None
        required = () if existing else ("Subject", "TypeName", "CompanyId")
        cleaned = clean(ACTIVITY_FIELDS, row, required=required, obj="Activity")
        if cleaned.get("CompanyId") is not None or "CompanyId" in row:
            self.company_ref(cleaned.get("CompanyId"))
        now = self.now_iso()
        if existing:
            activity = self.activities[existing]
            activity.update({k: v for k, v in cleaned.items() if v is not None})
            activity["ModifiedDate"] = now
            return activity, False
        activity = {name: None for name in ACTIVITY_FIELDS}
        activity.update(cleaned)
        activity.update({"Gsid": self.new_gsid("activity"), "CreatedDate": now, "ModifiedDate": now})
        activity["ActivityDate"] = activity["ActivityDate"] or now
        self.activities[activity["Gsid"]] = activity
        if activity.get("ExternalId"):
            self.activity_by_ext[activity["ExternalId"]] = activity["Gsid"]
        return activity, True

    def activity(self, gsid: str) -> Record:
        activity = self.activities.get(gsid)
        if activity is None:
            raise CSError(NOT_FOUND, f"No timeline activity with id {gsid}", 404)
        return activity

    def timeline(self, company_id: str | None, limit: int, offset: int) -> list[Record]:
        rows = [a for a in self.activities.values() if company_id is None or a["CompanyId"] == company_id]
        rows.sort(key=lambda a: (a["ActivityDate"], a["CreatedDate"]), reverse=True)
        return rows[offset:offset + limit]

    # ---- scorecards (health.py) ------------------------------------------------------------------
    def set_measures(self, company_id: str, updates: list[Record]) -> Record:
        return health.set_measures(self, company_id, updates)
