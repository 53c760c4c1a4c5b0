"""`lockstep load` end to end, small: a real `lockstep up`, a real distributed Locust run (master + 1 worker),
settling, the books and the thresholds. One run (~30 s; 9 peak users, so the 4:2:2:1 mix gives every
system at least one) with a p95 limit no server can meet: the run must fail on it, name it and exit 1, while
its books show the month-end invoices through the core with nothing duplicated or lost; the same summary
then passes thresholds it meets (`--check`), and fails a lowered one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

INVOICES = 6


def lockstep(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process; `timeout` only bounds a hung run (a busy shared machine can take minutes)."""
    env = {**os.environ, "PACT_DO_NOT_TRACK": "true"}
    return subprocess.run([sys.executable, "-m", "lockstep.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def breached_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("load")
    strict = out / "strict.toml"
    strict.write_text("[thresholds]\nmax_duplicates = 0\nmax_lost = 0\nmax_p95_ms = 0.001\n")
    proc = lockstep("load", "month_end_invoice_run", "--invoices", str(INVOICES), "--subs-per-account",
                    str(INVOICES), "--users", "9", "--duration", "15", "--workers", "1", "--out", str(out),
                    "--thresholds", str(strict))
    runs = list(out.glob("month_end_invoice_run-*/summary.json"))
    assert runs, f"no summary written\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc, runs[0]


def summary_of(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_a_breached_threshold_fails_the_run_and_names_it(breached_run: tuple[Any, Path]) -> None:
    proc, _ = breached_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "threshold breached: p95 of" in proc.stdout and "> max_p95_ms = 0.001" in proc.stdout
    assert "load run: FAIL" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_month_end_run_went_through_the_core_with_nothing_duplicated_or_lost(breached_run: tuple[Any, Path]
                                                                                 ) -> None:
    summary = summary_of(breached_run[1])
    f = summary["figures"]
    assert f["invoices"] == INVOICES and f["invoice_events"] == 2 * INVOICES, summary["books"]
    assert f["duplicates"] == 0 and f["lost"] == 0 and f["dlq"] == 0, summary["books"]
    # One flow per event, or one per invoice where the core coalesces a paid event into its queued open flow.
    assert summary["books"]["flows"].get("invoice_sync:SUCCESS", 0) >= INVOICES
    assert summary["settle"].get("settle_s") is not None, summary["settle"]


def test_locust_ran_distributed_and_wrote_its_reports(breached_run: tuple[Any, Path]) -> None:
    summary = summary_of(breached_run[1])
    run_dir = breached_run[1].parent
    for name in ("locust.html", "locust_stats.csv", "locust_stats_history.csv", "plan.json", "locust-worker-0.log"):
        assert (run_dir / name).stat().st_size > 0, name
    assert summary["run"]["workers"] == 1 and summary["figures"]["requests"] > 0
    assert "1 workers connected" in (run_dir / "locust-master.log").read_text() or \
        "Worker" in (run_dir / "locust-master.log").read_text()
    names = {e["name"].split(" ", 1)[0] for e in summary["endpoints"]}
    assert {"billing", "crm", "erp", "cs", "control"} <= names, names
    clock = [e for e in summary["endpoints"] if "clock/advance" in e["name"]]
    assert clock and clock[0]["requests"] >= 1 and clock[0]["failures"] == 0
    for e in summary["endpoints"]:
        assert e["p50_ms"] is not None and e["p95_ms"] is not None and e["p99_ms"] is not None, e


def test_check_holds_a_summary_to_other_thresholds(breached_run: tuple[Any, Path], tmp_path: Path) -> None:
    met = tmp_path / "met.toml"
    met.write_text("[thresholds]\nmax_duplicates = 0\nmax_lost = 0\nmax_dlq = 0\nmax_failure_ratio = 0.05\n")
    passed = lockstep("load", "--check", str(breached_run[1]), "--thresholds", str(met), timeout=60)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "load run: PASS" in passed.stdout
    lowered = tmp_path / "lowered.toml"
    lowered.write_text("[thresholds]\nmax_duplicates = -1\n")
    failed = lockstep("load", "--check", str(breached_run[1]), "--thresholds", str(lowered), timeout=60)
    assert failed.returncode == 1
    assert "threshold breached: duplicates = 0 > max_duplicates = -1" in failed.stdout
