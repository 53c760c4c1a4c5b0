"""A SuiteQL subset for `POST /services/rest/query/v1/suiteql`. No HTTP.

Supported: `SELECT [DISTINCT] * | expr [[AS] alias], ... FROM <table> [alias] [WHERE cond] [ORDER BY
expr|alias|position [ASC|DESC], ...]`. Conditions: `= != <> < <= > >=`, `[NOT] LIKE` (`%`, `_`),
`[NOT] IN (...)`, `[NOT] BETWEEN a AND b`, `IS [NOT] NULL`, AND / OR / NOT and parentheses. Expressions:
columns (optionally `alias.column`), string / number literals, NULL, `COUNT(*)` (the whole result as
one row), `UPPER()`, `LOWER()`, `BUILTIN.DF(column)` (display value), `TO_DATE('2026-01-31',
'YYYY-MM-DD')`. Keywords and names are case-insensitive; result columns are lower-cased.

Tables: `customer`, `item`, `transaction` (type `SalesOrd` / `CustInvc` / `CustCred`), `subsidiary`,
`currency`, `term`. Like NetSuite: ids come back as strings, booleans as 'T' / 'F', dates as M/D/YYYY,
and null columns are left out of a row. Joins, GROUP BY and subqueries are not supported.
Errors raise `SuiteQLError` with a message in NetSuite's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from mocks.erp.versions import STATUS_IDS

if TYPE_CHECKING:
    from mocks.erp.models import ErpState

__all__ = ["SuiteQLError", "run_suiteql"]

Row = dict[str, Any]


class SuiteQLError(ValueError):
    pass


# ---- tables ------------------------------------------------------------------------------------------
TRAN_TYPES = {"salesOrder": ("SalesOrd", "Sales Order"), "invoice": ("CustInvc", "Invoice"),
              "creditMemo": ("CustCred", "Credit Memo")}


def _tf(value: Any) -> str:
    return "T" if value else "F"


def _day(value: str | None) -> date | None:
    return None if not value else date.fromisoformat(value[:10])


def _customer_rows(state: ErpState) -> Iterable[tuple[Row, Row]]:
    for rec in state.records["customer"].values():
        row = {"id": rec["id"], "entityid": rec["companyName"], "companyname": rec["companyName"],
               "legalname": rec.get("legalName"), "email": rec.get("email"), "phone": rec.get("phone"),
               "externalid": rec.get("externalId"), "subsidiary": rec["subsidiary"], "currency": rec["currency"],
               "terms": rec.get("terms"), "creditlimit": rec.get("creditLimit"),
               "creditholdoverride": rec["creditHoldOverride"], "isinactive": _tf(rec.get("isInactive")),
               "datecreated": _day(rec.get("dateCreated")), "lastmodifieddate": _day(rec.get("lastModifiedDate"))}
        yield row, _display(state, row)


def _item_rows(state: ErpState) -> Iterable[tuple[Row, Row]]:
    for rec in state.records["item"].values():
        row = {"id": rec["id"], "itemid": rec["itemId"], "displayname": rec.get("displayName"),
               "description": rec.get("description"), "itemtype": rec["itemType"], "baseprice": rec.get("basePrice"),
               "externalid": rec.get("externalId"), "isinactive": _tf(rec.get("isInactive")),
               "createddate": _day(rec.get("createdDate")), "lastmodifieddate": _day(rec.get("lastModifiedDate"))}
        yield row, _display(state, row)


def _transaction_rows(state: ErpState) -> Iterable[tuple[Row, Row]]:
    for rtype, (code, label) in TRAN_TYPES.items():
        for rec in state.records[rtype].values():
            remaining = rec.get("amountRemaining") if rtype == "invoice" else rec.get("unapplied")
            row = {"id": rec["id"], "tranid": rec["tranId"], "type": code, "entity": rec["entity"],
                   "trandate": _day(rec.get("tranDate")), "duedate": _day(rec.get("dueDate")),
                   "status": STATUS_IDS[rtype].get(rec["status"], rec["status"]),
                   "foreigntotal": rec["total"], "foreignamountunpaid": remaining,
                   "createdfrom": rec.get("createdFrom"), "externalid": rec.get("externalId"),
                   "memo": rec.get("memo"), "currency": rec.get("currency"), "terms": rec.get("terms"),
                   "createddate": _day(rec.get("createdDate")), "lastmodifieddate": _day(rec.get("lastModifiedDate"))}
            display = _display(state, row)
            display["type"] = label
            display["status"] = f"{label} : {rec['status']}"
            yield row, display


def _list_rows(name: str, columns: Callable[[dict[str, Any]], Row]) -> Callable[[ErpState], Iterable[tuple[Row, Row]]]:
    def rows(state: ErpState) -> Iterable[tuple[Row, Row]]:
        for entry in state.lists[name].values():
            row = columns(entry)
            yield row, _display(state, row)

    return rows


def _display(state: ErpState, row: Row) -> Row:
    """BUILTIN.DF values: the name behind a reference column."""
    out: Row = {}
    for col, target in (("entity", "customer"), ("subsidiary", "subsidiary"), ("currency", "currency"),
                        ("terms", "terms")):
        ref = row.get(col)
        if ref is None:
            continue
        if target == "customer":
            rec = state.records["customer"].get(ref)
            out[col] = rec["companyName"] if rec else None
        else:
            entry = state.lists[target].get(ref) or {}
            out[col] = entry.get("symbol") or entry.get("name")
    created_from = row.get("createdfrom")
    if created_from is not None:
        for rtype in ("salesOrder", "invoice"):
            rec = state.records[rtype].get(created_from)
            if rec is not None:
                out["createdfrom"] = f"{TRAN_TYPES[rtype][1]} #{rec['tranId']}"
    return out


TABLES: dict[str, Callable[[ErpState], Iterable[tuple[Row, Row]]]] = {
    "customer": _customer_rows,
    "item": _item_rows,
    "transaction": _transaction_rows,
    "subsidiary": _list_rows("subsidiary", lambda e: {"id": e["id"], "name": e["name"], "country": e["country"],
                                                      "currency": e["currency"]}),
    "currency": _list_rows("currency", lambda e: {"id": e["id"], "symbol": e["symbol"], "name": e["name"]}),
    "term": _list_rows("terms", lambda e: {"id": e["id"], "name": e["name"], "daysuntilnetdue": e["days"]}),
}
COLUMNS = {
    "customer": ["id", "entityid", "companyname", "legalname", "email", "phone", "externalid", "subsidiary",
                 "currency", "terms", "creditlimit", "creditholdoverride", "isinactive", "datecreated",
                 "lastmodifieddate"],
    "item": ["id", "itemid", "displayname", "description", "itemtype", "baseprice", "externalid", "isinactive",
             "createddate", "lastmodifieddate"],
    "transaction": ["id", "tranid", "type", "entity", "trandate", "duedate", "status", "foreigntotal",
                    "foreignamountunpaid", "createdfrom", "externalid", "memo", "currency", "terms", "createddate",
                    "lastmodifieddate"],
    "subsidiary": ["id", "name", "country", "currency"],
    "currency": ["id", "symbol", "name"],
    "term": ["id", "name", "daysuntilnetdue"],
}

# ---- tokens ---------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<op><=|>=|<>|!=|=|<|>|\(|\)|,|\*|\.)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)
KEYWORDS = {"SELECT", "DISTINCT", "FROM", "WHERE", "ORDER", "BY", "ASC", "DESC", "AND", "OR", "NOT", "LIKE", "IN",
            "IS", "NULL", "BETWEEN", "AS"}


def _tokenize(q: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos, q = 0, q.rstrip().rstrip(";")
    while pos < len(q):
        if q[pos:].strip() == "":
            break
        m = _TOKEN.match(q, pos)
        if m is None:
            raise SuiteQLError(f"Syntax error near '{q[pos:pos + 20].strip()}'.")
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind == "str":
            out.append(("lit", text[1:-1].replace("''", "'")))
        elif kind == "num":
            out.append(("lit", float(text) if "." in text else int(text)))
        elif kind == "name" and text.upper() in KEYWORDS:
            out.append(("kw", text.upper()))
        elif kind == "name":
            out.append(("name", text.lower()))
        else:
            out.append(("op", text))
    return out


# ---- evaluation helpers ----------------------------------------------------------------------------------
Expr = Callable[[Row, Row], Any]


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
            try:
                return datetime.strptime(value[:10] if fmt == "%Y-%m-%d" else value, fmt).date()
            except ValueError:
                continue
    return None


def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, date) or isinstance(b, date):
        return _as_date(a), _as_date(b)
    num_a, num_b = isinstance(a, int | float), isinstance(b, int | float)
    if num_a != num_b:
        try:
            return float(a), float(b)
        except (TypeError, ValueError):
            return str(a), str(b)
    return a, b


def _cmp(op: str, a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    a, b = _coerce_pair(a, b)
    if a is None or b is None:
        return None
    try:
        return {"=": a == b, "!=": a != b, "<>": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except TypeError as exc:
        raise SuiteQLError("Invalid comparison between incompatible types.") from exc


def _like(value: Any, pattern: Any) -> bool | None:
    if value is None or pattern is None:
        return None
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, str(value), re.DOTALL) is not None


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], table: str | None = None) -> None:
        self.t = tokens
        self.i = 0
        self.table = table
        self.alias: str | None = None
        self.columns: set[str] = set()

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        j = self.i + offset
        return self.t[j] if j < len(self.t) else ("end", None)

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok[0] == "end":
            raise SuiteQLError("Unexpected end of query.")
        self.i += 1
        return tok

    def accept(self, kind: str, value: Any = None) -> bool:
        tok = self.peek()
        if tok[0] == kind and (value is None or tok[1] == value):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: Any = None) -> Any:
        tok = self.peek()
        if tok[0] != kind or (value is not None and tok[1] != value):
            shown = tok[1] if tok[0] != "end" else "end of query"
            raise SuiteQLError(f"Syntax error: expected {value or kind} but found '{shown}'.")
        self.i += 1
        return tok[1]

    # expressions -------------------------------------------------------------------------------------
    def column_name(self, name: str) -> str:
        if self.accept("op", "."):
            if name != self.alias and name != self.table:
                raise SuiteQLError(f"Unknown table alias '{name}'.")
            name = self.expect("name")
        if name not in self.columns:
            raise SuiteQLError(f"Field '{name}' for record '{self.table}' was not found. Reason: NOT_EXPOSED - "
                               "Not available for channel SEARCH")
        return name

    def column(self, name: str) -> Expr:
        name = self.column_name(name)
        return lambda row, _d: row.get(name)

    def operand(self) -> Expr:
        kind, value = self.take()
        if kind == "lit":
            return lambda _r, _d: value
        if kind == "kw" and value == "NULL":
            return lambda _r, _d: None
        if kind == "op" and value == "(":
            inner = self.condition()
            self.expect("op", ")")
            return inner
        if kind != "name":
            raise SuiteQLError(f"Syntax error near '{value}'.")
        if value == "builtin" and self.accept("op", "."):
            fn = self.expect("name")
            if fn != "df":
                raise SuiteQLError(f"Unknown function BUILTIN.{fn.upper()}.")
            self.expect("op", "(")
            name = self.column_name(self.expect("name"))
            self.expect("op", ")")
            return lambda row, disp: disp.get(name, row.get(name))
        if self.peek() == ("op", "(") and value in ("upper", "lower", "to_date"):
            self.take()
            arg = self.operand()
            if value == "to_date":
                self.expect("op", ",")
                self.expect("lit")
                self.expect("op", ")")
                return lambda row, disp: _as_date(arg(row, disp))
            self.expect("op", ")")
            fn = str.upper if value == "upper" else str.lower
            return lambda row, disp: None if (v := arg(row, disp)) is None else fn(str(v))
        if self.peek() == ("op", "("):
            raise SuiteQLError(f"Unknown function {value.upper()}.")
        return self.column(value)

    def predicate(self) -> Expr:
        left = self.operand()
        negate = self.accept("kw", "NOT")
        kind, value = self.peek()
        if kind == "op" and value in ("=", "!=", "<>", "<", "<=", ">", ">="):
            if negate:
                raise SuiteQLError("Syntax error near 'NOT'.")
            self.take()
            right = self.operand()
            return lambda row, disp: _cmp(value, left(row, disp), right(row, disp))
        if self.accept("kw", "LIKE"):
            right = self.operand()
            return _maybe_not(lambda row, disp: _like(left(row, disp), right(row, disp)), negate)
        if self.accept("kw", "IN"):
            self.expect("op", "(")
            options = [self.operand()]
            while self.accept("op", ","):
                options.append(self.operand())
            self.expect("op", ")")

            def within(row: Row, disp: Row) -> bool | None:
                v = left(row, disp)
                if v is None:
                    return None
                return any(_cmp("=", v, o(row, disp)) for o in options)

            return _maybe_not(within, negate)
        if self.accept("kw", "BETWEEN"):
            lo = self.operand()
            self.expect("kw", "AND")
            hi = self.operand()

            def between(row: Row, disp: Row) -> bool | None:
                v = left(row, disp)
                a, b = _cmp(">=", v, lo(row, disp)), _cmp("<=", v, hi(row, disp))
                return None if a is None or b is None else a and b

            return _maybe_not(between, negate)
        if not negate and self.accept("kw", "IS"):
            is_not = self.accept("kw", "NOT")
            self.expect("kw", "NULL")
            return lambda row, disp: (left(row, disp) is None) != is_not
        if negate:
            raise SuiteQLError("Syntax error near 'NOT'.")
        return left

    def negation(self) -> Expr:
        if self.accept("kw", "NOT"):
            inner = self.negation()
            return lambda row, disp: None if (v := inner(row, disp)) is None else not v
        return self.predicate()

    def conjunction(self) -> Expr:
        parts = [self.negation()]
        while self.accept("kw", "AND"):
            parts.append(self.negation())
        if len(parts) == 1:
            return parts[0]
        return lambda row, disp: all(p(row, disp) for p in parts)

    def condition(self) -> Expr:
        parts = [self.conjunction()]
        while self.accept("kw", "OR"):
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda row, disp: any(p(row, disp) for p in parts)


def _maybe_not(fn: Expr, negate: bool) -> Expr:
    if not negate:
        return fn
    return lambda row, disp: None if (v := fn(row, disp)) is None else not v


def _find_table(tokens: list[tuple[str, Any]]) -> tuple[str, str | None]:
    depth = 0
    for j, tok in enumerate(tokens):
        if tok == ("op", "("):
            depth += 1
        elif tok == ("op", ")"):
            depth -= 1
        elif tok == ("kw", "FROM") and depth == 0:
            name = tokens[j + 1] if j + 1 < len(tokens) else ("end", None)
            if name[0] != "name":
                raise SuiteQLError("Syntax error: expected a table name after FROM.")
            alias = tokens[j + 2][1] if j + 2 < len(tokens) and tokens[j + 2][0] == "name" else None
            return name[1], alias
    raise SuiteQLError("Syntax error: missing FROM clause.")


def _out(value: Any) -> Any:
    if isinstance(value, date):
        return f"{value.month}/{value.day}/{value.year}"
    return value


def run_suiteql(state: ErpState, q: str) -> list[Row]:
    """Every result row (unpaginated), columns lower-cased, null columns left out."""
    if not isinstance(q, str) or not q.strip():
        raise SuiteQLError("The query is empty.")
    if len(q) > 100_000:
        raise SuiteQLError("The query is too long.")
    tokens = _tokenize(q)
    table, alias = _find_table(tokens)
    if table not in TABLES:
        raise SuiteQLError(f"Record '{table}' was not found.")
    p = _Parser(tokens, table)
    p.alias = alias
    p.columns = set(COLUMNS[table])
    p.expect("kw", "SELECT")
    distinct = p.accept("kw", "DISTINCT")
    select: list[tuple[str, Expr]] = []
    star = counting = False
    if p.accept("op", "*"):
        star = True
    else:
        n = 0
        while True:
            n += 1
            start = p.i
            if p.peek() == ("name", "count") and p.peek(1) == ("op", "("):
                p.i += 2
                p.expect("op", "*")
                p.expect("op", ")")
                counting = True
                expr: Expr = lambda _r, _d: None  # noqa: E731 - replaced by the count below
                name = f"expr{n}"
            else:
                expr = p.operand()
                simple = p.i - start == 1 or (p.i - start == 3 and p.t[start + 1] == ("op", "."))
                name = p.t[p.i - 1][1] if simple and p.t[p.i - 1][0] == "name" else f"expr{n}"
            if p.accept("kw", "AS"):
                name = p.expect("name")
            elif p.peek()[0] == "name":
                name = p.take()[1]
            select.append((name, expr))
            if not p.accept("op", ","):
                break
    p.expect("kw", "FROM")
    p.expect("name")
    if alias is not None:
        p.take()
    where = p.condition() if p.accept("kw", "WHERE") else None
    order: list[tuple[Expr | int | str, bool]] = []
    if p.accept("kw", "ORDER"):
        p.expect("kw", "BY")
        while True:
            kind, value = p.peek()
            names = [n for n, _ in select]
            if kind == "lit" and isinstance(value, int):
                p.take()
                if not 1 <= value <= max(len(select), 1) or star:
                    raise SuiteQLError(f"ORDER BY position {value} is out of range.")
                key: Expr | int | str = value - 1
            elif kind == "name" and value in names and p.peek(1) != ("op", "."):
                p.take()
                key = value
            else:
                key = p.operand()
            desc = p.accept("kw", "DESC")
            if not desc:
                p.accept("kw", "ASC")
            order.append((key, desc))
            if not p.accept("op", ","):
                break
    if p.peek()[0] != "end":
        raise SuiteQLError(f"Syntax error near '{p.peek()[1]}'.")

    matched = [(row, disp) for row, disp in TABLES[table](state) if where is None or where(row, disp) is True]
    matched.sort(key=lambda entry: int(entry[0]["id"]))
    if counting:
        if len(select) != 1:
            raise SuiteQLError("COUNT(*) cannot be combined with other columns without GROUP BY.")
        return [{select[0][0]: len(matched)}]
    if star:
        results = [(dict(row), row, disp) for row, disp in matched]
    else:
        results = [({name: fn(row, disp) for name, fn in select}, row, disp) for row, disp in matched]
    for key, desc in reversed(order):
        def sort_key(entry: tuple[Row, Row, Row], key: Any = key) -> tuple[int, Any]:
            out, row, disp = entry
            if isinstance(key, int):
                value = list(out.values())[key]
            elif isinstance(key, str):
                value = out.get(key)
            else:
                value = key(row, disp)
            if value is None:
                return (1, 0)
            return (0, value if not isinstance(value, str) else value.casefold())

        nulls = [e for e in results if sort_key(e)[0] == 1]
        present = [e for e in results if sort_key(e)[0] == 0]
        try:
            present.sort(key=sort_key, reverse=desc)
        except TypeError as exc:
            raise SuiteQLError("ORDER BY mixes incompatible types.") from exc
        results = present + nulls if not desc else nulls + present
    rows = [{k: _out(v) for k, v in out.items() if v is not None} for out, _, _ in results]
    if distinct:
        seen: set[tuple[Any, ...]] = set()
        unique = []
        for r in rows:
            sig = tuple(sorted(r.items()))
            if sig not in seen:
                seen.add(sig)
                unique.append(r)
        rows = unique
    return rows
