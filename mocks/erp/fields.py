"""Request-body parsing per record type: NetSuite field names and shapes -> internal values. No HTTP.

Each record type declares its writable fields as `Field` rows. `parse_body` checks types and formats
and returns only the fields the body set (PATCH semantics: absent = unchanged, null = cleared). What
needs other records (does that customer exist? is it on credit hold?) is checked by `models`.

References (`subsidiary`, `entity`, `item` ...) are `{"id": "12"}` or, for records, `{"externalId": "x"}`;
both come back as `{"id": ...}` or `{"externalId": ...}` for the state to resolve.
Read-only fields a client may echo back from a GET (`id`, `links`, `total`, `status` ...) are ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mocks.erp.errors import ErpError, bad_value
from mocks.erp.reference import COUNTRIES, normalize_tax_number

__all__ = ["FIELDS", "READ_ONLY", "RECORD_TYPES", "Field", "parse_body"]

Json = dict[str, Any]
RECORD_TYPES = ("customer", "salesOrder", "invoice", "creditMemo", "item")

CREDIT_HOLD = ("AUTO", "ON", "OFF")
ITEM_TYPES = ("InvtPart", "NonInvtPart", "Service", "OthCharge", "Discount")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DIGITS = re.compile(r"^[0-9]{1,18}$")
MAX_LINES = 500
MAX_ADDRESSES = 50


@dataclass(frozen=True)
class Field:
    parse: Callable[[Any, str], Any]
    required: bool = False  # on create
    nullable: bool = True  # may be cleared with null


def _str(max_len: int) -> Callable[[Any, str], Any]:
    def parse(value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise bad_value(path, f"Invalid value for field '{path}': expected a string.")
        if len(value) > max_len:
            raise bad_value(path, f"Invalid value for field '{path}': at most {max_len} characters.")
        return value

    return parse


def _name(max_len: int) -> Callable[[Any, str], Any]:
    base = _str(max_len)

    def parse(value: Any, path: str) -> str:
        text = base(value, path).strip()
        if not text:
            raise ErpError(400, "USER_ERROR", f"Please enter value(s) for: {path}", path=path)
        return text

    return parse


def _email(value: Any, path: str) -> str:
    text = _str(254)(value, path)
    if not _EMAIL.match(text):
        raise bad_value(path, f"Invalid value for field '{path}': {text!r} is not a valid email address.")
    return text


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise bad_value(path, f"Invalid value for field '{path}': expected true or false.")
    return value


def _number(minimum: float | None = None, *, exclusive: bool = False) -> Callable[[Any, str], Any]:
    def parse(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise bad_value(path, f"Invalid value for field '{path}': expected a number.")
        if abs(value) > 1e12:
            raise bad_value(path, f"Invalid value for field '{path}': out of range.")
        if minimum is not None and (value < minimum or (exclusive and value == minimum)):
            word = "greater than" if exclusive else "at least"
            raise bad_value(path, f"Invalid value for field '{path}': must be {word} {minimum:g}.")
        return round(float(value), 2) if isinstance(value, float) else value

    return parse


def _enum(values: tuple[str, ...]) -> Callable[[Any, str], Any]:
    def parse(value: Any, path: str) -> str:
        if isinstance(value, dict) and set(value) <= {"id", "refName"}:
            value = value.get("id")
        if not isinstance(value, str) or value not in values:
            raise bad_value(path, f"Invalid value for field '{path}': use one of {', '.join(values)}.")
        return value

    return parse


def _date(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise bad_value(path, f"Invalid value for field '{path}': expected a date (YYYY-MM-DD).")
    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
    except ValueError as exc:
        raise bad_value(path, f"Invalid value for field '{path}': expected a date (YYYY-MM-DD).") from exc


def _ref(allow_external: bool) -> Callable[[Any, str], Any]:
    """{"id": "12"} (string or integer id) or, for records, {"externalId": "x"}; refName is ignored."""

    def parse(value: Any, path: str) -> Json:
        if not isinstance(value, dict):
            raise bad_value(path, f"Invalid value for field '{path}': expected a reference {{\"id\": ...}}.")
        extra = set(value) - {"id", "refName", "externalId", "links"}
        if extra:
            raise bad_value(path, f"Invalid value for field '{path}': unknown key {sorted(extra)[0]!r}.")
        ref_id = value.get("id")
        if ref_id is not None:
            if isinstance(ref_id, int) and not isinstance(ref_id, bool) and ref_id > 0:
                return {"id": str(ref_id)}
            if isinstance(ref_id, str) and _DIGITS.match(ref_id):
                return {"id": str(int(ref_id))}
            raise ErpError(400, "INVALID_ID", f"Invalid reference key {ref_id!r} for field '{path}'.", path=path)
        eid = value.get("externalId")
        if allow_external and isinstance(eid, str) and 0 < len(eid) <= 255:
            return {"externalId": eid}
        raise bad_value(path, f"Invalid value for field '{path}': a reference needs an id.")

    return parse


def _items(value: Any, path: str, limit: int) -> list[Any]:
    """A sublist: {"items": [...]} as NetSuite sends it, or a bare list."""
    if isinstance(value, dict):
        if set(value) - {"items", "links", "totalResults", "count", "hasMore", "offset"}:
            raise bad_value(path, f"Invalid value for field '{path}': expected {{\"items\": [...]}}.")
        value = value.get("items", [])
    if not isinstance(value, list):
        raise bad_value(path, f"Invalid value for field '{path}': expected {{\"items\": [...]}}.")
    if len(value) > limit:
        raise bad_value(path, f"Invalid value for field '{path}': at most {limit} lines.")
    return value


def _country(value: Any, path: str) -> str:
    if isinstance(value, dict) and set(value) <= {"id", "refName"}:
        value = value.get("id")
    if not isinstance(value, str) or value.upper() not in COUNTRIES:
        raise bad_value(path, f"Invalid value for field '{path}': expected an ISO 3166 country code.")
    return value.upper()


ADDRESS_FIELDS = {"addressee": 150, "attention": 150, "addr1": 150, "addr2": 150, "addr3": 150, "city": 50,
                  "state": 50, "zip": 36, "addrPhone": 32}


def _address_book(value: Any, path: str) -> list[Json]:
    out: list[Json] = []
    for i, entry in enumerate(_items(value, path, MAX_ADDRESSES)):
        here = f"{path}.items[{i}]"
        if not isinstance(entry, dict):
            raise bad_value(here, f"Invalid value for field '{here}': expected an object.")
        unknown = set(entry) - {"label", "defaultBilling", "defaultShipping", "addressBookAddress", "id",
                                "links", "internalId", "addressBookAddress_text"}
        if unknown:
            raise bad_value(f"{here}.{sorted(unknown)[0]}", f"Unknown field {sorted(unknown)[0]!r} in {here}.")
        addr_in = entry.get("addressBookAddress")
        if not isinstance(addr_in, dict):
            raise ErpError(400, "USER_ERROR", f"Please enter value(s) for: {here}.addressBookAddress",
                           path=f"{here}.addressBookAddress")
        addr: Json = {}
        for key, raw in addr_in.items():
            where = f"{here}.addressBookAddress.{key}"
            if key == "country":
                addr["country"] = _country(raw, where)
            elif key in ADDRESS_FIELDS:
                if raw is not None:
                    addr[key] = _str(ADDRESS_FIELDS[key])(raw, where)
            elif key not in ("links", "addrText", "override"):
                raise bad_value(where, f"Unknown field {key!r} in {here}.addressBookAddress.")
        if "country" not in addr:
            raise ErpError(400, "USER_ERROR", f"Please enter value(s) for: Country ({here}.addressBookAddress.country)",
                           path=f"{here}.addressBookAddress.country")
        out.append({
            "label": _str(100)(entry["label"], f"{here}.label") if entry.get("label") is not None
            else addr.get("addr1", addr["country"]),
            "defaultBilling": _bool(entry.get("defaultBilling", False), f"{here}.defaultBilling"),
            "defaultShipping": _bool(entry.get("defaultShipping", False), f"{here}.defaultShipping"),
            "addressBookAddress": addr,
        })
    for flag in ("defaultBilling", "defaultShipping"):
        if sum(a[flag] for a in out) > 1:
            raise ErpError(400, "USER_ERROR", f"Only one address can be the {flag} address.", path=path)
    return out


def _tax_registration(value: Any, path: str) -> Json:
    if not isinstance(value, dict):
        raise bad_value(path, f"Invalid value for field '{path}': expected {{\"country\", \"number\"}}.")
    unknown = set(value) - {"country", "number"}
    if unknown:
        raise bad_value(f"{path}.{sorted(unknown)[0]}", f"Unknown field {sorted(unknown)[0]!r} in {path}.")
    country = _country(value.get("country"), f"{path}.country")
    number = value.get("number")
    if not isinstance(number, str) or not number.strip() or len(number) > 40:
        raise bad_value(f"{path}.number", f"Invalid value for field '{path}.number': expected a string.")
    try:
        return {"country": country, "number": normalize_tax_number(country, number)}
    except ValueError as exc:
        raise bad_value(f"{path}.number", str(exc)) from exc


_LINE_FIELDS = {"item", "quantity", "rate", "amount", "description", "line", "links"}


def _lines(value: Any, path: str) -> list[Json]:
    out: list[Json] = []
    for i, entry in enumerate(_items(value, path, MAX_LINES)):
        here = f"{path}.items[{i}]"
        if not isinstance(entry, dict):
            raise bad_value(here, f"Invalid value for field '{here}': expected an object.")
        unknown = set(entry) - _LINE_FIELDS
        if unknown:
            raise bad_value(f"{here}.{sorted(unknown)[0]}", f"Unknown field {sorted(unknown)[0]!r} in {here}.")
        if entry.get("item") is None:
            raise ErpError(400, "USER_ERROR", f"Please enter value(s) for: Item ({here}.item)", path=f"{here}.item")
        line: Json = {"item": _ref(True)(entry["item"], f"{here}.item")}
        line["quantity"] = _number(0, exclusive=True)(entry.get("quantity", 1), f"{here}.quantity")
        for key in ("rate", "amount"):
            if entry.get(key) is not None:
                line[key] = _number(0)(entry[key], f"{here}.{key}")
        if entry.get("description") is not None:
            line["description"] = _str(999)(entry["description"], f"{here}.description")
        out.append(line)
    return out


FIELDS: dict[str, dict[str, Field]] = {
    "customer": {
        "companyName": Field(_name(83), required=True, nullable=False),
        "legalName": Field(_str(83)),
        "email": Field(_email),
        "phone": Field(_str(32)),
        "externalId": Field(_str(255)),
        "subsidiary": Field(_ref(False), nullable=False),
        "currency": Field(_ref(False), nullable=False),
        "terms": Field(_ref(False)),
        "creditLimit": Field(_number(0)),
        "creditHoldOverride": Field(_enum(CREDIT_HOLD), nullable=False),
        "taxRegistration": Field(_tax_registration),
        "addressBook": Field(_address_book, nullable=False),
        "isInactive": Field(_bool, nullable=False),
        "comments": Field(_str(999)),
    },
    "salesOrder": {
        "entity": Field(_ref(True), required=True, nullable=False),
        "tranDate": Field(_date, nullable=False),
        "externalId": Field(_str(255)),
        "memo": Field(_str(999)),
        "otherRefNum": Field(_str(45)),
        "item": Field(_lines, required=True, nullable=False),
    },
    "invoice": {
        "entity": Field(_ref(True), required=True, nullable=False),
        "createdFrom": Field(_ref(True), required=True, nullable=False),
        "tranDate": Field(_date, nullable=False),
        "dueDate": Field(_date),
        "terms": Field(_ref(False)),
        "externalId": Field(_str(255)),
        "memo": Field(_str(999)),
        "item": Field(_lines, nullable=False),
    },
    "creditMemo": {
        "entity": Field(_ref(True), nullable=False),
        "createdFrom": Field(_ref(True), required=True, nullable=False),
        "tranDate": Field(_date, nullable=False),
        "externalId": Field(_str(255)),
        "memo": Field(_str(999)),
        "item": Field(_lines, nullable=False),
    },
    "item": {
        "itemId": Field(_name(60), required=True, nullable=False),
        "displayName": Field(_str(60)),
        "description": Field(_str(999)),
        "basePrice": Field(_number(0)),
        "itemType": Field(_enum(ITEM_TYPES), nullable=False),
        "externalId": Field(_str(255)),
        "isInactive": Field(_bool, nullable=False),
    },
}

# Fields a GET returns that a client may send back unchanged; they are ignored on input.
READ_ONLY: dict[str, frozenset[str]] = {
    "customer": frozenset({"id", "links", "isOnCreditHold", "balance", "dateCreated", "lastModifiedDate",
                           "entityId"}),
    "salesOrder": frozenset({"id", "links", "status", "total", "subtotal", "currency", "subsidiary",
                             "revision", "amendments", "amountBilled", "createdDate", "lastModifiedDate",
                             "tranId"}),
    "invoice": frozenset({"id", "links", "status", "total", "subtotal", "amountRemaining", "amountPaid",
                          "currency", "subsidiary", "createdDate", "lastModifiedDate", "tranId",
                          "daysOverdue"}),
    "creditMemo": frozenset({"id", "links", "status", "total", "subtotal", "applied", "unapplied",
                             "currency", "subsidiary", "createdDate", "lastModifiedDate", "tranId"}),
    "item": frozenset({"id", "links", "createdDate", "lastModifiedDate"}),
}


def parse_body(record_type: str, body: Any, *, creating: bool) -> Json:
    """Checks a create / update body; returns the internal values of the fields it sets."""
    if not isinstance(body, dict):
        raise ErpError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
    fields = FIELDS[record_type]
    ignored = READ_ONLY[record_type]
    out: Json = {}
    for name, value in body.items():
        spec = fields.get(name)
        if spec is None:
            if name in ignored:
                continue
            raise bad_value(name, f"Invalid field name: {name!r} is not a field of record type {record_type}.")
        if value is None:
            if not spec.nullable or (creating and spec.required):
                raise ErpError(400, "USER_ERROR", f"Please enter value(s) for: {name}", path=name)
            out[name] = None
            continue
        out[name] = spec.parse(value, name)
    if creating:
        for name, spec in fields.items():
            if spec.required and name not in out:
                raise ErpError(400, "USER_ERROR", f"Please enter value(s) for: {name}", path=name)
    return out
