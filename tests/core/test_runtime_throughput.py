"""Measured, not asserted: one-step workflows per second on SQLite tuned (WAL + synchronous=NORMAL) vs
SQLite defaults (rollback journal, synchronous=FULL). Printed (run with -s to see it). The test does assert
that every workflow ran, exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dbos import DBOS, SetWorkflowID

from tests.core._runtime_kit import launched_runtime

N = 80
_RUNS: dict[str, int] = {}


@DBOS.step()
def bench_step(i: int) -> int:
    return i * 2


@DBOS.workflow(name="lockstep.bench.one_step")
def one_step(i: int) -> int:
    return bench_step(i)


def _measure(tag: str) -> float:
    """One workflow after another: the per-workflow cost of the store (threads only add lock contention on
    SQLite's single writer: 16 threads measured ~40% slower than one)."""

    def run(i: int) -> int:
        with SetWorkflowID(f"bench-{tag}-{i}"):
            return DBOS.start_workflow(one_step, i).get_result()

    for i in range(20):  # warm-up: pools, prepared statements
        run(i)
    started = time.perf_counter()
    results = [run(i) for i in range(20, 20 + N)]
    elapsed = time.perf_counter() - started
    assert results == [i * 2 for i in range(20, 20 + N)]
    assert len(DBOS.list_workflows(workflow_id_prefix=f"bench-{tag}-", load_input=False, load_output=False)) == N + 20
    return N / elapsed


@pytest.mark.parametrize("tuned", [True, False], ids=["wal-normal", "sqlite-default"])
def test_one_step_workflows_per_second(tuned: bool, tmp_path: Path) -> None:
    runtime = launched_runtime("sqlite", tmp_path, sqlite_tuned=tuned)
    next(runtime)
    try:
        rate = _measure("tuned" if tuned else "default")
    finally:
        next(runtime, None)
    _RUNS["tuned" if tuned else "default"] = int(rate)
    print(f"\n[throughput] SQLite {'WAL + synchronous=NORMAL' if tuned else 'defaults'}: {rate:.0f} one-step "
          f"workflows/s ({N} workflows, one after another)")
