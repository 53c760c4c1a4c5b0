"""Read Locust's CSV stats into per-endpoint figures, and print a run's summary."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

CONTROL_PREFIX = "control "  # sandbox control calls (clock, redeliveries): reported, held to no latency target
THROTTLED_SUFFIX = " [429]"


def _num(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_stats(stats_csv: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(endpoints, totals) from Locust's `<prefix>_stats.csv`. Totals: requests, failures, load 429s, rps."""
    endpoints: list[dict[str, Any]] = []
    totals = {"requests": 0, "failures": 0, "throttled": 0, "rps": 0.0}
    with stats_csv.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                totals["rps"] = _num(row["Requests/s"]) or 0.0
                continue
            requests, failures = int(row["Request Count"]), int(row["Failure Count"])
            endpoints.append({
                "name": row["Name"], "method": row["Type"], "requests": requests, "failures": failures,
                "rps": _num(row["Requests/s"]), "p50_ms": _num(row["50%"]), "p95_ms": _num(row["95%"]),
                "p99_ms": _num(row["99%"]), "max_ms": _num(row["Max Response Time"]),
                "control": row["Name"].startswith(CONTROL_PREFIX), "throttled": row["Name"].endswith(THROTTLED_SUFFIX)})
            totals["requests"] += requests
            totals["failures"] += failures
            if row["Name"].endswith(THROTTLED_SUFFIX):
                totals["throttled"] += requests
    endpoints.sort(key=lambda e: (e["control"], e["name"]))
    return endpoints, totals


def format_summary(summary: dict[str, Any]) -> str:
    f, run, rec = summary["figures"], summary["run"], summary["books"]["reconcile"]
    lines = [
        f"lockstep load {run['shape']}: {run['users']} peak users, {run['duration_s']:.0f} s, "
        f"{run['workers']} worker(s), {run['invoices']} invoices in the estate ({run['accounts']} accounts)",
        f"  requests {f['requests']} ({f['rps']:.1f} req/s), failures {f['failures']} "
        f"(ratio {f['failure_ratio']:.4f}), load requests throttled 429: {f['load_429s']} "
        f"(ratio {f['load_429_ratio']:.4f})",
        f"  invoice run: {f['invoices']} invoices, {f['invoice_events']} invoice events through the core, "
        f"{f['events_per_s']} events/s (intake to flow done, queue wait included: p50 {f['flow_run_p50_ms']} ms, "
        f"p99 {f['flow_run_p99_ms']} ms; whole seconds)"
        if f["invoices"] else "  invoice run: none (this shape runs no invoices)",
        f"  duplicates {f['duplicates']} (must be 0), lost {f['lost']} (must be 0), new DLQ {f['dlq']}, "
        f"duplicate deliveries absorbed by the core's inbox {f['inbox_duplicates_absorbed']}",
        f"  429s answered to the core: {f['core_429s']} of its {f.get('core_requests', '?')} calls "
        f"(ratio {f.get('core_429_ratio', 0):.4f}; by system: {summary['throttling']['by_system']})",
        f"  reconcile: {rec['accounts']} accounts, {rec['findings']} findings {rec['by_kind']}"
        + (f"; reconcile FAILED: {rec['failed']}" if rec.get("failed") else ""),
        f"  peak RSS MiB: {run.get('peak_rss_mb') or 'n/a'}",
        "",
        f"  {'endpoint':<62} {'reqs':>7} {'fail':>5} {'p50':>7} {'p95':>7} {'p99':>7}  (ms)",
    ]
    for e in summary["endpoints"]:
        lines.append(f"  {e['name'][:62]:<62} {e['requests']:>7} {e['failures']:>5} {_ms(e['p50_ms'])} "
                     f"{_ms(e['p95_ms'])} {_ms(e['p99_ms'])}")
    for path, n in (summary["throttling"].get("core_paths") or {}).items():
        lines.append(f"  finding: the core got {n} x 429 on {path}")
    for what, n in (rec.get("by_field") or {}).items():
        lines.append(f"  finding: reconcile {what}: {n} account(s)")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return f"{'-':>7}" if value is None else f"{value:>7.0f}"
