"""The scenario format without a sandbox: shipped packs load and validate against the shipped JSON Schema,
the schema is current, and every kind of malformed file is reported as `file:line: where: what` (never a
traceback), by the loader and by `lockstep run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from lockstep.scenario.cli import packs_dir
from lockstep.scenario.engine import select
from lockstep.scenario.loader import ScenarioFileError, load_file, load_paths
from lockstep.scenario.model import json_schema
from tests.scenarios.conftest import write

SCHEMA = packs_dir().parent / "scenario.schema.json"
MAIN_PACKS = ("account_merges", "failed_payments", "contract_amendments")
ALL_PACKS = (*MAIN_PACKS, "lead_to_cash", "renewals", "schema_drift", "rate_limits", "webhook_chaos")

GOOD = """\
name: tiny
steps:
  - expect:
      - value: 1
        equals: 1
"""


def test_every_pack_loads_and_the_main_packs_have_five_scenarios_or_more() -> None:
    loaded, problems = load_paths([packs_dir()])
    assert problems == []
    per_pack: dict[str, int] = {}
    for item in loaded:
        per_pack[item.pack] = per_pack.get(item.pack, 0) + 1
    assert set(per_pack) == set(ALL_PACKS), per_pack
    assert all(per_pack[p] >= 5 for p in MAIN_PACKS), per_pack
    assert all(per_pack[p] >= 2 for p in ALL_PACKS), per_pack


def test_the_shipped_schema_is_the_generated_one_and_every_pack_file_validates() -> None:
    shipped = json.loads(SCHEMA.read_text())
    assert shipped == json_schema(), "scenarios/scenario.schema.json is stale: lockstep run --print-schema > it"
    validator = jsonschema.Draft202012Validator(shipped)
    for path in sorted(packs_dir().rglob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path}: {errors[0].message}"


def test_the_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    assert not validator.is_valid({"name": "x", "steps": [{"bogus": 1}]})
    assert not validator.is_valid({"name": "x", "steps": [{"expect": [{"value": 1, "equals": 1}]}], "colour": 1})


@pytest.mark.parametrize(("text", "line", "says"), [
    ("name: x\nsteps:\n  - expect: [{value: 1, equals: 1}\n", 4, "flow sequence that starts at line 3"),
    ("name: x\nsteps:\n  - expect:\n      - value: 1\n        equal: 1\n", 5, "unknown field"),
    ("name: x\nsteps:\n  - act: {system: crm, path: /x}\n    do: {action: merge}\n", 3, "exactly one of"),
    ("name: x\nsteps:\n  - advance: {system: sap, by: 1d}\n", 3, "Input should be 'crm'"),
    ("name: x\nsteps:\n  - act:\n      system: crm\n      path: /a/${nobody.id}\n", 5, "nothing is bound to 'nobody'"),
    ("name: x\nsteps:\n  - act:\n      system: crm\n      path: /a/${x[0]}\n", 5, "a reference is"),
    ("name: x\nname: y\nsteps: []\n", 2, "duplicate key"),
    ("name: Bad Name\nsteps:\n  - expect: [{value: 1, equals: 1}]\n", 1, "should match pattern"),
    ("name: x\n", 1, "steps: Field required"),
    ("name: x\nsetup:\n  - account: a\n    quantity: -1\nsteps:\n  - expect: [{value: 1, equals: 1}]\n", 4,
     "greater than or equal to 1"),
    ("name: x\nsteps:\n  - expect:\n      - value: 1\n", 4, "at least one check"),
    ("name: x\nsteps:\n  - await: {quiet: true, flow: abc}\n", 3, "exactly one of quiet, flow, until"),
    ("- just\n- a list\n", 1, "a scenario is a mapping"),
    ("", 1, "empty file"),
])
def test_a_malformed_file_names_file_line_and_what(tmp_path: Path, text: str, line: int, says: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ScenarioFileError) as err:
        load_file(path)
    first = err.value.problems[0]
    assert first.startswith(f"{path}:{line}: "), err.value.problems
    assert says in str(err.value), err.value.problems
    assert "Traceback" not in str(err.value)


def test_a_good_file_loads(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path, "good.yaml", GOOD))
    assert loaded.scenario.name == "tiny" and not loaded.scenario.exclusive


def test_names_are_unique_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    _, problems = load_paths([tmp_path])
    assert len(problems) == 1 and "b.yaml:1: name: 'tiny' is already the name of" in problems[0], problems


def test_tenant_wide_steps_make_a_scenario_exclusive(tmp_path: Path) -> None:
    text = GOOD + "  - fault: {system: erp, rules: []}\n"
    assert load_file(write(tmp_path, "f.yaml", text)).scenario.exclusive
    text = GOOD + "  - advance: {system: cs, by: 3d}\n"
    assert load_file(write(tmp_path, "c.yaml", text)).scenario.exclusive


def test_selection_by_keyword_and_tag() -> None:
    loaded, _ = load_paths([packs_dir()])
    merges = select(loaded, keyword="account_merges")
    assert merges and all(i.pack == "account_merges" for i in merges)
    assert not [i for i in select(loaded, keyword="not account_merges") if i.pack == "account_merges"]
    smoke = select(loaded, tags=["smoke"])
    assert smoke and all("smoke" in i.scenario.tags for i in smoke)
    assert select(loaded, tags=["renewals"]) == [i for i in loaded if i.pack == "renewals"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lockstep.cli", "run", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_cli_reports_a_malformed_file_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "name: x\nsteps:\n  - advance: {system: sap, by: 1d}\n")
    done = _cli(str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"{path}:3: steps[0].advance.system: Input should be"), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_cli_bad_arguments_are_one_clear_line(tmp_path: Path) -> None:
    missing = _cli(str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    assert "Traceback" not in missing.stderr
    write(tmp_path, "ok.yaml", GOOD)
    live = _cli(str(tmp_path), "--target", "crm=http://127.0.0.1:9")
    assert live.returncode == 2 and "--target" in live.stderr and "Traceback" not in live.stderr
    unreachable = _cli(str(tmp_path), "--target", "local", "--port-offset", "31000", "--admin-token", "t")
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr, unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_cli_list_prints_the_selection() -> None:
    done = _cli("--list", "--tag", "schema_drift")
    assert done.returncode == 0
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("schema_drift/") and "[exclusive]" in line for line in lines)
