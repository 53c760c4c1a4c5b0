"""Stripe's request encoding: bracket-nested form bodies and query strings, coerced by a declared spec.

Stripe reads `application/x-www-form-urlencoded` bodies (and GET/DELETE query strings) whose keys nest with
brackets: `metadata[plan]=gold`, `items[0][price]=price_1`, `expand[]=customer`, `expand[0]=customer`.
`decode()` turns the raw bytes into nested dicts and lists; `coerce()` checks them against a small
per-endpoint spec (`Obj`, `Str`, `Int`, `Bool`, `Enum`, `Arr`, `Metadata`, ...), producing the python-typed
params the domain model takes. Everything it refuses becomes a Stripe-style 400 naming the parameter.

A JSON body is not parsed as JSON (Stripe does not either): its text is read as form keys, which are then
"unknown parameters".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from mocks.billing.errors import BillingError, invalid

__all__ = [
    "Any_",
    "Arr",
    "Bool",
    "Decimal",
    "Enum",
    "Expand",
    "Int",
    "Metadata",
    "Obj",
    "Range",
    "Spec",
    "Str",
    "coerce",
    "decode",
    "parse",
    "unknown",
]

MAX_DEPTH = 8
MAX_INDEX = 1000


def unknown(name: str) -> BillingError:
    return invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def _bad_body(message: str, param: str | None = None) -> BillingError:
    return invalid(message, param=param)


def _split_key(key: str) -> list[str]:
    """`a[b][0][]` -> ["a", "b", "0", ""]; raises on unbalanced brackets."""
    head, sep, rest = key.partition("[")
    if not head:
        raise _bad_body(f"Invalid parameter name: {key}", param=key)
    parts = [head]
    if not sep:
        if "]" in head:
            raise _bad_body(f"Invalid parameter name: {key}", param=key)
        return parts
    rest = "[" + rest
    i = 0
    while i < len(rest):
        if rest[i] != "[":
            raise _bad_body(f"Invalid parameter name: {key}", param=key)
        end = rest.find("]", i)
        if end < 0:
            raise _bad_body(f"Invalid parameter name: {key}", param=key)
        inner = rest[i + 1:end]
        if "[" in inner:
            raise _bad_body(f"Invalid parameter name: {key}", param=key)
        parts.append(inner)
        i = end + 1
    if len(parts) > MAX_DEPTH:
        raise _bad_body(f"Parameter nesting is too deep: {key}", param=parts[0])
    return parts


def _display(parts: list[str]) -> str:
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


class _Indexed(dict):  # type: ignore[type-arg]
    """A dict whose keys are array indices (`items[0]`, `expand[]`); becomes a list at the end."""


def _assign(root: dict[str, Any], parts: list[str], value: str) -> None:
    node: dict[str, Any] = root
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, _Indexed):
            if part == "":
                part = str(len(node))
            elif not part.isdigit() or int(part) > MAX_INDEX:
                raise _bad_body(f"Invalid array index in {_display(parts)}", param=_display(parts[:depth]))
        if last:
            if part in node and isinstance(node[part], dict):
                raise _bad_body(f"Invalid value for {_display(parts)}: it is also an object",
                                param=_display(parts))
            node[part] = value
            return
        nxt_is_index = parts[depth + 1] == "" or parts[depth + 1].isdigit()
        child = node.get(part)
        if child is None:
            child = _Indexed() if nxt_is_index else {}
            node[part] = child
        elif not isinstance(child, dict):
            raise _bad_body(f"Invalid value for {_display(parts[:depth + 1])}: it is also an object",
                            param=_display(parts[:depth + 1]))
        elif isinstance(child, _Indexed) and not nxt_is_index:
            # `a[0]=x&a[k]=y`: a mixture; keep it a plain dict so the spec decides.
            plain = dict(child)
            node[part] = plain
            child = plain
        node = child


def _finish(value: Any) -> Any:
    if isinstance(value, _Indexed):
        ordered = sorted(value.items(), key=lambda kv: int(kv[0]))
        return [_finish(v) for _, v in ordered]
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    return value


def decode(raw: bytes | str) -> dict[str, Any]:
    """Raw form / query bytes -> nested dicts and lists of strings."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_body("Invalid request body: it is not valid UTF-8.") from None
    else:
        text = raw
    if not text:
        return {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict",
                          max_num_fields=10_000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_body(f"Invalid request body: {exc}") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        if "[" not in key and "]" not in key:
            if isinstance(root.get(key), dict):
                raise _bad_body(f"Invalid value for {key}: it is also an object", param=key)
            root[key] = value
            continue
        _assign(root, _split_key(key), value)
    return _finish(root)


# ---- the spec -----------------------------------------------------------------------------------------


class Spec:
    """One parameter's type: coerces decoded strings, and describes itself for the OpenAPI document."""

    def coerce(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


def _scalar(value: Any, name: str, what: str) -> str:
    if isinstance(value, dict | list):
        raise invalid(f"Invalid {what}: {name} must be a {what}, not an object or array", param=name)
    return value


class Str(Spec):
    def __init__(self, max_length: int = 5000) -> None:
        self.max_length = max_length

    def coerce(self, value: Any, name: str) -> Any:
        value = _scalar(value, name, "string")
        if value == "":
            return None
        if len(value) > self.max_length:
            raise invalid(f"Invalid string: {name} must be at most {self.max_length} characters", param=name)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_length}


class Int(Spec):
    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def coerce(self, value: Any, name: str) -> Any:
        value = _scalar(value, name, "integer")
        if value == "":
            return None
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
            raise invalid(f"Invalid integer: {value}", param=name)
        number = int(text)
        if self.minimum is not None and number < self.minimum:
            raise invalid(f"This value must be greater than or equal to {self.minimum}.", param=name)
        if self.maximum is not None and number > self.maximum:
            raise invalid(f"This value must be less than or equal to {self.maximum}.", param=name)
        return number

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


class Decimal(Spec):
    """A decimal number sent as a string (`unit_amount_decimal=12.5`); kept as the string it was."""

    def coerce(self, value: Any, name: str) -> Any:
        value = _scalar(value, name, "decimal")
        if value == "":
            return None
        text = value.strip()
        body = text[1:] if text[:1] in "+-" else text
        whole, _, frac = body.partition(".")
        if not (whole or frac) or not (whole + frac).isascii() or not (whole + frac).isdigit() or len(body) > 30:
            raise invalid(f"Invalid decimal: {value}", param=name)
        return text

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}


class Bool(Spec):
    def coerce(self, value: Any, name: str) -> Any:
        value = _scalar(value, name, "boolean")
        if value == "":
            return None
        if value == "true":
            return True
        if value == "false":
            return False
        raise invalid(f"Invalid boolean: {value}", param=name)

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class Enum(Spec):
    def __init__(self, *values: str) -> None:
        self.values = values

    def coerce(self, value: Any, name: str) -> Any:
        value = _scalar(value, name, "string")
        if value == "":
            return None
        if value not in self.values:
            allowed = ", ".join(f"`{v}`" for v in self.values)
            raise invalid(f"Invalid {name}: must be one of {allowed}", param=name)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


class Any_(Spec):
    def coerce(self, value: Any, name: str) -> Any:
        return value

    def schema(self) -> dict[str, Any]:
        return {}


class Metadata(Spec):
    """`metadata[k]=v` (string values; `metadata[k]=` unsets k; `metadata=` unsets all)."""

    MAX_KEYS = 50

    def coerce(self, value: Any, name: str) -> Any:
        if value == "":
            return ""  # `metadata=`: unset every key (the model's semantics)
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {name} must be an object (e.g. {name}[key]=value)", param=name)
        if len(value) > self.MAX_KEYS:
            raise invalid(f"Invalid {name}: at most {self.MAX_KEYS} keys", param=name)
        out: dict[str, str] = {}
        for key, item in value.items():
            if isinstance(item, dict | list):
                raise invalid(f"Invalid value for {name}[{key}]: metadata values must be strings",
                              param=f"{name}[{key}]")
            if len(key) > 40:
                raise invalid(f"Invalid {name}: keys must be at most 40 characters", param=f"{name}[{key}]")
            if len(item) > 500:
                raise invalid(f"Invalid {name}: values must be at most 500 characters", param=f"{name}[{key}]")
            out[key] = item
        return out

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": {"type": "string", "maxLength": 500}}


class Arr(Spec):
    def __init__(self, item: Spec, max_items: int = 100) -> None:
        self.item = item
        self.max_items = max_items

    def coerce(self, value: Any, name: str) -> Any:
        if value == "":
            return []
        if isinstance(value, dict):  # `a[x]=..` where an array was expected
            raise invalid(f"Invalid array: {name} must be an array (e.g. {name}[0]=...)", param=name)
        if not isinstance(value, list):
            raise invalid(f"Invalid array: {name} must be an array (e.g. {name}[0]=...)", param=name)
        if len(value) > self.max_items:
            raise invalid(f"Invalid array: {name} must have at most {self.max_items} items", param=name)
        return [self.item.coerce(v, f"{name}[{i}]") for i, v in enumerate(value)]

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema(), "maxItems": self.max_items}


class Obj(Spec):
    def __init__(self, fields: dict[str, Spec] | None = None, required: Iterable[str] = (), **kw: Spec) -> None:
        self.fields = {**(fields or {}), **kw}
        self.required = tuple(required)

    def coerce(self, value: Any, name: str) -> Any:
        if value == "" and not self.required:
            return None
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {name} must be an object (e.g. {name}[key]=...)", param=name)
        return _coerce_fields(value, self.fields, self.required, prefix=name)

    def schema(self) -> dict[str, Any]:
        return _fields_schema(self.fields, self.required)


class Range(Spec):
    """Stripe's timestamp filters: `created=123` or `created[gte]=123&created[lt]=456`."""

    OPS = ("gt", "gte", "lt", "lte")

    def coerce(self, value: Any, name: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for op, v in value.items():
                if op not in self.OPS:
                    raise unknown(f"{name}[{op}]")
                out[op] = Int().coerce(v, f"{name}[{op}]")
            return {k: v for k, v in out.items() if v is not None}
        number = Int().coerce(value, name)
        return None if number is None else {"gte": number, "lte": number}

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "integer"},
                          {"type": "object", "properties": {op: {"type": "integer"} for op in self.OPS},
                           "additionalProperties": False}]}


def Expand() -> Arr:
    return Arr(Str(max_length=200), max_items=20)


def _coerce_fields(data: dict[str, Any], fields: dict[str, Spec], required: tuple[str, ...],
                   prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else key
        spec = fields.get(key)
        if spec is None:
            raise unknown(name)
        out[key] = spec.coerce(value, name)
    for key in required:
        if out.get(key) is None:
            name = f"{prefix}[{key}]" if prefix else key
            raise invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
    return out


def _fields_schema(fields: dict[str, Spec], required: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": {k: s.schema() for k, s in fields.items()},
                           "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def coerce(data: dict[str, Any], fields: dict[str, Spec], required: Iterable[str] = ()) -> dict[str, Any]:
    """Decoded params -> typed params; unknown / mistyped / missing ones are Stripe-style 400s."""
    return _coerce_fields(data, fields, tuple(required))


def parse(raw: bytes | str, fields: dict[str, Spec], required: Iterable[str] = ()) -> dict[str, Any]:
    return coerce(decode(raw), fields, required)


def schema_of(fields: dict[str, Spec], required: Iterable[str] = ()) -> dict[str, Any]:
    return _fields_schema(fields, tuple(required))
