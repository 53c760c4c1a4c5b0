"""A SOQL subset: tokenizer and parser into a small AST. Evaluation lives in `query.py`.

    SELECT field[, Relationship.field ...] | COUNT()
    FROM object
    [WHERE cond]       cond: cond AND|OR cond | NOT cond | (cond) | field op literal
                       | field [NOT] IN (literal, ...) | field LIKE 'pattern'
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
    [LIMIT n] [OFFSET n]

Literals: 'strings' (with backslash escapes), numbers, true/false, null, dates (2026-01-31), datetimes
(2026-01-31T10:00:00Z / +01:00), and date literals TODAY, YESTERDAY, TOMORROW, THIS_/LAST_/NEXT_ WEEK,
MONTH, YEAR, LAST_N_DAYS:n, NEXT_N_DAYS:n. Keywords are case-insensitive. Errors are `CrmError`s with
MALFORMED_QUERY, shaped like Salesforce's ("ERROR at Row:1:Column:n").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mocks.crm.errors import CrmError

__all__ = ["And", "Cmp", "In", "Literal", "Not", "Or", "Order", "Query", "parse", "soql_error"]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\",
            "%": "\\%", "_": "\\_"}  # \% and \_ stay escaped: they only mean something to LIKE
RESERVED = {"AND", "OR", "NOT", "SELECT", "FROM", "WHERE", "ORDER", "BY", "LIMIT", "OFFSET", "ASC", "DESC",
            "NULLS", "FIRST", "LAST", "IN", "LIKE", "NULL", "TRUE", "FALSE", "GROUP", "HAVING"}
DATE_LITERALS = {"TODAY", "YESTERDAY", "TOMORROW", "THIS_WEEK", "LAST_WEEK", "NEXT_WEEK", "THIS_MONTH",
                 "LAST_MONTH", "NEXT_MONTH", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR"}
DATE_N_LITERALS = {"LAST_N_DAYS", "NEXT_N_DAYS"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass(frozen=True)
class Literal:
    kind: str  # string | number | boolean | null | date | datetime | date_literal
    value: Any
    pos: int = 0


@dataclass(frozen=True)
class Cmp:
    path: tuple[str, ...]
    op: str  # = != < > <= >= LIKE
    value: Literal
    pos: int = 0


@dataclass(frozen=True)
class In:
    path: tuple[str, ...]
    values: tuple[Literal, ...]
    negate: bool
    pos: int = 0


@dataclass(frozen=True)
class And:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    part: Any


@dataclass(frozen=True)
class Order:
    path: tuple[str, ...]
    desc: bool
    nulls_first: bool
    pos: int = 0


@dataclass
class Query:
    text: str
    fields: list[tuple[tuple[str, ...], int]]  # (path, position)
    obj: str
    obj_pos: int
    count: bool = False
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


def soql_error(text: str, pos: int, message: str, code: str = "MALFORMED_QUERY") -> CrmError:
    """Salesforce's shape: the query, a caret under the spot, the row and column, then the reason."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    row = text.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    caret = " " * (column - 1) + "^"
    return CrmError(400, code, f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{message}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise soql_error(text, pos, f"unexpected token: '{text[pos:pos + 20].split()[0]}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # ---- cursor helpers ----
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def at_keyword(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "ident" and tok.upper in words

    def error(self, message: str | None = None) -> CrmError:
        tok = self.peek()
        if tok is None:
            return soql_error(self.text, len(self.text), message or "unexpected end of query")
        return soql_error(self.text, tok.pos, message or f"unexpected token: '{tok.text}'")

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise self.error()
        self.i += 1
        return tok

    def expect_keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise self.error()
        return self.take()

    def expect_punct(self, ch: str) -> Token:
        tok = self.peek()
        if tok is None or tok.text != ch:
            raise self.error()
        return self.take()

    def field_path(self) -> tuple[tuple[str, ...], int]:
        tok = self.peek()
        if tok is None or tok.kind != "ident" or tok.upper in RESERVED:
            raise self.error()
        self.i += 1
        return tuple(tok.text.split(".")), tok.pos

    # ---- grammar ----
    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[tuple[tuple[str, ...], int]] = []
        count = False
        tok = self.peek()
        nxt = self.peek(1)
        if tok is not None and tok.upper == "COUNT" and nxt is not None and nxt.text == "(":
            self.i += 2
            self.expect_punct(")")
            count = True
        else:
            while True:
                tok = self.peek()
                if tok is not None and tok.text == "(":
                    raise self.error("Nested queries (relationship subqueries) are not supported by this sandbox")
                path, pos = self.field_path()
                nxt = self.peek()
                if nxt is not None and nxt.text == "(":
                    raise soql_error(self.text, pos, f"Unsupported function: {'.'.join(path)}")
                fields.append((path, pos))
                tok = self.peek()
                if tok is None or tok.text != ",":
                    break
                self.take()
        self.expect_keyword("FROM")
        obj_tok = self.take()
        if obj_tok.kind != "ident" or "." in obj_tok.text or obj_tok.upper in RESERVED:
            raise soql_error(self.text, obj_tok.pos, f"unexpected token: '{obj_tok.text}'")
        q = Query(self.text, fields, obj_tok.text, obj_tok.pos, count=count)
        if self.at_keyword("WHERE"):
            self.take()
            q.where = self.or_expr()
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            q.order = self.order_list()
        if self.at_keyword("LIMIT"):
            self.take()
            q.limit = self.non_negative_int()
        if self.at_keyword("OFFSET"):
            self.take()
            q.offset = self.non_negative_int()
        if self.peek() is not None:
            raise self.error()
        if not fields and not count:
            raise self.error()
        return q

    def non_negative_int(self) -> int:
        tok = self.take()
        if tok.kind != "number" or not tok.text.isdigit():
            raise soql_error(self.text, tok.pos, f"unexpected token: '{tok.text}'")
        return int(tok.text)

    def order_list(self) -> list[Order]:
        out: list[Order] = []
        while True:
            path, pos = self.field_path()
            desc = False
            if self.at_keyword("ASC", "DESC"):
                desc = self.take().upper == "DESC"
            nulls_first = not desc
            if self.at_keyword("NULLS"):
                self.take()
                if not self.at_keyword("FIRST", "LAST"):
                    raise self.error()
                nulls_first = self.take().upper == "FIRST"
            out.append(Order(path, desc, nulls_first, pos))
            tok = self.peek()
            if tok is None or tok.text != ",":
                return out
            self.take()

    def or_expr(self) -> Any:
        parts = [self.and_expr()]
        while self.at_keyword("OR"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Any:
        parts = [self.not_expr()]
        while self.at_keyword("AND"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_expr(self) -> Any:
        if self.at_keyword("NOT"):
            self.take()
            return Not(self.not_expr())
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            inner = self.or_expr()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Any:
        path, pos = self.field_path()
        tok = self.peek()
        if tok is None:
            raise self.error()
        if tok.kind == "op":
            self.take()
            op = "!=" if tok.text == "<>" else tok.text
            return Cmp(path, op, self.literal(), pos)
        if self.at_keyword("LIKE"):
            self.take()
            value = self.literal()
            if value.kind != "string":
                raise soql_error(self.text, value.pos, "LIKE needs a quoted string pattern")
            return Cmp(path, "LIKE", value, pos)
        negate = False
        if self.at_keyword("NOT"):
            self.take()
            negate = True
            if not self.at_keyword("IN"):
                raise self.error()
        if self.at_keyword("IN"):
            self.take()
            self.expect_punct("(")
            tok = self.peek()
            if tok is not None and tok.kind == "ident" and tok.upper == "SELECT":
                raise self.error("Semi-join subqueries are not supported by this sandbox")
            values = [self.literal()]
            while (tok := self.peek()) is not None and tok.text == ",":
                self.take()
                values.append(self.literal())
            self.expect_punct(")")
            return In(path, tuple(values), negate, pos)
        raise self.error()

    def literal(self) -> Literal:
        tok = self.take()
        if tok.kind == "string":
            return Literal("string", _unquote(tok.text), tok.pos)
        if tok.kind == "number":
            return Literal("number", float(tok.text) if "." in tok.text else int(tok.text), tok.pos)
        if tok.kind == "date":
            return Literal("date", tok.text, tok.pos)
        if tok.kind == "datetime":
            return Literal("datetime", tok.text, tok.pos)
        if tok.kind == "ident":
            word = tok.upper
            if word == "NULL":
                return Literal("null", None, tok.pos)
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", tok.pos)
            if word in DATE_LITERALS:
                return Literal("date_literal", (word, 0), tok.pos)
            if word in DATE_N_LITERALS:
                self.expect_punct(":")
                n = self.non_negative_int()
                return Literal("date_literal", (word, n), tok.pos)
        raise soql_error(self.text, tok.pos, f"unexpected token: '{tok.text}'")


def parse(text: str) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise CrmError(400, "MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(text).query()
