"""The sObjects: standard fields of Account, Contact, Opportunity and Lead, custom `__c` fields, and how a
wire value becomes a stored value (type checks, picklists, lengths). Knows no HTTP.

Stored values are JSON-ready: dates as "YYYY-MM-DD", datetimes as Salesforce prints them
("2026-01-01T00:00:00.000+0000", always UTC, so they also sort as strings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from mocks.crm.errors import CrmError

__all__ = ["OBJECTS", "PREFIXES", "FieldDef", "ObjectDef", "coerce", "custom_field", "format_datetime",
           "parse_datetime", "stage_facts"]

TEXT_TYPES = {"id", "string", "textarea", "url", "email", "phone", "picklist", "reference"}
NUMBER_TYPES = {"currency", "double", "percent", "int"}
FIELD_TYPES = TEXT_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime"}
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CUSTOM_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*__c$")


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    length: int = 0
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    default: Any = None

    @property
    def required(self) -> bool:
        """Required on create: not nillable, createable, and no default to fall back on."""
        return not self.nillable and self.createable and self.default is None and self.type != "boolean"

    def describe(self, picklist: list[str] | None = None) -> dict[str, Any]:
        values = picklist if picklist is not None else list(self.picklist)
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "length": self.length,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "custom": self.custom,
            "externalId": self.external_id,
            "unique": self.unique,
            "defaultValue": self.default,
            "restrictedPicklist": self.restricted,
            "picklistValues": [{"active": True, "defaultValue": False, "label": v, "value": v} for v in values],
            "referenceTo": list(self.reference_to),
        }


@dataclass(frozen=True)
class ObjectDef:
    name: str
    prefix: str
    label: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    mergeable: bool = False
    # Child object -> its lookup field to this object (re-parented on merge, cascade-deleted on delete).
    children: tuple[tuple[str, str], ...] = ()


def _f(name: str, type_: str, **kw: Any) -> FieldDef:
    if type_ in ("string", "url", "phone", "email", "picklist") and "length" not in kw:
        kw["length"] = 255 if type_ != "phone" else 40
    if type_ in ("id", "reference"):
        kw.setdefault("length", 18)
    return FieldDef(name, type_, **kw)


def _system_fields(mergeable: bool) -> list[FieldDef]:
    ro = {"createable": False, "updateable": False}
    out = [
        _f("Id", "id", nillable=False, **ro),
        _f("IsDeleted", "boolean", nillable=False, **ro),
    ]
    if mergeable:
        out.append(_f("MasterRecordId", "reference", reference_to=("self",), **ro))
    out += [
        _f("OwnerId", "reference", reference_to=("User",)),
        _f("CreatedDate", "datetime", nillable=False, **ro),
        _f("CreatedById", "reference", reference_to=("User",), nillable=False, **ro),
        _f("LastModifiedDate", "datetime", nillable=False, **ro),
        _f("LastModifiedById", "reference", reference_to=("User",), nillable=False, **ro),
        _f("SystemModstamp", "datetime", nillable=False, **ro),
    ]
    return out


STAGES = (
    ("Prospecting", 10, "Pipeline"), ("Qualification", 10, "Pipeline"), ("Needs Analysis", 20, "Pipeline"),
    ("Value Proposition", 50, "Pipeline"), ("Id. Decision Makers", 60, "Pipeline"),
    ("Perception Analysis", 70, "Pipeline"), ("Proposal/Price Quote", 75, "Pipeline"),
    ("Negotiation/Review", 90, "Pipeline"), ("Closed Won", 100, "Closed"), ("Closed Lost", 0, "Omitted"),
)
STAGE_NAMES = tuple(s[0] for s in STAGES)
INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
              "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
              "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
              "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
              "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
              "Utilities", "Other")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")


def stage_facts(stage: str) -> dict[str, Any]:
    """What Salesforce derives from a stage: IsClosed, IsWon, default Probability, ForecastCategoryName."""
    for name, probability, forecast in STAGES:
        if name == stage:
            return {"IsClosed": forecast != "Pipeline", "IsWon": name == "Closed Won",
                    "Probability": probability, "ForecastCategoryName": forecast}
    return {"IsClosed": False, "IsWon": False, "Probability": None, "ForecastCategoryName": "Pipeline"}


def _address(prefix: str) -> list[FieldDef]:
    return [_f(f"{prefix}Street", "textarea", length=255), _f(f"{prefix}City", "string", length=40),
            _f(f"{prefix}State", "string", length=80), _f(f"{prefix}PostalCode", "string", length=20),
            _f(f"{prefix}Country", "string", length=80)]


def _object(name: str, prefix: str, fields: list[FieldDef], *, mergeable: bool = False,
            children: tuple[tuple[str, str], ...] = ()) -> ObjectDef:
    all_fields = _system_fields(mergeable) + fields
    return ObjectDef(name, prefix, name, {f.name: f for f in all_fields}, mergeable, children)


_ro = {"createable": False, "updateable": False}

OBJECTS: dict[str, ObjectDef] = {
    "Account": _object("Account", "001", [
        _f("Name", "string", nillable=False), _f("AccountNumber", "string", length=40),
        _f("Type", "picklist", picklist=("Prospect", "Customer - Direct", "Customer - Channel",
                                         "Channel Partner / Reseller", "Installation Partner", "Technology Partner",
                                         "Other")),
        _f("ParentId", "reference", reference_to=("Account",)),
        _f("Industry", "picklist", picklist=INDUSTRIES),
        _f("Rating", "picklist", picklist=("Hot", "Warm", "Cold")),
        *_address("Billing"), *_address("Shipping"),
        _f("Phone", "phone"), _f("Website", "url"), _f("AnnualRevenue", "currency"),
        _f("NumberOfEmployees", "int"), _f("Description", "textarea", length=32000),
        _f("External_Id__c", "string", custom=True, external_id=True, label="External Id"),
        _f("At_Risk__c", "boolean", custom=True, nillable=False, default=False, label="At Risk"),
        _f("Health_Score__c", "double", custom=True, label="Health Score"),
        _f("Renewal_Date__c", "date", custom=True, label="Renewal Date"),
        _f("AR_Balance__c", "currency", custom=True, label="AR Balance"),
    ], mergeable=True, children=(("Contact", "AccountId"), ("Opportunity", "AccountId"), ("Account", "ParentId"))),
    "Contact": _object("Contact", "003", [
        _f("AccountId", "reference", reference_to=("Account",)),
        _f("Salutation", "picklist", picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
        _f("FirstName", "string", length=40), _f("LastName", "string", length=80, nillable=False),
        _f("Name", "string", length=121, **_ro),
        _f("Email", "email", length=80), _f("Phone", "phone"), _f("MobilePhone", "phone"),
        _f("Title", "string", length=128), _f("Department", "string", length=80),
        _f("LeadSource", "picklist", picklist=LEAD_SOURCES), *_address("Mailing"),
        _f("Birthdate", "date"), _f("Description", "textarea", length=32000),
        _f("HasOptedOutOfEmail", "boolean", nillable=False, default=False),
    ], mergeable=True),
    "Opportunity": _object("Opportunity", "006", [
        _f("AccountId", "reference", reference_to=("Account",)),
        _f("Name", "string", length=120, nillable=False),
        _f("StageName", "picklist", picklist=STAGE_NAMES, restricted=True, nillable=False),
        _f("CloseDate", "date", nillable=False), _f("Amount", "currency"), _f("Probability", "percent"),
        _f("ExpectedRevenue", "currency", **_ro),
        _f("Type", "picklist", picklist=("Existing Customer - Upgrade", "Existing Customer - Replacement",
                                         "Existing Customer - Downgrade", "New Customer")),
        _f("LeadSource", "picklist", picklist=LEAD_SOURCES), _f("NextStep", "string"),
        _f("Description", "textarea", length=32000),
        _f("IsClosed", "boolean", nillable=False, **_ro), _f("IsWon", "boolean", nillable=False, **_ro),
        _f("ForecastCategoryName", "picklist", picklist=("Omitted", "Pipeline", "Best Case", "Commit", "Closed")),
    ]),
    "Lead": _object("Lead", "00Q", [
        _f("Salutation", "picklist", picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
        _f("FirstName", "string", length=40), _f("LastName", "string", length=80, nillable=False),
        _f("Name", "string", length=121, **_ro),
        _f("Company", "string", nillable=False), _f("Title", "string", length=128),
        _f("Email", "email", length=80), _f("Phone", "phone"), _f("Website", "url"),
        _f("Status", "picklist", picklist=LEAD_STATUSES, restricted=True, nillable=False,
           default="Open - Not Contacted"),
        _f("Industry", "picklist", picklist=INDUSTRIES), _f("LeadSource", "picklist", picklist=LEAD_SOURCES),
        _f("AnnualRevenue", "currency"), _f("NumberOfEmployees", "int"), *_address(""),
        _f("Description", "textarea", length=32000),
        _f("IsConverted", "boolean", nillable=False, **_ro),
        _f("ConvertedAccountId", "reference", reference_to=("Account",), **_ro),
    ], mergeable=True),
}
PREFIXES = {o.prefix: name for name, o in OBJECTS.items()}


def custom_field(spec: dict[str, Any]) -> FieldDef:
    """A tenant-declared custom field from `{"name", "type", "label"?, "externalId"?, "unique"?, "picklist"?,
    "restricted"?, "length"?, "default"?}`. Raises ValueError on a bad declaration."""
    name = str(spec.get("name", ""))
    if not CUSTOM_NAME_RE.match(name) or len(name) > 43:
        raise ValueError(f"custom field name {name!r} must look like Some_Name__c")
    type_ = str(spec.get("type", "string"))
    if type_ not in FIELD_TYPES - {"id", "reference"}:
        raise ValueError(f"unsupported custom field type {type_!r}")
    picklist = tuple(str(v) for v in spec.get("picklist") or ())
    default = spec.get("default", False if type_ == "boolean" else None)
    out = _f(name, type_, label=str(spec.get("label") or name[:-3].replace("_", " ")), custom=True,
             external_id=bool(spec.get("externalId", False)), unique=bool(spec.get("unique", False)),
             picklist=picklist, restricted=bool(spec.get("restricted", False)) and bool(picklist),
             nillable=type_ != "boolean", default=default)
    if spec.get("length"):
        out = replace(out, length=int(spec["length"]))
    if out.default is not None:
        out = replace(out, default=coerce(out, out.default, "Account"))
    return out


# ---- values ---------------------------------------------------------------------------------------------

def format_datetime(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> str:
    """Any ISO 8601 instant -> Salesforce's UTC form. Raises ValueError."""
    if not isinstance(text, str) or "T" not in text:
        raise ValueError(text)
    norm = text.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", norm):
        norm = norm[:-2] + ":" + norm[-2:]
    dt = datetime.fromisoformat(norm)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return format_datetime(dt.timestamp())


def _bad_type(f: FieldDef, value: Any) -> CrmError:
    token = {bool: "VALUE_" + str(value).upper(), str: "VALUE_STRING", int: "VALUE_NUMBER_INT",
             float: "VALUE_NUMBER_FLOAT", list: "START_ARRAY", dict: "START_OBJECT"}.get(type(value), "VALUE")
    java = {"boolean": "boolean", "int": "int", "date": "date", "datetime": "datetime"}.get(f.type, "double")
    if f.type in TEXT_TYPES:
        java = "String"
    return CrmError(400, "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of {java} from {token} value {value} or request may be "
                    f"missing a required field")


def coerce(f: FieldDef, value: Any, obj: str) -> Any:
    """Wire value -> stored value for field `f`, or CrmError the way Salesforce words it."""
    if value is None:
        return None
    t = f.type
    if t in TEXT_TYPES:
        if isinstance(value, bool | list | dict):
            raise _bad_type(f, value)
        text = value if isinstance(value, str) else str(value)
        if text == "":
            return None  # Salesforce stores an empty string as null
        if f.length and len(text) > f.length:
            raise CrmError(400, "STRING_TOO_LONG", f"{f.label or f.name}: data value too large: {text[:40]} "
                           f"(max length={f.length})", [f.name])
        if t == "email" and not EMAIL_RE.match(text):
            raise CrmError(400, "INVALID_EMAIL_ADDRESS", f"{f.label or f.name}: invalid email address: {text}",
                           [f.name])
        if t == "picklist" and f.restricted and text not in f.picklist:
            raise CrmError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"{f.label or f.name}: bad value for restricted picklist field: {text}", [f.name])
        return text
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad_type(f, value)
    if t in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _bad_type(f, value)
        try:
            number = float(value)
        except ValueError:
            raise _bad_type(f, value) from None
        if number != number or number in (float("inf"), float("-inf")) or abs(number) >= 1e18:
            raise CrmError(400, "NUMBER_OUTSIDE_VALID_RANGE", f"{f.name}: value outside of valid range on numeric "
                           f"field: {value}", [f.name])
        if t == "int":
            if number != int(number):
                raise _bad_type(f, value)
            return int(number)
        return number
    if t == "date":
        if isinstance(value, str):
            text = value[:10] if "T" in value else value
            if DATE_RE.match(text):
                try:
                    datetime.strptime(text, "%Y-%m-%d")
                    return text
                except ValueError:
                    pass
        raise _bad_type(f, value)
    if t == "datetime":
        try:
            return parse_datetime(value)
        except (ValueError, TypeError, OverflowError):
            raise _bad_type(f, value) from None
    raise _bad_type(f, value)  # pragma: no cover - every type is handled above
