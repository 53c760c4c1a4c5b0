"""OpenAPI snapshots and the breaking-change classifier (oasdiff-style rules), and `lockstep drift`."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from contracts.drift import classify, render
from contracts.openapi import OPENAPI_DIR, check, load
from contracts.pactkit import SYSTEMS, VERSIONS
from lockstep.cli import main


def test_snapshots_match_the_mocks() -> None:
    assert check() == [], "an API changed while its version did not (see the message), or run make openapi"
    for system in SYSTEMS:
        for version in VERSIONS[system]:
            assert load(system, version)["info"]["version"] == version


def test_a_snapshot_that_changes_while_its_version_does_not_fails(tmp_path: Path) -> None:
    shutil.copytree(OPENAPI_DIR, tmp_path, dirs_exist_ok=True)
    path = tmp_path / "erp" / "2024.2.json"
    doc = json.loads(path.read_text())
    # The committed 2024.2 snapshot promises a field that the mock on 2024.2 no longer serves.
    doc["components"]["schemas"]["Customer"]["properties"]["legacyBalance"] = {"type": "number"}
    path.write_text(json.dumps(doc))
    problems = check(tmp_path, systems=("erp",))
    assert len(problems) == 1
    assert problems[0].startswith("erp 2024.2: the API changed but its version did not:")
    assert "legacyBalance was removed (response-property-removed)" in problems[0]


def _doc(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas or {}}}


def _op(request: dict[str, Any] | None = None, response: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"responses": {"200": {"content": {"application/json": {"schema": response or {}}}}}}
    if request is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": request}}}
    if params:
        op["parameters"] = params
    return op


WIDGET = {"type": "object", "required": ["id", "kind"], "properties": {
    "id": {"type": "string"}, "kind": {"type": "string", "enum": ["a", "b"]}, "size": {"type": "integer"}}}
BASE = _doc({"/widgets": {"post": _op({"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string"}, "color": {"type": "string", "enum": ["red", "blue"]}}},
    {"$ref": "#/components/schemas/Widget"})},
    "/widgets/{id}": {"get": _op(response={"$ref": "#/components/schemas/Widget"}),
                      "delete": _op()}}, {"Widget": WIDGET})


def _rules(new: dict[str, Any]) -> dict[str, bool]:
    return {c.rule: c.breaking for c in classify(BASE, new)}


def test_identical_documents_have_no_changes() -> None:
    assert classify(BASE, copy.deepcopy(BASE)) == []


def test_removed_path_and_operation_are_breaking() -> None:
    new = copy.deepcopy(BASE)
    del new["paths"]["/widgets/{id}"]["delete"]
    assert _rules(new) == {"api-operation-removed": True}
    del new["paths"]["/widgets/{id}"]
    assert _rules(new) == {"api-path-removed": True}


def test_added_operation_and_optional_field_are_not_breaking() -> None:
    new = copy.deepcopy(BASE)
    new["paths"]["/gadgets"] = {"get": _op()}
    new["paths"]["/widgets"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "note"] = {"type": "string"}
    new["components"]["schemas"]["Widget"]["properties"]["weight"] = {"type": "number"}
    changes = classify(BASE, new)
    assert {c.rule: c.breaking for c in changes} == {"endpoint-added": False, "new-optional-request-property": False,
                                                     "response-property-added": False}


def test_new_required_request_field_is_breaking() -> None:
    new = copy.deepcopy(BASE)
    schema = new["paths"]["/widgets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema["properties"]["owner"] = {"type": "string"}
    schema["required"].append("owner")
    [change] = classify(BASE, new)
    assert (change.rule, change.breaking, change.operation) == ("new-required-request-property", True, "POST /widgets")
    assert change.detail == "owner was added and is required"


def test_removed_response_field_type_change_and_removed_enum_value_are_breaking() -> None:
    new = copy.deepcopy(BASE)
    widget = new["components"]["schemas"]["Widget"]
    del widget["properties"]["size"]
    widget["properties"]["id"] = {"type": "integer"}
    widget["properties"]["kind"]["enum"] = ["a", "c"]
    changes = classify(BASE, new)
    found = {(c.rule, c.breaking, c.detail) for c in changes if c.operation == "GET /widgets/{id}"}
    assert found == {("response-property-removed", True, "size was removed"),
                     ("response-property-type-changed", True, "id changed type from string to integer"),
                     ("response-property-enum-value-removed", True, 'kind no longer has the value "b"'),
                     ("response-property-enum-value-added", False,
                      'kind has a new value "c" (clients switching on it meet an unknown)')}


def test_request_enum_value_removed_is_breaking_and_added_is_not() -> None:
    new = copy.deepcopy(BASE)
    new["paths"]["/widgets"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "color"]["enum"] = ["red", "green"]
    assert {(c.rule, c.breaking) for c in classify(BASE, new)} == {
        ("request-property-enum-value-removed", True), ("request-property-enum-value-added", False)}


def test_new_required_parameter_is_breaking_optional_is_not() -> None:
    new = copy.deepcopy(BASE)
    new["paths"]["/widgets/{id}"]["get"]["parameters"] = [
        {"name": "expand", "in": "query", "schema": {"type": "string"}},
        {"name": "tenant", "in": "header", "required": True, "schema": {"type": "string"}}]
    assert _rules(new) == {"new-optional-request-parameter": False, "new-required-request-parameter": True}


def test_real_versions_are_classified() -> None:
    erp = classify(load("erp", "2024.2"), load("erp", "2025.1"))
    assert all(c.breaking for c in erp)
    assert any(c.operation == "GET /services/rest/record/v1/customer/{record_id}" and "creditHoldOverride changed "
               "type from null/string to object" in c.detail for c in erp)
    billing = classify(load("billing", "2023-08-16"), load("billing", "2026-10-28.endive"))
    assert any(c.rule == "api-path-removed" and c.operation == "GET /v1/invoices/upcoming" for c in billing)
    assert any(c.rule == "endpoint-added" and c.operation == "POST /v1/invoices/create_preview" for c in billing)


def test_render_formats() -> None:
    new = copy.deepcopy(BASE)
    del new["paths"]["/widgets/{id}"]["delete"]
    changes = classify(BASE, new)
    assert json.loads(render(changes, "json", title="t"))["breaking"] == 1
    markdown = render(changes, "markdown", title="t")
    assert "| breaking | `DELETE /widgets/{id}` | operation | the operation was removed | api-operation-removed |" \
        in markdown
    assert render(changes, "text", title="t").splitlines()[1] == "1 breaking, 0 non-breaking"


def test_drift_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "cs", "--from", "v1", "--to", "v2", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["breaking"] > 0
    assert any(c["detail"] == "data.records[].CSM was removed" for c in report["changes"])
    assert main(["drift", "cs", "--from", "v1", "--to", "v2", "--fail-on-breaking"]) == 1
    capsys.readouterr()
    assert main(["drift", "cs", "--from", "v1", "--to", "v9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lockstep drift: no OpenAPI snapshot for cs v9; known versions: v1, v2"
