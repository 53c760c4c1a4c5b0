"""The benchmark suite's gathering: peak memory of server processes, the month-end burst with its servers'
memory, the optional scenario-suite slot, and the JSON + markdown report (reports/bench.{json,md}).

Peak memory is the kernel's high-water mark of resident memory (`VmHWM` in /proc/<pid>/status, Linux),
read just before a server stops, for the process and each of its children (the core runs as a child of
`lockstep up`). Elsewhere it is reported as unavailable, never guessed.

Scenario suite (optional slot): the scenario engine is built elsewhere. If the callable named by
`LOCKSTEP_BENCH_SCENARIOS` (default `bench.scenarios:run_suite`) can be imported, it is called with no
arguments and timed; it may return a dict of its own figures (e.g. {"scenarios": 12, "passed": 12}), which
are reported beside the time. If it cannot be imported, the row says so and why.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCENARIO_SUITE_ENV = "LOCKSTEP_BENCH_SCENARIOS"
SCENARIO_SUITE_DEFAULT = "bench.scenarios:run_suite"


# ---- memory ----------------------------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float | None:
    """High-water resident memory of one process in MiB (None where /proc is not there)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return []
    return out


def tree_peak_rss(pid: int, name: str) -> dict[str, float | None]:
    """{name: peak MiB, "<name> child <cmd>": peak MiB, ...} for a process and its direct children."""
    out = {name: peak_rss_mb(pid)}
    for child in children(pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = str(child)
        label = "core (python -m core)" if cmd.endswith("-m core") else cmd.rsplit("/", 1)[-1][:60]
        out[f"{name}: {label}"] = peak_rss_mb(child)
    return out


# ---- the month-end burst, with its servers' memory ---------------------------------------------------------------


def run_burst_measured(*, events: int, limits: bool, say: Callable[[str], None] = print) -> dict[str, Any]:
    """bench/burst.py's run_burst, plus the peak RSS of `lockstep up` (the four mocks) and of the core."""
    from bench.burst import LiveSandbox, format_result, run_mode_async

    with LiveSandbox(client_limits=limits) as live:
        say(f"month-end burst, {events} invoice events, limits {'on' if limits else 'off'}: sandbox up "
            f"(port offset {live.port_offset}, pid {live.pid()})")
        result = asyncio.run(run_mode_async(live, events=events, subs_per_account=25, limits=limits,
                                            timeout=900.0, say=say))
        pid = live.pid()
        result["peak_rss_mb"] = tree_peak_rss(pid, "lockstep up (4 mocks)") if pid else {}
    say(f"  -> {format_result(result)}")
    return result


# ---- scenario suite (optional) -----------------------------------------------------------------------------------


def run_scenario_suite(say: Callable[[str], None] = print) -> dict[str, Any]:
    target = os.environ.get(SCENARIO_SUITE_ENV, SCENARIO_SUITE_DEFAULT)
    module_name, _, attr = target.partition(":")
    try:
        suite = getattr(importlib.import_module(module_name), attr or "run_suite")
    except (ImportError, AttributeError) as exc:
        return {"target": target, "skipped": f"not available: {type(exc).__name__}: {exc}"}
    say(f"scenario suite: {target} ...")
    started = time.perf_counter()
    figures = suite()
    seconds = time.perf_counter() - started
    return {"target": target, "seconds": round(seconds, 2), **(figures if isinstance(figures, dict) else {})}


# ---- the report --------------------------------------------------------------------------------------------------


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], burst: dict[str, Any] | None,
             scenarios: dict[str, Any] | None) -> str:
    lines = [f"Python {meta['python']} on {meta['machine']}, {meta.get('cpus')} CPUs; "
             f"{meta['connections']} connections, {meta['seconds']} s per line.", "",
             "| benchmark | req/s | ratio to bare | p50 ms | p99 ms | errors | peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["ratio_to_bare"] is None else f"{r['ratio_to_bare']:.2f}"
        rss = "" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}"
        lines.append(f"| {r['name']} | {r['rps']:.0f} | {ratio} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} | "
                     f"{rss} |")
    if burst is not None:
        lines += ["", "| month-end burst (through the core) | invoices | events | events/s | p50 ms | p99 ms | "
                  "duplicates | lost |", "|---|---|---|---|---|---|---|---|",
                  f"| limits {burst['label'].split()[-1]} | {burst['invoices']} | {burst['events']} | "
                  f"{burst['events_per_s']} | {burst['p50_ms']} | {burst['p99_ms']} | {burst['duplicates']} | "
                  f"{burst['lost']} |"]
        if burst.get("peak_rss_mb"):
            lines += ["", "| server process (during the burst) | peak RSS MiB |", "|---|---|"]
            lines += [f"| {name} | {'' if mb is None else f'{mb:.0f}'} |" for name, mb in burst["peak_rss_mb"].items()]
    if scenarios is not None:
        lines += ["", "| scenario suite | seconds | detail |", "|---|---|---|"]
        detail = {k: v for k, v in scenarios.items() if k not in ("target", "seconds")}
        lines.append(f"| {scenarios['target']} | {scenarios.get('seconds', '')} | "
                     f"{scenarios.get('skipped') or json.dumps(detail)} |")
    return "\n".join(lines)


def write_reports(out: Path, meta: dict[str, Any], rows: list[dict[str, Any]], burst: dict[str, Any] | None,
                  scenarios: dict[str, Any] | None) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"meta": meta, "results": rows, "burst": burst,
                                                "scenario_suite": scenarios}, indent=2))
    table = markdown(meta, rows, burst, scenarios)
    (out / "bench.md").write_text(table + "\n")
    return table
