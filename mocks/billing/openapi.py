"""Billing's OpenAPI document, derived from the route table (`api_routes.OPS`) and the version registry.

Request parameters come from each operation's declared spec (the same one that parses requests), so the
document cannot drift from what the server accepts. Response schemas are this mock's own descriptions of
the internal objects (not copied from Stripe's spec); `VersionRegistry.openapi` then rewrites them per
API version (e.g. no `current_period_end` on a subscription in `2026-10-28.endive`).
"""

from __future__ import annotations

import copy
from typing import Any

from mocks.billing import forms

__all__ = ["COMPONENTS", "billing_openapi", "operation_extra"]

Json = dict[str, Any]

_NULL_STR = {"type": "string", "nullable": True}
_NULL_INT = {"type": "integer", "nullable": True}
_META = {"type": "object", "additionalProperties": {"type": "string"}}


def _ref_or_id(schema: str, nullable: bool = True) -> Json:
    return {"anyOf": [{"type": "string", "maxLength": 5000}, {"$ref": f"#/components/schemas/{schema}"}],
            "nullable": nullable}


def _obj(name: str, prefix: str | None, props: Json, required: tuple[str, ...] = ()) -> Json:
    base: Json = {
        "id": {"type": "string", **({"pattern": f"^{prefix}_"} if prefix else {})},
        "object": {"type": "string", "enum": [name]},
        "created": {"type": "integer"},
        "livemode": {"type": "boolean"},
        "metadata": _META,
    }
    return {"type": "object", "properties": {**base, **props},
            "required": ["id", "object", *required]}


def _list_of(schema: str) -> Json:
    return {"type": "object", "required": ["object", "data", "has_more", "url"],
            "properties": {"object": {"type": "string", "enum": ["list"]},
                           "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}},
                           "has_more": {"type": "boolean"}, "url": {"type": "string"}}}


COMPONENTS: dict[str, Json] = {
    "error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["type", "message"], "properties": {
            "type": {"type": "string",
                     "enum": ["api_error", "card_error", "idempotency_error", "invalid_request_error"]},
            "message": {"type": "string"}, "code": {"type": "string"}, "param": {"type": "string"},
            "decline_code": {"type": "string"}}}}},
    "customer": {"anyOf": [
        _obj("customer", "cus", {"email": _NULL_STR, "name": _NULL_STR, "balance": {"type": "integer"},
                                 "test_clock": _NULL_STR, "invoice_settings": {"type": "object"}}),
        {"type": "object", "required": ["id", "object", "deleted"],
         "properties": {"id": {"type": "string"}, "object": {"type": "string", "enum": ["customer"]},
                        "deleted": {"type": "boolean", "enum": [True]}}}]},
    "product": _obj("product", None, {"name": {"type": "string"}, "active": {"type": "boolean"}}),
    "price": _obj("price", "price", {"currency": {"type": "string"}, "unit_amount": _NULL_INT,
                                     "product": _ref_or_id("product", nullable=False),
                                     "type": {"type": "string", "enum": ["one_time", "recurring"]},
                                     "recurring": {"type": "object", "nullable": True}}),
    "payment_method": _obj("payment_method", "pm", {"customer": _ref_or_id("customer"),
                                                    "type": {"type": "string"}}),
    "payment_intent": _obj("payment_intent", "pi", {"amount": {"type": "integer"}, "status": {"type": "string"},
                                                    "customer": _ref_or_id("customer")}),
    "subscription_item": _obj("subscription_item", "si", {
        "price": {"$ref": "#/components/schemas/price"}, "quantity": _NULL_INT,
        "current_period_start": {"type": "integer"}, "current_period_end": {"type": "integer"}}),
    "subscription": _obj("subscription", "sub", {
        "customer": _ref_or_id("customer", nullable=False),
        "status": {"type": "string", "enum": ["active", "canceled", "incomplete", "incomplete_expired", "past_due",
                                              "paused", "trialing", "unpaid"]},
        "current_period_start": {"type": "integer"}, "current_period_end": {"type": "integer"},
        "items": _list_of("subscription_item"), "latest_invoice": _ref_or_id("invoice")}),
    "line_item": _obj("line_item", None, {"amount": {"type": "integer"}, "proration": {"type": "boolean"}}),
    "invoiceitem": _obj("invoiceitem", "ii", {"amount": {"type": "integer"}, "customer": _ref_or_id("customer")}),
    "invoice": {"type": "object", "required": ["object"], "properties": {
        "id": {"type": "string", "nullable": True}, "object": {"type": "string", "enum": ["invoice"]},
        "status": {"type": "string", "nullable": True,
                   "enum": ["draft", "open", "paid", "uncollectible", "void"]},
        "amount_due": {"type": "integer"}, "total": {"type": "integer"}, "lines": _list_of("line_item"),
        "customer": _ref_or_id("customer"), "subscription": _ref_or_id("subscription"),
        "payment_intent": _ref_or_id("payment_intent"), "charge": _NULL_STR, "paid": {"type": "boolean"},
        "payments": {"type": "object"}, "metadata": {**_META, "nullable": True}}},
    "test_helpers.test_clock": _obj("test_helpers.test_clock", "clock", {
        "frozen_time": {"type": "integer"},
        "status": {"type": "string", "enum": ["advancing", "internal_failure", "ready"]}}),
    "webhook_endpoint": _obj("webhook_endpoint", "we", {
        "url": {"type": "string"}, "enabled_events": {"type": "array", "items": {"type": "string"}},
        "secret": {"type": "string"}, "status": {"type": "string"}}),
    "event": _obj("event", "evt", {"type": {"type": "string"}, "data": {"type": "object"}}),
}
# Deleted objects (DELETE responses) share the object's schema name via anyOf where Stripe keeps them apart.
for _name in ("product", "webhook_endpoint", "test_helpers.test_clock"):
    COMPONENTS[_name] = {"anyOf": [COMPONENTS[_name], {
        "type": "object", "required": ["id", "object", "deleted"],
        "properties": {"id": {"type": "string"}, "object": {"type": "string", "enum": [_name]},
                       "deleted": {"type": "boolean", "enum": [True]}}}]}


def _query_param(name: str, spec: forms.Spec, required: bool) -> Json:
    """Stripe's query encoding: arrays as `name[]=a&name[]=b`, objects as `name[key]=v` (deepObject)."""
    if isinstance(spec, forms.Arr):
        return {"name": f"{name}[]", "in": "query", "required": required, "schema": spec.schema(),
                "style": "form", "explode": True}
    param: Json = {"name": name, "in": "query", "required": required, "schema": spec.schema()}
    if isinstance(spec, forms.Obj | forms.Metadata):
        param.update(style="deepObject", explode=True)
    elif isinstance(spec, forms.Range):
        # deepObject needs an object schema: document the `[gte]` form (a bare integer works too).
        param.update(schema=spec.schema()["anyOf"][1], style="deepObject", explode=True)
    return param


def operation_extra(op: Any) -> Json:
    from mocks.billing.api import all_params

    params = all_params(op)
    schema_name = op.obj
    response = _list_of(schema_name) if op.is_list else {"$ref": f"#/components/schemas/{schema_name}"}
    extra: Json = {
        "responses": {
            "200": {"description": "Successful response.", "content": {"application/json": {"schema": response}}},
            "default": {"description": "Error response.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}},
        },
    }
    path_params = [{"name": part[1:-1], "in": "path", "required": True,
                    "schema": {"type": "string", "maxLength": 200}}
                   for part in op.path.split("/") if part.startswith("{")]
    if path_params:
        extra["parameters"] = path_params
    if op.method == "POST":
        body_schema = forms.schema_of(params, op.required)
        encoding = {name: {"style": "deepObject", "explode": True}
                    for name, spec in params.items() if isinstance(spec, forms.Obj | forms.Arr | forms.Metadata)}
        extra["requestBody"] = {"required": bool(op.required), "content": {"application/x-www-form-urlencoded": {
            "schema": body_schema, **({"encoding": encoding} if encoding else {})}}}
    else:
        extra["parameters"] = path_params + [_query_param(name, spec, name in op.required)
                                             for name, spec in params.items()]
    return extra


def extend_openapi(document: Json) -> None:
    """Kernel hook: complete the app's generated document with billing's schemas and security."""
    document.setdefault("components", {}).setdefault("schemas", {}).update(copy.deepcopy(COMPONENTS))
    for path, path_item in document.get("paths", {}).items():
        if path.startswith("/_sandbox"):
            continue
        for operation in path_item.values():
            for param in operation.get("parameters", []):
                param.setdefault("schema", {"type": "string"})
    document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}


def billing_openapi(version: str | None = None, *, app: Any = None) -> Json:
    """The billing document for `version` (default: the registry's default)."""
    from fastapi.openapi.utils import get_openapi

    from mocks.billing import api_routes
    from mocks.billing.api import build_router
    from mocks.billing.versions import billing_versions

    versions = billing_versions()
    router = build_router(api_routes.OPS, versions, operation_extra)
    base = get_openapi(title="Lockstep billing (Stripe-compatible)", version=versions.default,
                       routes=router.routes)
    base.setdefault("components", {}).setdefault("schemas", {}).update(copy.deepcopy(COMPONENTS))
    for path_item in base.get("paths", {}).values():
        for operation in path_item.values():
            # Path parameters are ids; FastAPI types them as plain strings already.
            for param in operation.get("parameters", []):
                param.setdefault("schema", {"type": "string"})
    base["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    base["security"] = [{"bearer": []}]
    return versions.openapi(base, version or versions.default)
