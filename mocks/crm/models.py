"""One tenant's CRM: records of every sObject, custom field declarations, and the business rules of
create / update / delete / undelete / upsert / merge / close. Knows no HTTP; raises `CrmError`.

Records are plain dicts holding every field of their object (unset fields are None), keyed by 18-character
id. Deleted and merged-away records stay (IsDeleted = true), visible to queryAll only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mocks.crm.errors import CrmError, invalid_field, json_parser_error, not_found
from mocks.crm.events import API_ORIGIN, UI_ORIGIN, ChangeEvents, Transaction
from mocks.crm.ids import new_id, normalize_id
from mocks.crm.query import Cursors
from mocks.crm.schema import OBJECTS, PREFIXES, FieldDef, coerce, custom_field, format_datetime, stage_facts

if TYPE_CHECKING:
    from mocks.kernel.tenants import Tenant

__all__ = ["CrmState", "MultipleMatches"]

Record = dict[str, Any]
SYSTEM_STAMPS = ("LastModifiedDate", "LastModifiedById", "SystemModstamp")


class MultipleMatches(Exception):
    """An upsert or external-id read matched several records (HTTP 300)."""

    def __init__(self, obj: str, ids: list[str]) -> None:
        super().__init__(f"{len(ids)} {obj} records match")
        self.obj = obj
        self.ids = ids


class CrmState:
    def __init__(self, tenant: Tenant, render: Callable[[str, dict[str, Any], str], dict[str, Any]]) -> None:
        self.tenant = tenant
        self.records: dict[str, dict[str, Record]] = {name: {} for name in OBJECTS}
        self.custom_specs: dict[str, list[dict[str, Any]]] = {name: [] for name in OBJECTS}
        self._fields: dict[str, dict[str, FieldDef]] = {}
        self._lower: dict[str, dict[str, FieldDef]] = {}
        self._objects = {name.lower(): name for name in OBJECTS}
        self.user_id = new_id("005", tenant.rng)  # the integration user: owner and author of every change
        self.cursors = Cursors()
        self.events = ChangeEvents(tenant, render)
        self.cascade: dict[str, list[str]] = {}  # parent id -> children deleted along with it

    # ---- schema ---------------------------------------------------------------------------------------
    def object_name(self, name: str) -> str | None:
        return self._objects.get(name.lower())

    def fields(self, obj: str) -> dict[str, FieldDef]:
        cached = self._fields.get(obj)
        if cached is None:
            cached = dict(OBJECTS[obj].fields)
            for spec in self.custom_specs[obj]:
                f = custom_field(spec)
                cached[f.name] = f
            self._fields[obj] = cached
            self._lower[obj] = {n.lower(): f for n, f in cached.items()}
        return cached

    def field(self, obj: str, name: str) -> FieldDef | None:
        if obj not in self._lower:
            self.fields(obj)
        return self._lower[obj].get(name.lower())

    def declare_field(self, obj: str, spec: dict[str, Any]) -> FieldDef:
        canonical = self.object_name(obj)
        if canonical is None:
            raise ValueError(f"unknown object {obj!r}; known: {sorted(OBJECTS)}")
        f = custom_field(spec)
        existing = self.field(canonical, f.name)
        if existing is not None:
            if not existing.custom or existing.type != f.type:
                raise ValueError(f"{canonical}.{f.name} already exists with type {existing.type}")
            return existing
        self.custom_specs[canonical].append(dict(spec))
        self._fields.pop(canonical, None)
        self._lower.pop(canonical, None)
        initial = False if f.type == "boolean" and f.default is None else f.default
        for record in self.records[canonical].values():
            record[f.name] = initial
        return f

    # ---- reads ----------------------------------------------------------------------------------------
    def now_iso(self) -> str:
        return format_datetime(self.tenant.clock.now())

    def get(self, obj: str, record_id: str, *, include_deleted: bool = False) -> Record:
        full = normalize_id(record_id)
        record = self.records[obj].get(full) if full else None
        if record is None or (record["IsDeleted"] and not include_deleted):
            raise not_found()
        return record

    def _live(self, obj: str, record_id: str) -> Record:
        full = normalize_id(record_id)
        record = self.records[obj].get(full) if full else None
        if record is None:
            raise not_found()
        if record["IsDeleted"]:
            raise CrmError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return record

    def find_external(self, obj: str, field_name: str, value: str) -> tuple[FieldDef, list[str]]:
        f = self.field(obj, field_name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise CrmError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                           f"{field_name}")
        if f.name == "Id":
            full = normalize_id(value)
            rec = self.records[obj].get(full) if full else None
            return f, [rec["Id"]] if rec is not None and not rec["IsDeleted"] else []
        try:
            wanted = coerce(f, value, obj)
        except CrmError:
            return f, []
        if isinstance(wanted, str):
            wanted = wanted.lower()
            hits = [r["Id"] for r in self.records[obj].values()
                    if not r["IsDeleted"] and isinstance(r.get(f.name), str) and r[f.name].lower() == wanted]
        else:
            hits = [r["Id"] for r in self.records[obj].values() if not r["IsDeleted"] and r.get(f.name) == wanted]
        return f, hits

    # ---- writes ---------------------------------------------------------------------------------------
    def _prepare(self, obj: str, data: Any, creating: bool) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise json_parser_error("Cannot deserialize instance of sObject from a value that is not a JSON object")
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key == "attributes":
                continue
            f = self.field(obj, key)
            if f is None:
                raise invalid_field(obj, key)
            if not (f.createable if creating else f.updateable):
                raise CrmError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                               f"Unable to create/update fields: {f.name}. Please check the security settings of "
                               "this field and verify that it is read/write for your profile or permission set.",
                               [f.name])
            v = coerce(f, value, obj)
            if v is not None and f.type == "reference":
                v = self._reference(obj, f, v)
            out[f.name] = v
        return out

    def _reference(self, obj: str, f: FieldDef, value: str) -> str:
        full = normalize_id(value)
        label = f.label or f.name
        if full is None:
            raise CrmError(400, "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [f.name])
        target = obj if f.reference_to[0] == "self" else f.reference_to[0]
        if target == "User":
            if not full.startswith("005"):
                raise CrmError(400, "FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}",
                               [f.name])
            return full
        if PREFIXES.get(full[:3]) != target:
            raise CrmError(400, "FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}",
                           [f.name])
        parent = self.records[target].get(full)
        if parent is None or parent["IsDeleted"]:
            raise CrmError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        return full

    def _new_id(self, obj: str) -> str:
        prefix = OBJECTS[obj].prefix
        table = self.records[obj]
        while True:
            rid = new_id(prefix, self.tenant.rng)
            if rid not in table:
                return rid

    @staticmethod
    def _derive(obj: str, record: Record, given: dict[str, Any], creating: bool) -> None:
        if obj in ("Contact", "Lead") and ("FirstName" in given or "LastName" in given or creating):
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
        if obj == "Opportunity":
            if "StageName" in given or creating:
                facts = stage_facts(record["StageName"])
                record["IsClosed"], record["IsWon"] = facts["IsClosed"], facts["IsWon"]
                if "Probability" not in given:
                    record["Probability"] = facts["Probability"]
                if "ForecastCategoryName" not in given:
                    record["ForecastCategoryName"] = facts["ForecastCategoryName"]
            amount, probability = record.get("Amount"), record.get("Probability")
            record["ExpectedRevenue"] = None if amount is None or probability is None else amount * probability / 100

    def _stamp(self, record: Record) -> None:
        now = self.now_iso()
        record["LastModifiedDate"] = record["SystemModstamp"] = now
        record["LastModifiedById"] = self.user_id

    def create(self, obj: str, data: Any, *, origin: str | None = None) -> Record:
        values = self._prepare(obj, data, creating=True)
        defs = self.fields(obj)
        missing = [f.name for f in defs.values() if f.required and values.get(f.name) is None]
        if missing:
            raise CrmError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                           missing)
        return self._insert(obj, values, origin)

    def _insert(self, obj: str, values: dict[str, Any], origin: str | None) -> Record:
        defs = self.fields(obj)
        rid = self._new_id(obj)
        now = self.now_iso()
        record = {name: (False if f.type == "boolean" and f.default is None else f.default)
                  for name, f in defs.items()}
        record.update(Id=rid, OwnerId=self.user_id, CreatedDate=now, CreatedById=self.user_id,
                      LastModifiedDate=now, LastModifiedById=self.user_id, SystemModstamp=now)
        record.update(values)
        self._derive(obj, record, values, creating=True)
        self.records[obj][rid] = record
        tx = self.events.begin(self._origin(origin))
        fields = [k for k, v in record.items() if v is not None and k != "Id"]
        self.events.emit(tx, obj, "CREATE", [rid], {k: record[k] for k in fields})
        return record

    def _origin(self, origin: str | None) -> str:
        return API_ORIGIN.format(version=self.tenant.api_version) if origin is None else origin

    def update(self, obj: str, record_id: str, data: Any, *, origin: str | None = None) -> list[str]:
        record = self._live(obj, record_id)
        values = self._prepare(obj, data, creating=False)
        defs = self.fields(obj)
        nulled = [n for n, v in values.items() if v is None and not defs[n].nillable]
        if nulled:
            raise CrmError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(nulled)}]",
                           nulled)
        tx = self.events.begin(self._origin(origin))
        return self._apply(obj, record, values, tx)

    def _apply(self, obj: str, record: Record, values: dict[str, Any], tx: Transaction) -> list[str]:
        before = dict(record)
        record.update(values)
        self._derive(obj, record, values, creating=False)
        self._stamp(record)
        changed = [k for k, v in record.items() if k not in SYSTEM_STAMPS and before.get(k) != v]
        changed.append("LastModifiedDate")
        self.events.emit(tx, obj, "UPDATE", [record["Id"]], {k: record[k] for k in (*changed, "LastModifiedById")},
                         changed)
        return changed

    def upsert(self, obj: str, field_name: str, value: str, data: Any, *,
               origin: str | None = None) -> tuple[Record, bool]:
        """Create or update by external id: (record, created). Raises MultipleMatches for several hits."""
        f, hits = self.find_external(obj, field_name, value)
        if len(hits) > 1:
            raise MultipleMatches(obj, hits)
        if isinstance(data, dict) and f.name != "Id":
            given = next((v for k, v in data.items() if k.lower() == f.name.lower()), None)
            if given is not None and str(given).lower() != str(value).lower():
                raise CrmError(400, "INVALID_FIELD", f"The value of {f.name} in the URL and in the body differ",
                               [f.name])
        if hits:
            self.update(obj, hits[0], data, origin=origin)
            return self.records[obj][hits[0]], False
        if f.name == "Id":
            raise not_found()
        body = {k: v for k, v in data.items() if k.lower() != f.name.lower()} if isinstance(data, dict) else data
        if isinstance(body, dict):
            body[f.name] = value
        return self.create(obj, body, origin=origin), True

    def delete(self, obj: str, record_id: str, *, origin: str | None = None) -> list[str]:
        record = self._live(obj, record_id)
        tx = self.events.begin(self._origin(origin))
        deleted = self._mark_deleted(obj, record, tx)
        children: list[str] = []
        for child_obj, fld in OBJECTS[obj].children:
            if child_obj == obj:
                continue  # child accounts are not deleted with their parent
            for child in self.records[child_obj].values():
                if child[fld] == record["Id"] and not child["IsDeleted"]:
                    children.append(child["Id"])
                    self._mark_deleted(child_obj, child, tx)
        if children:
            self.cascade[record["Id"]] = children
        return [deleted, *children]

    def _mark_deleted(self, obj: str, record: Record, tx: Transaction, master: str | None = None) -> str:
        record["IsDeleted"] = True
        if master is not None:
            record["MasterRecordId"] = master
        self._stamp(record)
        values = {"MasterRecordId": master} if master is not None else {}
        self.events.emit(tx, obj, "DELETE", [record["Id"]], values)
        return record["Id"]

    def undelete(self, obj: str, record_id: str, *, origin: str | None = None) -> list[str]:
        full = normalize_id(record_id)
        record = self.records[obj].get(full) if full else None
        if record is None:
            raise not_found()
        if not record["IsDeleted"]:
            raise CrmError(400, "UNDELETE_FAILED", "Entity is not in the recycle bin")
        tx = self.events.begin(self._origin(origin))
        restored = []
        for rid in [record["Id"], *self.cascade.pop(record["Id"], [])]:
            rec_obj = PREFIXES[rid[:3]]
            rec = self.records[rec_obj][rid]
            rec["IsDeleted"] = False
            self._stamp(rec)
            self.events.emit(tx, rec_obj, "UNDELETE", [rid],
                             {k: v for k, v in rec.items() if v is not None and k != "Id"})
            restored.append(rid)
        return restored

    def merge(self, obj: str, master_id: str, loser_ids: list[str], take: dict[str, str] | None = None, *,
              origin: str = UI_ORIGIN) -> dict[str, Any]:
        """Salesforce merge: up to two records fold into the master; their children move to the master."""
        canonical = self.object_name(obj or "")
        if canonical is None or not OBJECTS[canonical].mergeable:
            raise ValueError(f"merge supports Account, Contact and Lead, not {obj!r}")
        if not isinstance(loser_ids, list) or not 1 <= len(loser_ids) <= 2:
            raise ValueError("merge takes the master and one or two other records")
        master = self._live(canonical, master_id)
        losers = [self._live(canonical, lid) for lid in loser_ids]
        loser_set = {r["Id"] for r in losers}
        if len(loser_set) != len(losers) or master["Id"] in loser_set:
            raise ValueError("merge needs distinct records, none of them the master")
        values: dict[str, Any] = {}
        for name, source in (take or {}).items():
            f = self.field(canonical, name)
            if f is None or not f.updateable:
                raise ValueError(f"{canonical}.{name} cannot be taken from a merged record")
            full = normalize_id(str(source))
            if full not in loser_set:
                raise ValueError(f"take: {source!r} is not one of the records being merged")
            values[f.name] = self.records[canonical][full][f.name]
        tx = self.events.begin(origin)
        updated = self._apply(canonical, master, values, tx)
        for loser in losers:
            self._mark_deleted(canonical, loser, tx, master=master["Id"])
        moved: dict[str, list[str]] = {}
        for child_obj, fld in OBJECTS[canonical].children:
            for child in self.records[child_obj].values():
                if child[fld] in loser_set and not child["IsDeleted"]:
                    moved.setdefault(child_obj, []).append(child["Id"])
                    self._apply(child_obj, child, {fld: master["Id"]}, tx)
        return {"object": canonical, "master": master["Id"], "merged": [r["Id"] for r in losers],
                "updatedFields": updated, "reparented": moved}

    def close_opportunity(self, opp_id: str, won: bool, *, origin: str = UI_ORIGIN) -> Record:
        record = self._live("Opportunity", opp_id)
        tx = self.events.begin(origin)
        self._apply("Opportunity", record, {"StageName": "Closed Won" if won else "Closed Lost"}, tx)
        return record

    # ---- state protocol -------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"records": self.records, "custom_fields": self.custom_specs, "user_id": self.user_id,
                "events": self.events.dump(), "cascade": self.cascade}

    def load(self, data: dict[str, Any]) -> None:
        self.records = {name: dict(data.get("records", {}).get(name, {})) for name in OBJECTS}
        self.custom_specs = {name: list(data.get("custom_fields", {}).get(name, [])) for name in OBJECTS}
        self._fields, self._lower = {}, {}
        self.user_id = data.get("user_id", self.user_id)
        self.events.load(data.get("events", {}))
        self.cascade = {k: list(v) for k, v in data.get("cascade", {}).items()}
        self.cursors = Cursors()

    def run_job(self, kind: str, payload: dict[str, Any]) -> None:
        return None  # the CRM schedules no time-driven work
