"""The scenario suite's in-process time, for `make bench`: every pack, once per configuration.

Each configuration runs `lockstep run` in a child process (a fresh sandbox, as a user would) and reports the
wall time of the whole command (imports and sandbox start included) and the suite time the JSON report
gives (scheduling to last result), plus the outcome counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["CONFIGS", "run_scenario_bench", "run_suite"]

CONFIGS = ((1, 6), (2, 6), (4, 6))  # (worker processes, concurrent scenarios per worker)


def run_scenario_bench(configs: tuple[tuple[int, int], ...] = CONFIGS) -> list[dict[str, Any]]:
    rows = []
    for workers, concurrency in configs:
        with tempfile.TemporaryDirectory(prefix="lockstep-scenario-bench-") as tmp:
            report = Path(tmp) / "report.json"
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "lockstep.cli", "run", "--workers", str(workers),
                                   "--concurrency", str(concurrency), "--json", str(report), "--report-dir", tmp],
                                  capture_output=True, text=True, check=False, timeout=1800)
            wall = time.monotonic() - started
            doc = json.loads(report.read_text()) if report.exists() else {}
        rows.append({"workers": workers, "concurrency": concurrency, "scenarios": len(doc.get("scenarios", [])),
                     "wall_s": round(wall, 1), "suite_s": doc.get("duration_s"), "counts": doc.get("counts"),
                     "exit": done.returncode})
    return rows


def run_suite() -> dict[str, Any]:
    """`make bench`'s scenario-suite slot (bench/suite.py): every pack once, 4 worker processes x 6 concurrent
    (the fastest configuration measured on 2 cores)."""
    [row] = run_scenario_bench(((4, 6),))
    return {"scenarios": row["scenarios"], "suite_s": row["suite_s"], "wall_s": row["wall_s"],
            "workers": row["workers"], "concurrency": row["concurrency"], "counts": row["counts"], "exit": row["exit"]}


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "| scenario suite (in-process) | scenarios | suite s | wall s | outcome |", "|---|---|---|---|---|"]
    for r in rows:
        counts = ", ".join(f"{v} {k}" for k, v in (r["counts"] or {}).items() if v) or f"exit {r['exit']}"
        lines.append(f"| {r['workers']} worker(s) x {r['concurrency']} concurrent | {r['scenarios']} | "
                     f"{r['suite_s']} | {r['wall_s']} | {counts} |")
    return lines


if __name__ == "__main__":
    table = run_scenario_bench()
    print("\n".join(markdown(table)))
