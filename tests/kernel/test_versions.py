"""API versions as data: render / parse both ways, nesting, operations, OpenAPI per version, diff."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from mocks.kernel.versions import (
    AddOperation,
    AddRequired,
    ApiVersion,
    Custom,
    EnumChange,
    Remove,
    RemoveOperation,
    Rename,
    TypeChange,
    VersionParseError,
    VersionRegistry,
)

# -- a small fake system: customers, subscriptions with items, invoices -------------------------------

V0, V1, V2 = "2023-01-01", "2024-01-01", "2025-01-01"


def cents_to_wire(v: int) -> str:
    return f"{Decimal(v) / 100:.2f}"


def cents_from_wire(v: Any) -> int:
    return int(Decimal(str(v)) * 100)


def move_period_to_items(sub: dict[str, Any]) -> dict[str, Any]:
    end = sub.pop("current_period_end", None)
    for item in sub.get("items", {}).get("data", []):
        item["current_period_end"] = end
    return sub


def move_period_from_items(sub: dict[str, Any]) -> dict[str, Any]:
    items = sub.get("items", {}).get("data", [])
    if items:
        sub["current_period_end"] = items[0].pop("current_period_end", None)
    return sub


def items_schema(schema: dict[str, Any]) -> dict[str, Any]:
    schema["properties"].pop("current_period_end", None)
    schema["x-moved"] = ["current_period_end"]
    return schema


RENAME_NAME = Rename("customer", "name", "full_name")
REMOVE_FAX = Remove("customer", "fax")
STATUS = EnumChange("customer", "status", {"active": "live"})
BALANCE = TypeChange("customer", "balance", cents_to_wire, cents_from_wire, {"type": "string"})
TAX_ID = AddRequired("customer", "tax_id")
PERIOD_MOVE = Custom("subscription", move_period_to_items, move_period_from_items,
                     "subscription.current_period_end moved onto items", schema=items_schema)
NO_FAX_ENDPOINT = RemoveOperation("GET", "/v1/customers/{id}/fax")
INVOICE_TOTAL = Rename("invoice", "total", "amount_due")
PREVIEW = AddOperation("post", "/v1/invoices/preview")
NO_UPCOMING = RemoveOperation("GET", "/v1/invoices/upcoming")

VERSIONS = [
    ApiVersion(V0, [], released="2023-01-01", description="the internal model as is"),
    ApiVersion(V1, [RENAME_NAME, REMOVE_FAX, STATUS, BALANCE, TAX_ID, PERIOD_MOVE, NO_FAX_ENDPOINT]),
    ApiVersion(V2, [RENAME_NAME, INVOICE_TOTAL, PREVIEW, NO_UPCOMING]),
]


@pytest.fixture
def reg() -> VersionRegistry:
    return VersionRegistry("fake", VERSIONS, default=V1, schema_names={"customer": "Customer"})


def customer(**over: Any) -> dict[str, Any]:
    data = {"id": "cus_1", "object": "customer", "name": "Ada", "fax": "555", "status": "active",
            "balance": 1234, "tax_id": "DE1"}
    data.update(over)
    return data


def subscription() -> dict[str, Any]:
    return {
        "id": "sub_1", "object": "subscription", "current_period_end": 1700, "customer": customer(),
        "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item"}]},
    }


# -- registry ---------------------------------------------------------------------------------------


def test_registry_names_default_latest_membership(reg: VersionRegistry) -> None:
    assert reg.names() == [V0, V1, V2]
    assert reg.default == V1
    assert reg.latest == V2
    assert V0 in reg and "1999-01-01" not in reg
    assert reg.get(V1).changes[0] is RENAME_NAME


@pytest.mark.parametrize("call", [
    lambda r: r.get("nope"),
    lambda r: r.render("customer", customer(), "nope"),
    lambda r: r.parse("customer", {}, "nope"),
    lambda r: r.operation_exists("GET", "/v1/customers", "nope"),
    lambda r: r.openapi({}, "nope"),
    lambda r: r.diff(V1, "nope"),
])
def test_unknown_version_is_a_key_error(reg: VersionRegistry, call: Any) -> None:
    with pytest.raises(KeyError):
        call(reg)


def test_construction_rejects_bad_declarations() -> None:
    with pytest.raises(ValueError, match="default"):
        VersionRegistry("fake", VERSIONS, default="2000-01-01")
    with pytest.raises(ValueError, match="duplicate"):
        VersionRegistry("fake", [ApiVersion(V0), ApiVersion(V0)], default=V0)
    with pytest.raises(ValueError, match="one-to-one"):
        VersionRegistry("fake", [ApiVersion(V0, [EnumChange("c", "s", {"a": "x", "b": "x"})])], default=V0)
    with pytest.raises(ValueError, match="twice"):
        VersionRegistry("fake", [ApiVersion(V0, [Rename("c", "a", "b"), Rename("c", "a", "d")])], default=V0)


def test_changes_describe_themselves_and_say_if_breaking() -> None:
    assert RENAME_NAME.describe() == "customer.name is called full_name"
    assert REMOVE_FAX.describe() == "customer.fax is removed"
    assert TAX_ID.describe() == "customer.tax_id is required on create"
    assert STATUS.describe() == "customer.status values: active -> live"
    assert BALANCE.describe() == "customer.balance is sent as string"
    assert PERIOD_MOVE.describe() == "subscription.current_period_end moved onto items"
    assert NO_FAX_ENDPOINT.describe() == "GET /v1/customers/{id}/fax does not exist"
    assert PREVIEW.describe() == "POST /v1/invoices/preview exists"
    assert all(c.breaking for c in (RENAME_NAME, REMOVE_FAX, TAX_ID, STATUS, BALANCE, PERIOD_MOVE,
                                    NO_FAX_ENDPOINT))
    assert PREVIEW.breaking is False
    assert Custom("x", dict, None, "additive", breaking=False).breaking is False


# -- render -----------------------------------------------------------------------------------------


def test_render_applies_every_field_change(reg: VersionRegistry) -> None:
    stored = customer()
    before = copy.deepcopy(stored)
    wire = reg.render("customer", stored, V1)
    assert wire == {"id": "cus_1", "object": "customer", "full_name": "Ada", "status": "live",
                    "balance": "12.34", "tax_id": "DE1"}
    assert list(wire)[:3] == ["id", "object", "full_name"]  # a rename keeps the field's place
    assert stored == before  # stored state is never mutated


def test_render_keeps_null_and_unmapped_values(reg: VersionRegistry) -> None:
    wire = reg.render("customer", customer(balance=None, status="canceled"), V1)
    assert wire["balance"] is None
    assert wire["status"] == "canceled"


def test_render_fast_path_returns_the_same_object(reg: VersionRegistry) -> None:
    data = customer()
    assert reg.render("customer", data, V0) is data  # version without changes
    sub = subscription()
    assert reg.render("subscription", sub, V0) is sub
    # V1 changes no invoices: an invoice (and an envelope of them) comes back untouched.
    invoice = {"id": "in_1", "object": "invoice", "total": 5, "lines": {"object": "list", "data": []}}
    assert reg.render("invoice", invoice, V1) is invoice
    envelope = {"object": "list", "data": [invoice, {**invoice, "id": "in_2"}]}
    assert reg.render("invoice", envelope, V1) is envelope
    assert reg.render("invoice", invoice, V2) is not invoice
    assert reg.render("customer", data, V1) is not data


def test_render_skips_the_walk_on_a_version_without_changes() -> None:
    # The per-version precomputation means a no-change version never even looks inside the data.
    seen: list[dict[str, Any]] = []
    reg = VersionRegistry("fake", VERSIONS, default=V0, type_of=lambda d: seen.append(d) or d.get("object"))
    sub = subscription()
    assert reg.render("subscription", sub, V0) is sub
    assert seen == []
    # V2 has changes (customers): the walk runs, and finds the nested customer.
    assert reg.render("subscription", sub, V2)["customer"]["full_name"] == "Ada"
    assert seen


def test_render_walks_nested_typed_objects(reg: VersionRegistry) -> None:
    sub = subscription()
    wire = reg.render("subscription", sub, V1)
    assert wire["customer"]["full_name"] == "Ada"
    assert "fax" not in wire["customer"]
    event = {"object": "event", "data": {"object": customer()}}
    assert reg.render("event", event, V1)["data"]["object"]["status"] == "live"
    # An unexpanded reference (a plain id) is left alone.
    assert reg.render("subscription", {**sub, "customer": "cus_1"}, V1)["customer"] == "cus_1"


def test_render_list_envelope_renders_each_item(reg: VersionRegistry) -> None:
    envelope = {"object": "list", "url": "/v1/customers", "has_more": False,
                "data": [customer(), customer(id="cus_2", name="Bob")]}
    wire = reg.render("customer", envelope, V1)
    assert [c["full_name"] for c in wire["data"]] == ["Ada", "Bob"]
    assert wire["url"] == "/v1/customers" and wire["has_more"] is False
    assert envelope["data"][0]["name"] == "Ada"
    # Items without an `object` tag take the type the caller named.
    untyped = {"object": "list", "data": [{"name": "Cy", "fax": "1"}]}
    assert reg.render("customer", untyped, V1)["data"] == [{"full_name": "Cy"}]


def test_custom_moves_fields_without_touching_stored_state(reg: VersionRegistry) -> None:
    sub = subscription()
    wire = reg.render("subscription", sub, V1)
    assert "current_period_end" not in wire
    assert wire["items"]["data"][0]["current_period_end"] == 1700
    assert sub["current_period_end"] == 1700
    assert "current_period_end" not in sub["items"]["data"][0]
    parsed = reg.parse("subscription", copy.deepcopy(wire), V1)
    assert parsed["current_period_end"] == 1700
    assert "current_period_end" not in parsed["items"]["data"][0]


def test_type_of_hook_types_objects_the_vendor_way() -> None:
    # Salesforce-style: the type lives in attributes.type, not in "object".
    reg = VersionRegistry("sf", [ApiVersion("v1", [Rename("Account", "name", "Name")])], default="v1",
                          type_of=lambda d: (d.get("attributes") or {}).get("type"))
    row = {"attributes": {"type": "Account"}, "name": "Acme"}
    assert reg.render("query", {"records": [row]}, "v1")["records"][0]["Name"] == "Acme"


# -- parse ------------------------------------------------------------------------------------------


def test_parse_inverts_render(reg: VersionRegistry) -> None:
    body = {"full_name": "Ada", "status": "live", "balance": "12.34", "tax_id": "DE1"}
    assert reg.parse("customer", body, V1, creating=True) == {
        "name": "Ada", "status": "active", "balance": 1234, "tax_id": "DE1"}
    stored = customer()
    del stored["fax"]
    assert reg.parse("customer", reg.render("customer", stored, V1), V1) == stored


def test_parse_without_changes_returns_the_same_object(reg: VersionRegistry) -> None:
    body = {"name": "Ada", "fax": "555"}
    assert reg.parse("customer", body, V0, creating=True) is body
    assert reg.parse("invoice", body, V1) is body


def test_parse_requires_added_required_fields_on_create_only(reg: VersionRegistry) -> None:
    with pytest.raises(VersionParseError) as err:
        reg.parse("customer", {"full_name": "Ada"}, V1, creating=True)
    assert err.value.field == "tax_id"
    assert "tax_id" in err.value.message
    with pytest.raises(VersionParseError):
        reg.parse("customer", {"full_name": "Ada", "tax_id": ""}, V1, creating=True)
    assert reg.parse("customer", {"full_name": "Ada"}, V1) == {"name": "Ada"}
    assert reg.parse("customer", {"name": "Ada"}, V0, creating=True) == {"name": "Ada"}


@pytest.mark.parametrize(("body", "field"), [
    ({"fax": "555"}, "fax"),               # removed on this version
    ({"name": "Ada"}, "name"),             # the internal name of a renamed field
    ({"status": "active"}, "status"),      # an enum value renamed away on this version
    ({"balance": "twelve"}, "balance"),    # not convertible to the internal type
])
def test_parse_errors_name_the_field(reg: VersionRegistry, body: dict[str, Any], field: str) -> None:
    with pytest.raises(VersionParseError) as err:
        reg.parse("customer", body, V1)
    assert err.value.field == field
    assert field in str(err.value)


def test_renamed_field_errors_use_the_wire_name() -> None:
    reg = VersionRegistry("fake", [ApiVersion("v", [
        Rename("c", "amount", "amt"), AddRequired("c", "amount"),
        TypeChange("c", "amount", str, int, {"type": "string"})])], default="v")
    with pytest.raises(VersionParseError) as missing:
        reg.parse("c", {}, "v", creating=True)
    assert missing.value.field == "amt"
    with pytest.raises(VersionParseError) as bad:
        reg.parse("c", {"amt": "x"}, "v")
    assert bad.value.field == "amt"
    assert reg.parse("c", {"amt": "7"}, "v", creating=True) == {"amount": 7}


# -- operations and OpenAPI -------------------------------------------------------------------------


def test_operation_exists_per_version(reg: VersionRegistry) -> None:
    fax = ("GET", "/v1/customers/{id}/fax")
    assert reg.operation_exists(*fax, V0) and not reg.operation_exists(*fax, V1)
    assert reg.operation_exists("get", "/v1/customers/{id}/fax", V2)
    # An added operation exists only where declared; an unmentioned one exists everywhere.
    assert [reg.operation_exists("POST", "/v1/invoices/preview", v) for v in (V0, V1, V2)] == [
        False, False, True]
    assert [reg.operation_exists("GET", "/v1/invoices/upcoming", v) for v in (V0, V1, V2)] == [
        True, True, False]
    assert reg.operation_exists("POST", "/v1/customers", V1)


def base_doc() -> dict[str, Any]:
    op = {"responses": {"200": {"description": "ok"}}}
    return {
        "openapi": "3.0.0",
        "info": {"title": "fake", "version": "internal"},
        "paths": {
            "/v1/customers": {"get": op, "post": op},
            "/v1/customers/{id}/fax": {"get": op, "parameters": []},
            "/v1/invoices/upcoming": {"get": op},
            "/v1/invoices/preview": {"post": op},
        },
        "components": {"schemas": {
            "Customer": {"type": "object", "required": ["id", "fax"], "properties": {
                "id": {"type": "string"},
                "name": {"type": "string", "nullable": True},
                "fax": {"type": "string"},
                "status": {"anyOf": [{"type": "string", "enum": ["active", "canceled"]}]},
                "balance": {"type": "integer", "description": "minor units"},
                "tax_id": {"type": "string"},
            }},
            "subscription": {"type": "object", "properties": {"current_period_end": {"type": "integer"}}},
            "invoice": {"type": "object", "properties": {"total": {"type": "integer"}}},
        }},
    }


def test_openapi_rewrites_schemas_for_the_version(reg: VersionRegistry) -> None:
    base = base_doc()
    doc = reg.openapi(base, V1)
    assert base == base_doc()  # the internal document is not mutated
    assert doc["info"]["version"] == V1
    cus = doc["components"]["schemas"]["Customer"]
    assert list(cus["properties"]) == ["id", "full_name", "status", "balance", "tax_id"]
    assert cus["properties"]["full_name"] == {"type": "string", "nullable": True}
    assert cus["properties"]["status"]["anyOf"][0]["enum"] == ["live", "canceled"]
    assert cus["properties"]["balance"] == {"type": "string", "description": "minor units"}
    assert cus["required"] == ["id", "tax_id"]
    sub = doc["components"]["schemas"]["subscription"]
    assert sub["properties"] == {} and sub["x-moved"] == ["current_period_end"]
    assert [c["op"] for c in doc["x-lockstep-changes"]] == [
        "rename", "remove", "enum_change", "type_change", "add_required", "custom", "remove_operation"]


def test_openapi_paths_follow_operations(reg: VersionRegistry) -> None:
    v0, v1, v2 = (set(reg.openapi(base_doc(), v)["paths"]) for v in (V0, V1, V2))
    assert v0 == {"/v1/customers", "/v1/customers/{id}/fax", "/v1/invoices/upcoming"}
    assert v1 == {"/v1/customers", "/v1/invoices/upcoming"}
    assert v2 == {"/v1/customers", "/v1/customers/{id}/fax", "/v1/invoices/preview"}
    v2_doc = reg.openapi(base_doc(), V2)
    assert v2_doc["components"]["schemas"]["invoice"]["properties"] == {"amount_due": {"type": "integer"}}
    assert "required" not in v2_doc["components"]["schemas"]["invoice"]


def test_openapi_drops_required_when_none_is_left() -> None:
    reg = VersionRegistry("fake", [ApiVersion("v", [Remove("c", "a")])], default="v")
    doc = reg.openapi({"components": {"schemas": {"c": {"required": ["a"], "properties": {"a": {}}}}}}, "v")
    assert doc["components"]["schemas"]["c"] == {"properties": {}}


# -- diff -------------------------------------------------------------------------------------------


def test_diff_lists_the_declared_changes_between_two_versions(reg: VersionRegistry) -> None:
    d = reg.diff(V1, V2)
    # The rename both versions declare is no difference between them.
    assert not any(c["op"] == "rename" and c["obj"] == "customer" for c in d)
    assert d[0] == {"op": "rename", "obj": "invoice", "field": "total", "breaking": True,
                    "description": "invoice.total is called amount_due", "version": V2}
    assert [(c["op"], c["version"]) for c in d] == [
        ("rename", V2), ("add_operation", V2), ("remove_operation", V2),
        ("remove", V1), ("enum_change", V1), ("type_change", V1), ("add_required", V1), ("custom", V1),
        ("remove_operation", V1)]
    assert {c["field"] for c in d if c["version"] == V1} == {"fax", "status", "balance", "tax_id", None}
    assert next(c for c in d if c["op"] == "add_operation")["breaking"] is False
    assert reg.diff(V2, V2) == []
    assert len(reg.diff(V0, V1)) == len(VERSIONS[1].changes)
