"""Load plans, profiles, thresholds and the CLI's refusals: no servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.journal_watch import endpoint_of, identity
from loadtests.plan import Plan
from loadtests.profiles import PROFILES
from loadtests.thresholds import ThresholdsError, breaches, load_thresholds


def plan_for(shape: str, users: int = 30, duration: float = 100.0) -> Plan:
    profile = PROFILES[shape]
    return Plan(shape=shape, users=users, duration_s=duration, seed=1, urls={}, keys={}, admin_token="t",
                stages=profile.stages(users, duration))


@pytest.mark.parametrize("shape", sorted(PROFILES))
def test_every_shape_starts_at_a_baseline_peaks_between_10_and_20x_and_ends(shape: str) -> None:
    plan = plan_for(shape)
    counts = [plan.users_at(t / 2) for t in range(200)]
    assert all(c is not None for c in counts)
    baseline, peak = counts[0], max(c for c in counts if c is not None)
    assert baseline is not None and 10 <= peak / baseline <= 20
    assert plan.users_at(100.0) is None  # the run is over


def test_month_end_ramps_plateaus_then_spikes_an_echo_then_ramps_down() -> None:
    plan = plan_for("month_end_invoice_run")
    assert plan.users_at(5) == 2 and plan.users_at(22.5) == 16 and plan.users_at(40) == 30
    assert plan.users_at(58) == 10 and plan.users_at(63) == 30  # a lull, then the echo spike
    assert not plan.echo_at(58) and plan.echo_at(63) and plan.echo_at(74) and not plan.echo_at(76)
    assert 2 < plan.users_at(80) < 30 and plan.users_at(99.9) == 2
    assert PROFILES["month_end_invoice_run"].tick_fraction == 0.30
    assert PROFILES["migration_backfill"].tick_fraction is None


def test_plan_round_trips_through_its_file(tmp_path: Path) -> None:
    plan = plan_for("quarter_end_renewals")
    again = Plan.load(plan.dump(tmp_path / "plan.json"))
    assert again == plan


def test_identity_tells_the_core_from_the_load() -> None:
    assert identity({"correlation_id": "load-crm-w0u1-3", "traceparent": None}) == "load"
    assert identity({"correlation_id": "9f2c", "traceparent": "00-abc-def-01"}) == "core"
    assert identity({"correlation_id": None, "traceparent": None}) == "other"
    assert endpoint_of("/v1/invoices/in_NY2ZbPHk5L6kd7") == "/v1/invoices/[id]"
    assert endpoint_of("/services/rest/record/v1/customer/123") == "/services/rest/record/v1/customer/[id]"


def test_thresholds_name_each_breach(tmp_path: Path) -> None:
    summary = {"figures": {"duplicates": 0, "lost": 2, "failure_ratio": 0.0},
               "endpoints": [{"name": "crm GET x", "requests": 3, "p95_ms": 900.0},
                             {"name": "control POST clock", "requests": 1, "p95_ms": 9000.0, "control": True}]}
    found = breaches(summary, {"max_lost": 0, "max_duplicates": 0, "max_p95_ms": 500})
    assert found == ["threshold breached: lost events = 2 > max_lost = 0",
                     "threshold breached: p95 of crm GET x = 900 > max_p95_ms = 500"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[thresholds]\nmax_latency = 3\n")
    with pytest.raises(ThresholdsError, match="unknown threshold 'max_latency'"):
        load_thresholds(bad)


@pytest.mark.parametrize(("args", "message"), [
    (["load", "christmas_rush"], "unknown shape 'christmas_rush'"),
    (["load", "month_end_invoice_run", "--users", "0"], "--users must be at least 1"),
    (["load", "month_end_invoice_run", "--thresholds", "/nonexistent.toml"], "thresholds file not found"),
    (["load"], "give a SHAPE"),
    (["load", "--check", "/nonexistent.json"], "cannot read summary"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "lockstep.cli", *args], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
