"""The `q` filter of record collection GETs: `GET /customer?q=companyName START_WITH "Acme" AND isInactive IS false`.

NetSuite's syntax: `<field> <OPERATOR> <value>` conditions joined by AND / OR (AND binds tighter; no
parentheses). Values are quoted ("..." or '...'), bare words or numbers; ANY_OF takes `[a, b]`;
BETWEEN takes two values; EMPTY / EMPTY_NOT take none. Reference fields compare by internal id.
A malformed query raises ValueError (the API renders NetSuite's 400 "Invalid search query").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["compile_filter"]

Json = dict[str, Any]
Predicate = Callable[[Json], bool]

_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|(\[)|(\])|(,)|([^\s,\[\]"\']+))')


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"unexpected character at position {pos}")
        pos = m.end()
        dq, sq, lb, rb, comma, word = m.groups()
        if dq is not None or sq is not None:
            out.append(("str", (dq if dq is not None else sq).replace('\\"', '"').replace("\\'", "'")))
        elif lb:
            out.append(("[", None))
        elif rb:
            out.append(("]", None))
        elif comma:
            out.append((",", None))
        else:
            out.append(("word", word))
    return out


def _scalar(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("id")
    return value


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _literal(kind: str, raw: Any) -> Any:
    if kind == "str":
        return raw
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return raw


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _compare(op: str, actual: Any, wanted: list[Any]) -> bool:
    actual = _scalar(actual)
    if op in ("EMPTY", "EMPTY_NOT"):
        empty = actual is None or actual == "" or actual == []
        return empty if op == "EMPTY" else not empty
    if actual is None:
        return op.endswith("_NOT")
    w = wanted[0] if wanted else None
    if op in ("IS", "IS_NOT"):
        hit = _text(actual).casefold() == _text(w).casefold() if not isinstance(actual, bool) else actual == w
        return hit if op == "IS" else not hit
    if op in ("ANY_OF", "ANY_OF_NOT"):
        hit = _text(actual).casefold() in {_text(v).casefold() for v in wanted}
        return hit if op == "ANY_OF" else not hit
    text, needle = _text(actual).casefold(), _text(w).casefold()
    string_ops = {"START_WITH": text.startswith(needle), "END_WITH": text.endswith(needle), "CONTAIN": needle in text}
    base = op.removesuffix("_NOT")
    if base in string_ops:
        return string_ops[base] if base == op else not string_ops[base]
    # Numbers compare as numbers; dates (YYYY-MM-DD...) and other text as case-folded text.
    def key(value: Any) -> tuple[int, Any]:
        n = _num(value)
        return (0, n) if n is not None else (1, _text(value).casefold())

    a = key(actual)
    if base == "BETWEEN":
        hit = key(wanted[0]) <= a <= key(wanted[1])
        return hit if op == "BETWEEN" else not hit
    b = key(w)
    table = {
        "EQUAL": a == b, "EQUAL_NOT": a != b, "GREATER": a > b, "GREATER_OR_EQUAL": a >= b,
        "LESS": a < b, "LESS_OR_EQUAL": a <= b, "ON": a == b, "ON_OR_AFTER": a >= b,
        "ON_OR_BEFORE": a <= b, "AFTER": a > b, "BEFORE": a < b,
    }
    return table[op]


NO_VALUE = {"EMPTY", "EMPTY_NOT"}
TWO_VALUES = {"BETWEEN", "BETWEEN_NOT"}
LIST_VALUES = {"ANY_OF", "ANY_OF_NOT"}
ONE_VALUE = {"IS", "IS_NOT", "START_WITH", "START_WITH_NOT", "END_WITH", "END_WITH_NOT", "CONTAIN", "CONTAIN_NOT",
             "EQUAL", "EQUAL_NOT", "GREATER", "GREATER_OR_EQUAL", "LESS", "LESS_OR_EQUAL", "ON", "ON_OR_AFTER",
             "ON_OR_BEFORE", "AFTER", "BEFORE"}
OPERATORS = NO_VALUE | TWO_VALUES | LIST_VALUES | ONE_VALUE


def compile_filter(q: str, fields: set[str]) -> Predicate:
    """A predicate over a rendered record; ValueError naming what is wrong."""
    tokens = _tokens(q)
    if not tokens:
        raise ValueError("empty query")
    pos = 0

    def take() -> tuple[str, Any]:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end of query")
        pos += 1
        return tokens[pos - 1]

    def condition() -> Predicate:
        kind, name = take()
        if kind != "word" or name not in fields:
            raise ValueError(f"unknown field {name!r}")
        kind, op = take()
        op = str(op).upper() if kind == "word" else op
        if op not in OPERATORS:
            raise ValueError(f"unknown operator {op!r}")
        wanted: list[Any] = []
        if op in LIST_VALUES:
            if take()[0] != "[":
                raise ValueError(f"{op} needs a list [a, b]")
            while True:
                k, v = take()
                if k not in ("str", "word"):
                    raise ValueError("bad list")
                wanted.append(_literal(k, v))
                sep = take()[0]
                if sep == "]":
                    break
                if sep != ",":
                    raise ValueError("bad list")
        elif op not in NO_VALUE:
            for _ in range(2 if op in TWO_VALUES else 1):
                k, v = take()
                if k not in ("str", "word"):
                    raise ValueError(f"{op} needs a value")
                wanted.append(_literal(k, v))
        field = name
        return lambda rec: _compare(op, rec.get(field), wanted)

    def conjunction() -> Predicate:
        parts = [condition()]
        while pos < len(tokens) and tokens[pos] == ("word", "AND"):
            take()
            parts.append(condition())
        return parts[0] if len(parts) == 1 else (lambda rec: all(p(rec) for p in parts))

    alternatives = [conjunction()]
    while pos < len(tokens) and tokens[pos] == ("word", "OR"):
        take()
        alternatives.append(conjunction())
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos][1]!r}")
    return alternatives[0] if len(alternatives) == 1 else (lambda rec: any(p(rec) for p in alternatives))
