"""Gainsight's read filter: `where.conditions` with aliases, joined by `where.expression` (AND / OR / ()).

Conditions arrive already translated to internal field names and values; this module knows nothing of
API versions or HTTP. Records are plain dicts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from mocks.cs.errors import INVALID_REQUEST, CSError

__all__ = ["OPERATORS", "Condition", "compile_where", "order_and_page"]

Record = dict[str, Any]
Predicate = Callable[[Record], bool]
Condition = tuple[str, str, str, list[Any]]  # (alias, field, operator, values)

OPERATORS = ["EQ", "NE", "GT", "GTE", "LT", "LTE", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "IN", "NOT_IN",
             "IS_NULL", "IS_NOT_NULL"]
_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9_]+)")


def _comparable(a: Any, b: Any) -> bool:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numeric) and isinstance(b, numeric)) or (isinstance(a, str) and isinstance(b, str))


def _predicate(field: str, op: str, values: list[Any]) -> Predicate:
    first = values[0] if values else None
    if op == "IS_NULL":
        return lambda r: r.get(field) in (None, "")
    if op == "IS_NOT_NULL":
        return lambda r: r.get(field) not in (None, "")
    if not values:
        raise CSError(INVALID_REQUEST, f"Condition on {field} with operator {op} needs a value")
    if op == "IN":
        return lambda r: r.get(field) in values
    if op == "NOT_IN":
        return lambda r: r.get(field) not in values
    if op == "EQ":
        return lambda r: r.get(field) == first
    if op == "NE":
        return lambda r: r.get(field) != first
    if op in ("CONTAINS", "STARTS_WITH", "ENDS_WITH"):
        needle = str(first).lower()
        test = {"CONTAINS": str.__contains__, "STARTS_WITH": str.startswith, "ENDS_WITH": str.endswith}[op]
        return lambda r: isinstance(r.get(field), str) and test(r[field].lower(), needle)
    compare = {"GT": lambda a, b: a > b, "GTE": lambda a, b: a >= b, "LT": lambda a, b: a < b,
               "LTE": lambda a, b: a <= b}[op]

    def ordered(r: Record) -> bool:
        value = r.get(field)
        return value is not None and _comparable(value, first) and compare(value, first)

    return ordered


def compile_where(conditions: list[Condition], expression: str | None) -> Predicate:
    """One predicate for the whole `where`; the expression defaults to all conditions AND-ed."""
    if not conditions:
        return lambda r: True
    preds: dict[str, Predicate] = {}
    for alias, field, op, values in conditions:
        if op not in OPERATORS:
            raise CSError(INVALID_REQUEST, f"Unsupported operator {op!r}; supported: {OPERATORS}")
        if alias in preds:
            raise CSError(INVALID_REQUEST, f"Duplicate condition alias {alias!r}")
        preds[alias] = _predicate(field, op, values)
    if not expression or not expression.strip():
        all_preds = list(preds.values())
        return lambda r: all(p(r) for p in all_preds)
    return _Parser(expression, preds).parse()


class _Parser:
    """expr := term (OR term)* ; term := factor (AND factor)* ; factor := alias | ( expr )."""

    def __init__(self, text: str, preds: dict[str, Predicate]) -> None:
        self.text = text
        self.preds = preds
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None:
                self.fail()
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0

    def fail(self) -> None:
        raise CSError(INVALID_REQUEST, f"Invalid where expression: {self.text!r}")

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            self.fail()
        self.i += 1
        return tok  # type: ignore[return-value]

    def parse(self) -> Predicate:
        pred = self.expr()
        if self.peek() is not None:
            self.fail()
        return pred

    def expr(self) -> Predicate:
        parts = [self.term()]
        while (self.peek() or "").upper() == "OR":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def term(self) -> Predicate:
        parts = [self.factor()]
        while (self.peek() or "").upper() == "AND":
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def factor(self) -> Predicate:
        tok = self.take()
        if tok == "(":
            pred = self.expr()
            if self.take() != ")":
                self.fail()
            return pred
        if tok not in self.preds:
            raise CSError(INVALID_REQUEST, f"Unknown condition alias {tok!r} in where expression")
        return self.preds[tok]


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def order_and_page(records: Iterable[Record], where: Predicate, order: list[tuple[str, bool]],
                   limit: int, offset: int) -> list[Record]:
    """Filter, sort (stable, several keys; nulls last) and slice. Default order is insertion order."""
    hits = [r for r in records if where(r)]
    for field, descending in reversed(order):
        hits.sort(key=lambda r, f=field: _sort_key(r.get(f)), reverse=descending)
    return hits[offset:offset + limit]
