"""The consumer's expectations against the VENDOR's own published spec, not only against the mock.

A pact says which fields (and types) the core reads from each answer. For billing on 2023-08-16 Stripe
publishes its OpenAPI (a subset is kept at /work/shared/fidelity/, path overridable with
`LOCKSTEP_STRIPE_SPEC`); every field the pact expects must exist in the documented response with a
compatible type, so a contract cannot quietly lean on something only the mock does.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_STRIPE_SPEC", "spec_gaps"]

DEFAULT_STRIPE_SPEC = Path(os.environ.get("LOCKSTEP_STRIPE_SPEC", "/work/shared/fidelity/stripe-openapi-subset.json"))
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}


def _resolve(spec: dict[str, Any], schema: Any, depth: int = 0) -> list[dict[str, Any]]:
    """The concrete variants of a schema ($ref followed, anyOf / oneOf / allOf flattened)."""
    if not isinstance(schema, dict) or depth > 20:
        return []
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _resolve(spec, spec["components"]["schemas"][ref.rsplit("/", 1)[1]], depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list):
            out = []
            for sub in schema[key]:
                out.extend(_resolve(spec, sub, depth + 1))
            if schema.get("nullable"):
                out.append({"nullable": True})
            return out
    return [schema]


def _fits(value: Any, variant: dict[str, Any]) -> bool:
    if value is None:
        return bool(variant.get("nullable"))
    kind = variant.get("type") or ("object" if "properties" in variant else None)
    actual = JSON_TYPES.get(type(value))
    return kind is None or kind == actual or (kind == "number" and actual == "integer")


def _gaps(spec: dict[str, Any], value: Any, schema: Any, path: str) -> list[str]:
    variants = [v for v in _resolve(spec, schema) if _fits(value, v)]
    if not variants:
        kinds = sorted({str(v.get("type", "?")) for v in _resolve(spec, schema)})
        return [f"{path}: {JSON_TYPES.get(type(value), 'null')} where the spec has {'/'.join(kinds)}"]
    if isinstance(value, dict):
        objects = [v for v in variants if isinstance(v.get("properties"), dict)]
        if not objects:
            return []  # a free-form object (metadata)
        out = []
        for key, item in value.items():
            holders = [v["properties"][key] for v in objects if key in v["properties"]]
            if not holders:
                out.append(f"{path}.{key}: not in the spec's response")
                continue
            branch = [_gaps(spec, item, h, f"{path}.{key}") for h in holders]
            out.extend(min(branch, key=len))
        return out
    if isinstance(value, list):
        items = [v["items"] for v in variants if "items" in v]
        return [g for element in value[:1] for g in (min((_gaps(spec, element, i, f"{path}[]") for i in items),
                                                         key=len) if items else [])]
    return []


def spec_gaps(pact_file: Path, spec_file: Path = DEFAULT_STRIPE_SPEC) -> dict[str, list[str]]:
    """interaction description -> fields the pact expects that the vendor's spec does not document."""
    spec = json.loads(spec_file.read_text())
    templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in spec["paths"]]
    out: dict[str, list[str]] = {}
    for interaction in json.loads(pact_file.read_text())["interactions"]:
        request, response = interaction["request"], interaction["response"]
        body = (response.get("body") or {}).get("content")
        if body is None:
            continue
        template = next((t for rx, t in templates if rx.match(request["path"])), None)
        operation = spec["paths"].get(template or "", {}).get(request["method"].lower())
        if operation is None:
            out[interaction["description"]] = [f"{request['method']} {request['path']}: not in the spec"]
            continue
        answer = operation["responses"].get(str(response["status"])) or operation["responses"].get("default", {})
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        gaps = _gaps(spec, body, schema, "$")
        if gaps:
            out[interaction["description"]] = gaps
    return out
