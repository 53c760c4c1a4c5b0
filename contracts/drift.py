"""Classifying the differences between two OpenAPI documents, with rules modeled on oasdiff's.

Breaking (a client written against the old document may fail on the new one):
  operation removed / path removed, new required request property or parameter, request property or
  parameter removed, response property removed, response property no longer required, type change
  (request or response), enum value removed, success response status removed.
Not breaking: operation added, optional request property / parameter added, response property added,
  enum value added to a request, parameter / property made optional in a request.
Noted (not breaking, worth reading): enum value added to a response (a client switching on the values
  meets one it does not know).

    changes = classify(old_doc, new_doc)
    render(changes, "text" | "json" | "markdown", title=...)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Change", "classify", "render"]

Json = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
MAX_DEPTH = 12


@dataclass(frozen=True)
class Change:
    rule: str  # e.g. "response-property-removed"
    breaking: bool
    operation: str  # "GET /v1/invoices/{invoice}" or "" for document-level changes
    where: str  # "response 200 body: payments.data[]" ...
    detail: str

    def __str__(self) -> str:
        level = "BREAKING" if self.breaking else "ok"
        op = f"{self.operation} " if self.operation else ""
        return f"[{level}] {op}{self.where}: {self.detail} ({self.rule})"


class _Schemas:
    def __init__(self, doc: Json) -> None:
        self.components = doc.get("components", {}).get("schemas", {})

    def resolve(self, schema: Any, seen: tuple[str, ...] = ()) -> tuple[Json, tuple[str, ...]]:
        """Follows $ref (and a single-member allOf); returns the schema and the refs walked (cycle guard)."""
        while isinstance(schema, dict):
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name in seen:
                    return {}, seen
                seen = (*seen, name)
                schema = self.components.get(name, {})
                continue
            all_of = schema.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1:
                schema = all_of[0]
                continue
            return schema, seen
        return {}, seen

    def variants(self, schema: Json, seen: tuple[str, ...]) -> list[tuple[Json, tuple[str, ...]]]:
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                out = []
                for sub in schema[key]:
                    resolved, s = self.resolve(sub, seen)
                    out.extend(self.variants(resolved, s))
                return out
        return [(schema, seen)]


def _types(schemas: _Schemas, schema: Any, seen: tuple[str, ...] = ()) -> set[str]:
    resolved, seen = schemas.resolve(schema, seen)
    out: set[str] = set()
    for variant, _ in schemas.variants(resolved, seen):
        kind = variant.get("type")
        if isinstance(kind, list):
            out.update(kind)
        elif isinstance(kind, str):
            out.add(kind)
        elif "properties" in variant:
            out.add("object")
        if variant.get("nullable"):
            out.add("null")
    return out


def _object_view(schemas: _Schemas, schema: Any, seen: tuple[str, ...]) -> tuple[Json, set[str], tuple[str, ...]]:
    """Properties and required names of an object schema (merged over anyOf / oneOf variants)."""
    resolved, seen = schemas.resolve(schema, seen)
    props: Json = {}
    required: set[str] = set()
    variants = schemas.variants(resolved, seen)
    objects = [(v, s) for v, s in variants if isinstance(v.get("properties"), dict)]
    for i, (variant, s) in enumerate(objects):
        props.update(variant["properties"])
        req = set(variant.get("required") or [])
        required = req if i == 0 else required & req
        seen = s
    return props, required, seen


def _enum(schemas: _Schemas, schema: Any, seen: tuple[str, ...]) -> set[Any] | None:
    resolved, seen = schemas.resolve(schema, seen)
    values: set[Any] = set()
    found = False
    for variant, _ in schemas.variants(resolved, seen):
        if isinstance(variant.get("enum"), list):
            found = True
            values.update(json.dumps(v) for v in variant["enum"] if v is not None)
    return values if found else None


def _items(schemas: _Schemas, schema: Any, seen: tuple[str, ...]) -> tuple[Any, tuple[str, ...]] | None:
    resolved, seen = schemas.resolve(schema, seen)
    for variant, s in schemas.variants(resolved, seen):
        if variant.get("type") == "array" or "items" in variant:
            return variant.get("items", {}), s
    return None


def _compare_schema(a: _Schemas, b: _Schemas, old: Any, new: Any, *, request: bool, op: str, where: str,
                    path: str, out: list[Change], seen_a: tuple[str, ...] = (), seen_b: tuple[str, ...] = (),
                    depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        return
    side = "request" if request else "response"
    label = path or "(body)"
    old_types, new_types = _types(a, old, seen_a), _types(b, new, seen_b)
    old_kinds, new_kinds = old_types - {"null"}, new_types - {"null"}
    if old_kinds and new_kinds and old_kinds != new_kinds:
        out.append(Change(f"{side}-property-type-changed", True, op, where,
                          f"{label} changed type from {'/'.join(sorted(old_types))} to {'/'.join(sorted(new_types))}"))
        return
    if not request and "null" in new_types and "null" not in old_types and old_types:
        out.append(Change("response-property-became-nullable", True, op, where, f"{label} may now be null"))
    old_enum, new_enum = _enum(a, old, seen_a), _enum(b, new, seen_b)
    if old_enum is not None and new_enum is not None:
        for value in sorted(old_enum - new_enum):
            out.append(Change(f"{side}-property-enum-value-removed", True, op, where,
                              f"{label} no longer has the value {value}"))
        for value in sorted(new_enum - old_enum):
            out.append(Change(f"{side}-property-enum-value-added", False, op, where,
                              f"{label} has a new value {value}" + ("" if request else
                                                                     " (clients switching on it meet an unknown)")))
    old_props, old_req, sa = _object_view(a, old, seen_a)
    new_props, new_req, sb = _object_view(b, new, seen_b)
    if old_props or new_props:
        prefix = f"{path}." if path else ""
        for name in sorted(set(old_props) - set(new_props)):
            out.append(Change(f"{side}-property-removed", True, op, where, f"{prefix}{name} was removed"))
        for name in sorted(set(new_props) - set(old_props)):
            required = name in new_req
            if request:
                out.append(Change("new-required-request-property" if required else "new-optional-request-property",
                                  required, op, where, f"{prefix}{name} was added"
                                  + (" and is required" if required else " (optional)")))
            else:
                out.append(Change("response-property-added", False, op, where, f"{prefix}{name} was added"))
        for name in sorted(set(old_props) & set(new_props)):
            if request and name in new_req and name not in old_req:
                out.append(Change("request-property-became-required", True, op, where,
                                  f"{prefix}{name} is now required"))
            if not request and name in old_req and name not in new_req:
                out.append(Change("response-property-became-optional", True, op, where,
                                  f"{prefix}{name} is no longer always present"))
            _compare_schema(a, b, old_props[name], new_props[name], request=request, op=op, where=where,
                            path=f"{prefix}{name}", out=out, seen_a=sa, seen_b=sb, depth=depth + 1)
    old_items, new_items = _items(a, old, seen_a), _items(b, new, seen_b)
    if old_items is not None and new_items is not None:
        _compare_schema(a, b, old_items[0], new_items[0], request=request, op=op, where=where, path=f"{path}[]",
                        out=out, seen_a=old_items[1], seen_b=new_items[1], depth=depth + 1)


def _body_schema(body: Any) -> Any:
    if not isinstance(body, dict):
        return None
    content = body.get("content") or {}
    for media in ("application/json", "application/x-www-form-urlencoded"):
        if media in content:
            return content[media].get("schema")
    for value in content.values():
        if isinstance(value, dict) and "schema" in value:
            return value["schema"]
    return None


def _params(item: Json, operation: Json) -> dict[tuple[str, str], Json]:
    out = {}
    for param in [*(item.get("parameters") or []), *(operation.get("parameters") or [])]:
        if isinstance(param, dict) and "name" in param:
            out[(param.get("in", "query"), param["name"])] = param
    return out


def classify(old_doc: Json, new_doc: Json) -> list[Change]:
    a, b = _Schemas(old_doc), _Schemas(new_doc)
    out: list[Change] = []
    old_paths, new_paths = old_doc.get("paths") or {}, new_doc.get("paths") or {}
    for path in sorted(set(old_paths) | set(new_paths)):
        old_item, new_item = old_paths.get(path) or {}, new_paths.get(path) or {}
        for method in METHODS:
            op = f"{method.upper()} {path}"
            old_op, new_op = old_item.get(method), new_item.get(method)
            if old_op is None and new_op is None:
                continue
            if new_op is None:
                rule = "api-path-removed" if not new_item else "api-operation-removed"
                out.append(Change(rule, True, op, "operation", "the operation was removed"))
                continue
            if old_op is None:
                out.append(Change("endpoint-added", False, op, "operation", "a new operation"))
                continue
            _compare_operation(a, b, old_item, new_item, old_op, new_op, op, out)
    return out


def _compare_operation(a: _Schemas, b: _Schemas, old_item: Json, new_item: Json, old_op: Json, new_op: Json,
                       op: str, out: list[Change]) -> None:
    old_params, new_params = _params(old_item, old_op), _params(new_item, new_op)
    for key in sorted(set(old_params) - set(new_params)):
        out.append(Change("request-parameter-removed", True, op, f"{key[0]} parameter {key[1]}", "was removed"))
    for key in sorted(set(new_params) - set(old_params)):
        required = bool(new_params[key].get("required"))
        out.append(Change("new-required-request-parameter" if required else "new-optional-request-parameter",
                          required, op, f"{key[0]} parameter {key[1]}", "was added"
                          + (" and is required" if required else " (optional)")))
    for key in sorted(set(old_params) & set(new_params)):
        if new_params[key].get("required") and not old_params[key].get("required"):
            out.append(Change("request-parameter-became-required", True, op, f"{key[0]} parameter {key[1]}",
                              "is now required"))
        _compare_schema(a, b, old_params[key].get("schema", {}), new_params[key].get("schema", {}), request=True,
                        op=op, where=f"{key[0]} parameter {key[1]}", path="", out=out)
    old_body, new_body = _body_schema(old_op.get("requestBody")), _body_schema(new_op.get("requestBody"))
    if old_body is not None and new_body is not None:
        _compare_schema(a, b, old_body, new_body, request=True, op=op, where="request body", path="", out=out)
    elif old_body is None and new_body is not None and (new_op.get("requestBody") or {}).get("required"):
        out.append(Change("request-body-became-required", True, op, "request body", "a body is now required"))
    old_responses, new_responses = old_op.get("responses") or {}, new_op.get("responses") or {}
    for status in sorted(old_responses):
        if not str(status).startswith("2"):
            continue
        if status not in new_responses:
            out.append(Change("response-success-status-removed", True, op, f"response {status}", "was removed"))
            continue
        old_schema, new_schema = _body_schema(old_responses[status]), _body_schema(new_responses[status])
        if old_schema is not None and new_schema is not None:
            _compare_schema(a, b, old_schema, new_schema, request=False, op=op, where=f"response {status} body",
                            path="", out=out)


def render(changes: list[Change], fmt: str, *, title: str) -> str:
    breaking = [c for c in changes if c.breaking]
    if fmt == "json":
        return json.dumps({"title": title, "breaking": len(breaking), "non_breaking": len(changes) - len(breaking),
                           "changes": [asdict(c) for c in changes]}, indent=2)
    if fmt == "markdown":
        lines = [f"## {title}", "", f"**{len(breaking)} breaking**, {len(changes) - len(breaking)} non-breaking", ""]
        if changes:
            lines += ["| | Operation | Where | Change | Rule |", "|---|---|---|---|---|"]
            for c in sorted(changes, key=lambda c: (not c.breaking, c.operation, c.where)):
                mark = "breaking" if c.breaking else "ok"
                lines.append(f"| {mark} | `{c.operation}` | {c.where} | {c.detail.replace('|', '/')} | {c.rule} |")
        return "\n".join(lines) + "\n"
    lines = [title, f"{len(breaking)} breaking, {len(changes) - len(breaking)} non-breaking"]
    lines += [f"  {c}" for c in sorted(changes, key=lambda c: (not c.breaking, c.operation, c.where))]
    return "\n".join(lines)
