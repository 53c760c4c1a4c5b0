"""What every vendor mapping shares: a strict reader over a vendor payload, and small value converters.

A `Reader` reads one object of one vendor at one pinned API version. Every field the mapping expects is
read through it; a missing key, a value of another type, or an enum value the pinned version does not
know raises `SchemaDriftError` naming the field — the mapping never guesses or fills in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.connectors.errors import SchemaDriftError
from core.model import Money

__all__ = ["MISSING", "Reader", "epoch", "iso_date", "iso_datetime", "major_to_money", "unsupported_version"]

MISSING = object()
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "an object",
               list: "a list"}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def unsupported_version(system: str, obj: str, version: str, known: tuple[str, ...]) -> SchemaDriftError:
    return SchemaDriftError(system, obj, None, f"no mapping for API version {version!r}; known: {', '.join(known)}",
                            pinned=version)


class Reader:
    """Strict access to one vendor object. `path` prefixes nested fields in error messages."""

    def __init__(self, system: str, obj: str, payload: Any, version: str, path: str = "") -> None:
        if not isinstance(payload, Mapping):
            raise SchemaDriftError(system, obj, path or None, f"expected an object, got {_describe(payload)}",
                                   pinned=version)
        self.system = system
        self.obj = obj
        self.payload = payload
        self.version = version
        self.path = path

    def _name(self, field: str) -> str:
        return f"{self.path}.{field}" if self.path else field

    def drift(self, field: str | None, detail: str) -> SchemaDriftError:
        name = self._name(field) if field else (self.path or None)
        return SchemaDriftError(self.system, self.obj, name, f"{detail} (pinned API version {self.version})",
                                pinned=self.version)

    def _check(self, field: str, value: Any, types: tuple[type, ...], nullable: bool) -> Any:
        if value is None:
            if nullable:
                return None
            raise self.drift(field, "is null, the pinned version guarantees a value")
        if types:
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if not ok:
                wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
                raise self.drift(field, f"expected {wanted}, got {_describe(value)}")
        return value

    def req(self, field: str, *types: type, nullable: bool = False) -> Any:
        """A field the pinned version always sends (possibly null when `nullable`)."""
        if field not in self.payload:
            raise self.drift(field, "is missing from the response")
        return self._check(field, self.payload[field], types, nullable)

    def opt(self, field: str, *types: type, default: Any = None) -> Any:
        """A field the vendor may leave out (e.g. NetSuite omits nulls)."""
        value = self.payload.get(field, MISSING)
        if value is MISSING or value is None:
            return default
        return self._check(field, value, types, True)

    def enum(self, field: str, mapping: Mapping[str, Any], *, nullable: bool = False, present: bool = True) -> Any:
        """A picklist value, translated; a value the pinned version does not know is drift."""
        raw = self.req(field, str, nullable=nullable) if present else self.opt(field, str)
        if raw is None:
            return None
        if raw not in mapping:
            raise self.drift(field, f"unknown value {raw!r}; the pinned version knows {sorted(mapping)}")
        return mapping[raw]

    def sub(self, field: str, *, nullable: bool = False, present: bool = True) -> Reader | None:
        value = self.req(field, dict, nullable=nullable) if present else self.opt(field, dict)
        if value is None:
            return None
        return Reader(self.system, self.obj, value, self.version, self._name(field))

    def items(self, field: str) -> list[Reader]:
        values = self.req(field, list)
        return [Reader(self.system, self.obj, v, self.version, f"{self._name(field)}[{i}]")
                for i, v in enumerate(values)]

    def number(self, field: str, *, nullable: bool = False, present: bool = True) -> Decimal | None:
        value = self.req(field, int, float, nullable=nullable) if present else self.opt(field, int, float)
        if value is None:
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:  # pragma: no cover - floats always convert
            raise self.drift(field, f"not a number: {value!r}") from exc

    def date(self, field: str, *, nullable: bool = False, present: bool = True) -> date | None:
        value = self.req(field, str, nullable=nullable) if present else self.opt(field, str)
        if value is None:
            return None
        try:
            return date.fromisoformat(value[:10])
        except ValueError as exc:
            raise self.drift(field, f"not a date: {value!r}") from exc

    def datetime(self, field: str, *, nullable: bool = False, present: bool = True) -> datetime | None:
        value = self.req(field, str, nullable=nullable) if present else self.opt(field, str)
        if value is None:
            return None
        try:
            return iso_datetime(value)
        except ValueError as exc:
            raise self.drift(field, f"not a timestamp: {value!r}") from exc

    def epoch(self, field: str, *, nullable: bool = False, present: bool = True) -> datetime | None:
        value = self.req(field, int, nullable=nullable) if present else self.opt(field, int)
        return None if value is None else epoch(value)


def epoch(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def iso_datetime(text: str) -> datetime:
    """ISO 8601 with `Z`, `+00:00` or Salesforce's `+0000`; naive means UTC."""
    norm = text.strip().replace("Z", "+00:00")
    if len(norm) >= 5 and norm[-5] in "+-" and norm[-4:].isdigit():
        norm = norm[:-2] + ":" + norm[-2:]
    parsed = datetime.fromisoformat(norm)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_date(value: date) -> str:
    return value.isoformat()


def major_to_money(amount: Decimal, currency: str) -> Money:
    """Major units (NetSuite, Salesforce, Gainsight: 12.5) -> Money; float noise beyond the exponent is
    rounded away (the vendors store 2 decimals)."""
    from core.model.iso4217 import EXPONENTS

    exponent = EXPONENTS[currency]
    quantized = amount.quantize(Decimal(1).scaleb(-exponent))
    return Money.from_major(quantized, currency)
