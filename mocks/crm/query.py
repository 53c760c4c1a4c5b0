"""Runs a parsed SOQL query against one tenant's records: field resolution (with `Relationship.Field`),
type-checked filters, ORDER BY, LIMIT/OFFSET, and cursor paging (`nextRecordsUrl`).

Strings compare case-insensitively (as SOQL does); `!=` and NOT IN keep nulls (as SOQL does).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from mocks.crm import soql
from mocks.crm.errors import CrmError
from mocks.crm.ids import BASE62, POD, normalize_id
from mocks.crm.schema import NUMBER_TYPES, OBJECTS, TEXT_TYPES, FieldDef, parse_datetime

if TYPE_CHECKING:
    from mocks.crm.models import CrmState

__all__ = ["Cursors", "run_query"]

Row = dict[str, Any]
Getter = Callable[[Row], Any]
LiteralMap = Callable[[str, str, Any], Any]  # (object, field, wire value) -> internal value
DEFAULT_BATCH = 2000
MAX_OFFSET = 2000
MAX_CURSORS = 50


@dataclass
class Selected:
    rel: str | None  # relationship name as the query spelled it canonically (e.g. "Account"), or None
    ref_field: str | None  # the lookup field on the queried object (e.g. "AccountId")
    target: str | None  # the related object type
    field: FieldDef


@dataclass
class Cursor:
    obj: str
    records: list[Row]
    selected: list[Selected]
    position: int
    end: int
    batch: int
    all_rows: bool


class Cursors:
    """Open query locators of one tenant, newest last; the oldest are dropped past MAX_CURSORS."""

    def __init__(self) -> None:
        self._open: OrderedDict[str, Cursor] = OrderedDict()
        self._seq = 0

    def open(self, cursor: Cursor) -> str:
        self._seq += 1
        n, digits = self._seq, ""
        for _ in range(9):
            n, r = divmod(n, 62)
            digits = BASE62[r] + digits
        locator = "01g" + POD + digits
        self._open[locator] = cursor
        while len(self._open) > MAX_CURSORS:
            self._open.popitem(last=False)
        return locator

    def get(self, locator: str) -> Cursor | None:
        return self._open.get(locator)

    def close(self, locator: str) -> None:
        self._open.pop(locator, None)


def _no_column(q: soql.Query, pos: int, name: str, obj: str) -> CrmError:
    return soql.soql_error(q.text, pos, f"No such column '{name}' on entity '{obj}'. If you are attempting to use "
                           "a custom field, be sure to append the '__c' after the custom field name. Please "
                           "reference your WSDL or the describe call for the appropriate names.", "INVALID_FIELD")


def _relationships(state: CrmState, obj: str) -> dict[str, tuple[str, str]]:
    """lower(relationship name) -> (lookup field, target object), for lookups to modeled objects."""
    out: dict[str, tuple[str, str]] = {}
    for f in state.fields(obj).values():
        if f.type == "reference" and f.name.endswith("Id") and f.reference_to:
            target = obj if f.reference_to[0] == "self" else f.reference_to[0]
            if target in OBJECTS:
                out[f.name[:-2].lower()] = (f.name, target)
    return out


def _resolve(state: CrmState, q: soql.Query, obj: str, path: tuple[str, ...], pos: int) -> Selected:
    if len(path) == 1:
        f = state.field(obj, path[0])
        if f is None:
            raise _no_column(q, pos, path[0], obj)
        return Selected(None, None, None, f)
    if len(path) == 2:
        rels = _relationships(state, obj)
        if path[0].lower() == obj.lower() and state.field(obj, path[1]) is not None:
            f = state.field(obj, path[1])  # "Account.Name" on Account means Name
            assert f is not None
            return Selected(None, None, None, f)
        if path[0].lower() in rels:
            ref_field, target = rels[path[0].lower()]
            f = state.field(target, path[1])
            if f is None:
                raise _no_column(q, pos, ".".join(path), obj)
            return Selected(ref_field[:-2], ref_field, target, f)
        raise soql.soql_error(q.text, pos, f"Didn't understand relationship '{path[0]}' in field path. If you are "
                              "attempting to use a custom relationship, be sure to append the '__r' after the "
                              "custom relationship name. Please reference your WSDL or the describe call for the "
                              "appropriate names.", "INVALID_FIELD")
    raise soql.soql_error(q.text, pos, "Relationship paths deeper than one level are not supported by this sandbox")


def _getter(state: CrmState, sel: Selected) -> Getter:
    name = sel.field.name
    if sel.ref_field is None:
        return lambda r: r.get(name)
    ref, table = sel.ref_field, state.records[sel.target or ""]

    def related(r: Row) -> Any:
        parent = table.get(r.get(ref) or "")
        return None if parent is None or parent["IsDeleted"] else parent.get(name)

    return related


# ---- filters ---------------------------------------------------------------------------------------------

def _date_range(word: str, n: int, today: date) -> tuple[date, date]:
    """[start, end) of a SOQL date literal."""
    if word == "TODAY":
        return today, today + timedelta(1)
    if word == "YESTERDAY":
        return today - timedelta(1), today
    if word == "TOMORROW":
        return today + timedelta(1), today + timedelta(2)
    if word == "LAST_N_DAYS":
        return today - timedelta(n), today + timedelta(1)
    if word == "NEXT_N_DAYS":
        return today + timedelta(1), today + timedelta(n + 1)
    unit, shift = word.split("_", 1)[1], {"THIS": 0, "LAST": -1, "NEXT": 1}[word.split("_", 1)[0]]
    if unit == "WEEK":  # weeks start on Sunday in the default locale
        start = today - timedelta((today.weekday() + 1) % 7) + timedelta(7 * shift)
        return start, start + timedelta(7)
    if unit == "MONTH":
        month = today.year * 12 + today.month - 1 + shift
        start = date(month // 12, month % 12 + 1, 1)
        nxt = month + 1
        return start, date(nxt // 12, nxt % 12 + 1, 1)
    start = date(today.year + shift, 1, 1)
    return start, date(today.year + shift + 1, 1, 1)


def _type_name(f: FieldDef) -> str:
    return {"currency": "double", "percent": "double", "int": "double", "email": "string", "url": "string",
            "phone": "string", "textarea": "string", "picklist": "string", "reference": "id"}.get(f.type, f.type)


class _Compiler:
    def __init__(self, state: CrmState, q: soql.Query, obj: str, today: date, literal_map: LiteralMap) -> None:
        self.state, self.q, self.obj, self.today, self.literal_map = state, q, obj, today, literal_map

    def bad_value(self, f: FieldDef, lit: soql.Literal) -> CrmError:
        quoted = "should be enclosed in quotes" if f.type in TEXT_TYPES else "should not be enclosed in quotes"
        return soql.soql_error(self.q.text, lit.pos, f"value of filter criterion for field '{f.name}' must be of "
                               f"type {_type_name(f)} and {quoted}", "INVALID_QUERY_FILTER_OPERATOR")

    def value(self, sel: Selected, lit: soql.Literal) -> Any:
        """A literal checked against the field's type, in the stored form (strings lower-cased)."""
        f = sel.field
        if lit.kind == "null":
            return None
        t = f.type
        if t in ("id", "reference"):
            if lit.kind != "string":
                raise self.bad_value(f, lit)
            full = normalize_id(lit.value)
            if full is None:
                raise soql.soql_error(self.q.text, lit.pos, f"invalid ID field: {lit.value}",
                                      "INVALID_QUERY_FILTER_OPERATOR")
            return full
        if t in TEXT_TYPES:
            if lit.kind != "string":
                raise self.bad_value(f, lit)
            owner = sel.target or self.obj
            return str(self.literal_map(owner, f.name, lit.value)).lower()
        if t in NUMBER_TYPES:
            if lit.kind != "number":
                raise self.bad_value(f, lit)
            return lit.value
        if t == "boolean":
            if lit.kind != "boolean":
                raise self.bad_value(f, lit)
            return lit.value
        if t == "date":
            if lit.kind == "date":
                return lit.value
            if lit.kind == "date_literal":
                return _date_range(*lit.value, self.today)
            raise self.bad_value(f, lit)
        if t == "datetime":
            if lit.kind == "datetime":
                return parse_datetime(lit.value)
            if lit.kind == "date_literal":
                start, end = _date_range(*lit.value, self.today)
                return (start, end)
            raise self.bad_value(f, lit)
        raise self.bad_value(f, lit)  # pragma: no cover

    def compile(self, node: Any) -> Callable[[Row], bool]:
        if isinstance(node, soql.And):
            parts = [self.compile(p) for p in node.parts]
            return lambda r: all(p(r) for p in parts)
        if isinstance(node, soql.Or):
            parts = [self.compile(p) for p in node.parts]
            return lambda r: any(p(r) for p in parts)
        if isinstance(node, soql.Not):
            inner = self.compile(node.part)
            return lambda r: not inner(r)
        if isinstance(node, soql.In):
            return self.compile_in(node)
        return self.compile_cmp(node)

    def read(self, sel: Selected) -> Getter:
        get = _getter(self.state, sel)
        if sel.field.type in TEXT_TYPES - {"id", "reference"}:
            return lambda r: (v.lower() if isinstance(v := get(r), str) else v)
        return get

    def compile_in(self, node: soql.In) -> Callable[[Row], bool]:
        sel = _resolve(self.state, self.q, self.obj, node.path, node.pos)
        if sel.field.type == "boolean":
            raise soql.soql_error(self.q.text, node.pos, "invalid operator on boolean field",
                                  "INVALID_QUERY_FILTER_OPERATOR")
        values = []
        for lit in node.values:
            v = self.value(sel, lit)
            if isinstance(v, tuple):
                raise soql.soql_error(self.q.text, lit.pos, "date literals are not allowed in IN lists by this "
                                      "sandbox")
            values.append(v)
        allowed, get, negate = frozenset(values), self.read(sel), node.negate
        return (lambda r: get(r) not in allowed) if negate else (lambda r: get(r) in allowed)

    def compile_cmp(self, node: soql.Cmp) -> Callable[[Row], bool]:
        sel = _resolve(self.state, self.q, self.obj, node.path, node.pos)
        f, op, get = sel.field, node.op, self.read(sel)
        if op == "LIKE":
            if f.type not in TEXT_TYPES - {"id", "reference"}:
                raise soql.soql_error(self.q.text, node.pos, f"invalid operator on {_type_name(f)} field",
                                      "INVALID_QUERY_FILTER_OPERATOR")
            pattern = self.like(node.value.value)
            return lambda r: isinstance(v := get(r), str) and pattern.match(v) is not None
        value = self.value(sel, node.value)
        if value is None:
            if op not in ("=", "!="):
                raise soql.soql_error(self.q.text, node.value.pos, "null is only allowed with = and !=",
                                      "INVALID_QUERY_FILTER_OPERATOR")
            return (lambda r: get(r) is None) if op == "=" else (lambda r: get(r) is not None)
        if f.type == "boolean" and op not in ("=", "!="):
            raise soql.soql_error(self.q.text, node.pos, "invalid operator on boolean field",
                                  "INVALID_QUERY_FILTER_OPERATOR")
        if isinstance(value, tuple):  # a date literal: a range of days
            start, end = value
            if f.type == "datetime":
                lo, hi = f"{start.isoformat()}T00:00:00.000+0000", f"{end.isoformat()}T00:00:00.000+0000"
            else:
                lo, hi = start.isoformat(), end.isoformat()
            tests = {"=": lambda v: lo <= v < hi, "!=": lambda v: not lo <= v < hi, "<": lambda v: v < lo,
                     "<=": lambda v: v < hi, ">": lambda v: v >= hi, ">=": lambda v: v >= lo}
        else:
            tests = {"=": lambda v: v == value, "!=": lambda v: v != value, "<": lambda v: v < value,
                     "<=": lambda v: v <= value, ">": lambda v: v > value, ">=": lambda v: v >= value}
        test = tests[op]
        if op == "!=":
            return lambda r: (v := get(r)) is None or test(v)
        return lambda r: (v := get(r)) is not None and test(v)

    @staticmethod
    def like(pattern: str) -> re.Pattern[str]:
        out, i = [], 0
        while i < len(pattern):
            ch = pattern[i]
            if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
                out.append(re.escape(pattern[i + 1]))
                i += 2
                continue
            out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
            i += 1
        return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


def _sort(rows: list[Row], keys: list[tuple[Getter, bool, bool]]) -> None:
    for get, desc, nulls_first in reversed(keys):
        null_rank = (0 if nulls_first else 2) if not desc else (2 if nulls_first else 0)

        def key(r: Row, get: Getter = get, null_rank: int = null_rank) -> tuple[int, Any]:
            v = get(r)
            return (null_rank, None) if v is None else (1, v)

        rows.sort(key=key, reverse=desc)


def run_query(state: CrmState, text: str, *, include_deleted: bool, version: str, batch: int,
              literal_map: LiteralMap, today: date) -> dict[str, Any]:
    """The first page of a query (internal values); opens a cursor when more pages follow."""
    q = soql.parse(text)
    obj = state.object_name(q.obj)
    if obj is None:
        raise soql.soql_error(q.text, q.obj_pos, f"sObject type '{q.obj}' is not supported. If you are attempting "
                              "to use a custom object, be sure to append the '__c' after the entity name. Please "
                              "reference your WSDL or the describe call for the appropriate names.", "INVALID_TYPE")
    selected: list[Selected] = []
    seen: set[str] = set()
    for path, pos in q.fields:
        sel = _resolve(state, q, obj, path, pos)
        key = f"{sel.rel}.{sel.field.name}" if sel.rel else sel.field.name
        if key.lower() in seen:
            raise soql.soql_error(q.text, pos, f"duplicate field selected: {'.'.join(path)}")
        seen.add(key.lower())
        selected.append(sel)
    compiler = _Compiler(state, q, obj, today, literal_map)
    where = compiler.compile(q.where) if q.where is not None else None
    order = [(compiler.read(_resolve(state, q, obj, o.path, o.pos)), o.desc, o.nulls_first) for o in q.order]
    if q.offset is not None and q.offset > MAX_OFFSET:
        raise CrmError(400, "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")

    rows = [r for r in state.records[obj].values()
            if (include_deleted or not r["IsDeleted"]) and (where is None or where(r))]
    if order:
        _sort(rows, order)
    if q.offset:
        rows = rows[q.offset:]
    if q.limit is not None:
        rows = rows[:q.limit]
    if q.count:
        return {"totalSize": len(rows), "done": True, "records": []}
    cursor = Cursor(obj, rows, selected, 0, len(rows), max(200, min(DEFAULT_BATCH, batch)), include_deleted)
    return next_page(state, cursor, version, None)


def next_page(state: CrmState, cursor: Cursor, version: str, locator: str | None) -> dict[str, Any]:
    start, stop = cursor.position, min(cursor.position + cursor.batch, cursor.end)
    records = [_row(state, cursor, r, version) for r in cursor.records[start:stop]]
    cursor.position = stop
    page: dict[str, Any] = {"totalSize": cursor.end, "done": stop >= cursor.end}
    if stop < cursor.end:
        locator = locator or state.cursors.open(cursor)
        endpoint = "queryAll" if cursor.all_rows else "query"
        page["nextRecordsUrl"] = f"/services/data/v{version}/{endpoint}/{locator}-{stop}"
    elif locator is not None:
        state.cursors.close(locator)
    page["records"] = records
    return page


def page_at(state: CrmState, locator_and_offset: str, version: str) -> dict[str, Any]:
    locator, _, offset = locator_and_offset.partition("-")
    cursor = state.cursors.get(locator)
    if cursor is None or not offset.isdigit() or int(offset) > cursor.end:
        raise CrmError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    cursor.position = int(offset)
    return next_page(state, cursor, version, locator)


def _row(state: CrmState, cursor: Cursor, record: Row, version: str) -> Row:
    out: Row = {"attributes": {"type": cursor.obj,
                               "url": f"/services/data/v{version}/sobjects/{cursor.obj}/{record['Id']}"}}
    for sel in cursor.selected:
        if sel.ref_field is None:
            out[sel.field.name] = record.get(sel.field.name)
            continue
        rel = sel.rel or ""
        parent_id = record.get(sel.ref_field)
        parent = state.records[sel.target or ""].get(parent_id or "")
        if parent is None or parent["IsDeleted"]:
            out[rel] = None
            continue
        nested = out.get(rel)
        if nested is None:
            nested = out[rel] = {"attributes": {"type": sel.target,
                                                "url": f"/services/data/v{version}/sobjects/{sel.target}/{parent_id}"}}
        nested[sel.field.name] = parent.get(sel.field.name)
    return out
