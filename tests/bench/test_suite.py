"""The benchmark suite's gathering (bench/suite.py): memory readings, the scenario-suite slot, the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite import SCENARIO_SUITE_ENV, peak_rss_mb, run_scenario_suite, tree_peak_rss, write_reports

LINUX = Path("/proc/self/status").exists()


def fake_suite() -> dict[str, int]:
    return {"scenarios": 3, "passed": 3}


@pytest.mark.skipif(not LINUX, reason="peak RSS is read from /proc")
def test_peak_rss_of_a_child_grows_with_what_it_holds() -> None:
    code = "import sys, time; block = bytearray(64 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); " \
           "print('ready', flush=True); sys.stdin.readline()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        mine = tree_peak_rss(os.getpid(), "pytest")
        held = peak_rss_mb(child.pid)
        assert held is not None and held >= 64, held
        assert any(k.startswith("pytest: ") for k in mine), mine  # the child shows up under its parent
    finally:
        child.communicate("\n", timeout=10)


def test_scenario_slot_times_the_callable_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCENARIO_SUITE_ENV, f"{__name__}:fake_suite")
    result = run_scenario_suite(say=lambda _line: None)
    assert result["scenarios"] == 3 and result["passed"] == 3 and result["seconds"] >= 0


def test_scenario_slot_says_why_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCENARIO_SUITE_ENV, "scenarios.no_such_module:run_suite")
    result = run_scenario_suite(say=lambda _line: None)
    assert "seconds" not in result and "ModuleNotFoundError" in result["skipped"]


def test_reports_hold_every_section(tmp_path: Path) -> None:
    rows = [{"name": "bare", "rps": 1000.0, "ratio_to_bare": None, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0,
             "peak_rss_mb": 50.0},
            {"name": "billing", "rps": 600.0, "ratio_to_bare": 0.6, "p50_ms": 1.5, "p99_ms": 3.0, "errors": 0,
             "peak_rss_mb": 70.0}]
    burst = {"label": "limits off", "invoices": 10, "events": 20, "events_per_s": 5.0, "p50_ms": 10.0,
             "p99_ms": 20.0, "duplicates": 0, "lost": 0, "peak_rss_mb": {"lockstep up (4 mocks)": 128.0}}
    meta = {"python": "3.11", "machine": "x86_64", "cpus": 2, "seconds": 5, "connections": 16}
    table = write_reports(tmp_path, meta, rows, burst, {"target": "x:y", "skipped": "not available"})
    assert "| billing | 600 | 0.60 | 1.5 | 3.0 | 0 | 70 |" in table
    assert "| limits off | 10 | 20 | 5.0 | 10.0 | 20.0 | 0 | 0 |" in table
    assert "| lockstep up (4 mocks) | 128 |" in table and "| x:y |  | not available |" in table
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["burst"]["events_per_s"] == 5.0 and saved["scenario_suite"]["skipped"] == "not available"
    assert (tmp_path / "bench.md").read_text().strip() == table
