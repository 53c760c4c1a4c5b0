"""`lockstep contracts verify`: the matrix, its exit code and the JUnit XML."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from contracts.matrix import Row, junit_xml, render_matrix
from lockstep.cli import main


def test_contracts_verify_for_one_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "contracts.xml"
    assert main(["contracts", "verify", "--systems", "erp", "--skip-consumer", "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    assert "lockstep-mock-erp          2024.2             2024.2             pass (11)" in out
    assert "lockstep-mock-erp          2024.2             2025.1             drift (6/11 pass)" in out
    assert "lockstep-mock-erp-events" in out
    assert "4 pass, 0 fail, 2 expected drift" in out
    suites = ET.parse(junit).getroot()
    http = suites.find("testsuite[@name='contracts.http']")
    assert http is not None and http.get("tests") == "4" and http.get("failures") == "0"
    drift = http.find("testcase[@name='erp pact 2024.2 vs mock 2025.1']/system-out")
    assert drift is not None and "$.creditHoldOverride" in (drift.text or "")


def test_unknown_system_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "verify", "--systems", "hr"]) == 2
    assert capsys.readouterr().err.strip() == ("lockstep contracts verify: unknown system(s) hr; known: crm, erp, "
                                               "billing, cs")


def test_a_failing_gate_row_is_a_junit_failure_and_a_fail_line() -> None:
    rows = [Row("http", "cs", "v1", "v1", 11, ["a query (given x) at $.Stage: Expected ..."], 1.0, failed=1),
            Row("http", "cs", "v1", "v2", 11, ["drifted"], 1.0, gating=False, failed=3),
            Row("events", "cs", "-", "-", 1, [], 0.5)]
    text = render_matrix(rows)
    assert "FAIL (10/11)" in text and "drift (8/11 pass)" in text
    assert "1 pass, 1 fail, 1 expected drift" in text
    suites = ET.fromstring(junit_xml(rows))
    http = suites.find("testsuite[@name='contracts.http']")
    assert http is not None and http.get("failures") == "1"
    failure = http.find("testcase[@name='cs pact v1 vs mock v1']/failure")
    assert failure is not None and failure.get("message", "").startswith("a query (given x) at $.Stage")
