"""Field vocabulary of the CS objects (internal names = API v1 wire names), value checks and dates.

Everything here is plain data and small functions: the request layer hands in dicts already translated
to internal names; `clean()` checks names, types, picklists and dates and returns the stored values.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from mocks.cs.errors import INVALID_DATE, INVALID_FIELD, INVALID_VALUE, REQUIRED, CSError

__all__ = [
    "ACTIVITY_TYPES", "COMPANY_FIELDS", "COMPANY_STATUSES", "CTA_CLOSED", "CTA_FIELDS", "CTA_PRIORITIES",
    "CTA_STATUSES", "CTA_TYPES", "DAY", "PERSON_FIELDS", "STAGES", "TRENDS", "clean", "date_ts", "iso_date",
    "iso_datetime", "parse_date",
]

DAY = 86_400
STAGES = ["Kick Off", "Onboarding", "Adopting", "Expanding", "Renewal", "Churned"]
COMPANY_STATUSES = ["Active", "Inactive"]
TRENDS = ["up", "down", "flat"]
ACTIVITY_TYPES = ["Call", "Email", "Meeting", "Update"]
CTA_TYPES = ["Risk", "Onboarding", "Renewal", "Expansion"]
CTA_PRIORITIES = ["Low", "Medium", "High"]
CTA_STATUSES = ["New", "Open", "Work In Progress", "Closed Success", "Closed Lost", "Closed Invalid"]
CTA_CLOSED = {"Closed Success", "Closed Lost", "Closed Invalid"}

# name -> (kind, writable, picklist). Kinds: string, number, date, datetime, email, ref, int.
Spec = tuple[str, bool, list[str] | None]
COMPANY_FIELDS: dict[str, Spec] = {
    "Gsid": ("string", False, None),
    "Name": ("string", True, None),
    "ExternalId": ("string", True, None),
    "ARR": ("number", True, None),
    "MRR": ("number", True, None),
    "RenewalDate": ("date", True, None),
    "CSM": ("string", True, None),
    "Stage": ("string", True, STAGES),
    "Industry": ("string", True, None),
    "Status": ("string", True, COMPANY_STATUSES),
    "HealthScore": ("int", False, None),
    "HealthTrend": ("string", False, TRENDS),
    "CreatedDate": ("datetime", False, None),
    "ModifiedDate": ("datetime", False, None),
}
PERSON_FIELDS: dict[str, Spec] = {
    "Gsid": ("string", False, None),
    "Email": ("email", True, None),
    "FirstName": ("string", True, None),
    "LastName": ("string", True, None),
    "Name": ("string", False, None),
    "Role": ("string", True, None),
    "CompanyId": ("ref", True, None),
    "CreatedDate": ("datetime", False, None),
    "ModifiedDate": ("datetime", False, None),
}
ACTIVITY_FIELDS: dict[str, Spec] = {
    "Gsid": ("string", False, None),
    "ExternalId": ("string", True, None),
    "Subject": ("string", True, None),
    "Notes": ("string", True, None),
    "ActivityDate": ("datetime", True, None),
    "TypeName": ("string", True, ACTIVITY_TYPES),
    "CompanyId": ("ref", True, None),
    "Author": ("string", True, None),
    "CreatedDate": ("datetime", False, None),
    "ModifiedDate": ("datetime", False, None),
}
CTA_FIELDS: dict[str, Spec] = {
    "Gsid": ("string", False, None),
    "Name": ("string", True, None),
    "CompanyId": ("ref", True, None),
    "TypeName": ("string", True, CTA_TYPES),
    "PriorityName": ("string", True, CTA_PRIORITIES),
    "StatusName": ("string", True, CTA_STATUSES),
    "ReasonName": ("string", True, None),
    "DueDate": ("date", True, None),
    "OwnerId": ("string", True, None),
    "Comments": ("string", True, None),
    "IsClosed": ("bool", False, None),
    "ClosedDate": ("datetime", False, None),
    "CreatedDate": ("datetime", False, None),
    "ModifiedDate": ("datetime", False, None),
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_STRING = 1000


def iso_date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def iso_datetime(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def date_ts(date: str) -> float:
    """Midnight UTC of an ISO date (already validated)."""
    return dt.datetime.strptime(date[:10], "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()


def parse_date(name: str, value: Any, *, with_time: bool = False) -> str:
    """Accepts YYYY-MM-DD, ISO date-times and epoch milliseconds; returns ISO (date or date-time, UTC)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            moment = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
        elif isinstance(value, str) and len(value) == 10:
            moment = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        elif isinstance(value, str):
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
        else:
            raise ValueError
        if not 1900 <= moment.year <= 9999:
            raise ValueError
    except (ValueError, OverflowError, OSError) as exc:
        raise CSError(INVALID_DATE, f"Invalid date format ({name} = {value})", field=name) from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if with_time else "%Y-%m-%d")


def _check(name: str, kind: str, picklist: list[str] | None, value: Any) -> Any:
    if value is None:
        return None
    if kind in ("string", "email", "ref"):
        if not isinstance(value, str):
            raise CSError(INVALID_FIELD, f"Invalid field value ({name} = {value!r}): expected a string", field=name)
        value = value.strip()
        if len(value) > MAX_STRING:
            raise CSError("GSOBJ_1001", f"Field exceeds maximum allowed length ({name})", field=name)
        if kind == "email" and not _EMAIL.match(value):
            raise CSError(INVALID_VALUE, f"Invalid email address ({name} = {value})", field=name)
        if picklist is not None and value not in picklist:
            raise CSError(INVALID_VALUE, f"Invalid picklist value ({name} = {value}); allowed: {picklist}",
                          field=name)
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) > 1e15:
            raise CSError(INVALID_FIELD, f"Invalid field value ({name} = {value!r}): expected a number", field=name)
        if value < 0:
            raise CSError(INVALID_VALUE, f"Invalid field value ({name} = {value}): must not be negative", field=name)
        return value
    if kind == "date":
        return parse_date(name, value)
    if kind == "datetime":
        return parse_date(name, value, with_time=True)
    raise CSError(INVALID_FIELD, f"{name} is read-only", field=name)


def clean(fields: dict[str, Spec], data: dict[str, Any], *, required: tuple[str, ...] = (),
          obj: str = "record") -> dict[str, Any]:
    """Checks a write (internal names) and returns the values to store. Read-only fields are refused."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        spec = fields.get(name)
        if spec is None:
            raise CSError(INVALID_FIELD, f"Invalid field, please re-check data mapping ({name} is not a field "
                                         f"of {obj})", field=name)
        kind, writable, picklist = spec
        if not writable:
            raise CSError(INVALID_FIELD, f"Invalid field ({name} of {obj} is read-only)", field=name)
        out[name] = _check(name, kind, picklist, value)
    for name in required:
        if out.get(name) in (None, ""):
            raise CSError(REQUIRED, f"Invalid field value ({name} = null): {name} is required", field=name)
    return out
