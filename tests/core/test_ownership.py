"""Field ownership: the shipped matrix, write filtering, and clear errors for bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.crosswalk import Ownership, OwnershipConfigError, UnknownFieldError
from core.model import BOOKKEEPING_FIELDS, ENTITIES


@pytest.fixture(scope="module")
def ownership() -> Ownership:
    return Ownership.load()


def test_shipped_matrix_names_an_owner_for_every_field(ownership: Ownership) -> None:
    for entity, model in ENTITIES.items():
        for field in set(model.model_fields) - BOOKKEEPING_FIELDS:
            assert ownership.owner(entity, field) in {"crm", "erp", "billing", "cs"}
    assert ownership.owner("account", "name") == "crm"
    assert ownership.owner("account", "billing_email") == "billing"
    assert ownership.owner("account", "tax_registration") == "erp"
    assert ownership.owner("account", "health_score") == "cs"
    assert {ownership.owner("subscription", f) for f in ("status", "items", "current_period_end")} == {"billing"}
    assert set(ownership.owned_by("invoice", "billing")) == set(ENTITIES["invoice"].model_fields) - BOOKKEEPING_FIELDS
    assert ownership.owner("order", "status") == "erp"


def test_filter_write_keeps_owned_fields_and_logs_the_rest(
    ownership: Ownership, caplog: pytest.LogCaptureFixture
) -> None:
    changes = {"name": "Acme (from CS)", "health_score": 42, "version": 7}
    with caplog.at_level(logging.INFO, logger="core.crosswalk.ownership"):
        accepted, ignored = ownership.filter_write("account", "cs", changes)
    assert accepted == {"health_score": 42}
    assert [(i.field, i.system, i.owner, i.value) for i in ignored] == [
        ("name", "cs", "crm", "Acme (from CS)"),
        ("version", "cs", None, 7),
    ]
    assert "ignored write to account.name from cs: owned by crm" in caplog.text
    assert ownership.filter_write("account", "crm", {"name": "Acme"}) == ({"name": "Acme"}, [])


def test_filter_write_rejects_unknown_fields_systems_and_entities(ownership: Ownership) -> None:
    with pytest.raises(UnknownFieldError, match="no owned field 'nmae'"):
        ownership.filter_write("account", "crm", {"nmae": "x"})
    with pytest.raises(ValueError, match="unknown system 'sap'"):
        ownership.filter_write("account", "sap", {"name": "x"})
    with pytest.raises(UnknownFieldError, match="unknown entity 'lead'"):
        ownership.owner("lead", "name")


def _write(tmp_path: Path, body: str) -> Path:
    full = Path(__file__).resolve().parents[2] / "core" / "ownership.yaml"
    path = tmp_path / "ownership.yaml"
    path.write_text(full.read_text(encoding="utf-8") + body if body.startswith("\n#append") else body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("account: [crm\n", "not valid YAML"),
        ("- crm\n", "top level"),
        ("\n#append\nacount:\n  '*': crm\n", "entity 'acount': unknown entity"),
        ("account:\n  '*': crm\n", "entity 'contact': missing"),
    ],
)
def test_bad_files_fail_with_the_file_and_entry_named(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(OwnershipConfigError, match=message) as info:
        Ownership.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"*": "crm", "nmae": "crm"}, r"account\.nmae: Account has no field 'nmae'"),
        ({"*": "crm", "name": "sap"}, r"account\.name: unknown system 'sap'"),
        ({"*": "crm", "version": "crm"}, r"account\.version: managed by the core"),
        ({"name": "crm"}, r"account\.legal_name: no owner"),
        (["crm"], "account: expected a mapping"),
    ],
)
def test_bad_entries_are_named(ownership: Ownership, entry: object, message: str) -> None:
    data: dict[str, object] = {entity: {"*": "crm"} for entity in ENTITIES}
    data["account"] = entry
    with pytest.raises(OwnershipConfigError, match=message):
        Ownership.from_mapping(data, source="test.yaml")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OwnershipConfigError, match="can't read the ownership file"):
        Ownership.load(tmp_path / "nope.yaml")
