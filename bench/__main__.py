"""`make bench`: each mock beside a bare FastAPI endpoint, same server stack, same client, same run.

Each mock line is a create followed by a read of what was created (a stateful round trip), over real HTTP
to uvicorn[standard] with one worker. Then the month-end burst (bench/burst.py): billing invoice events end
to end through `lockstep up` (mocks + core, SQLite), events/s, p50 / p99 propagation, duplicates and lost.
Peak resident memory of every server process, and the scenario suite's time when its slot is filled
(bench/suite.py). Writes reports/bench.json and reports/bench.md and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import LoadResult, Reply, Step, build_request, json_path, run_load
from bench.servers import ServerProcess
from bench.suite import peak_rss_mb, run_burst_measured, run_scenario_suite, write_reports

ADMIN = "bench-admin"
HOST = "127.0.0.1"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
PEAK_RSS_MB: dict[str, float | None] = {}  # case name -> the server process's peak resident memory


@dataclass(frozen=True)
class CrudCase:
    """A create request and how to read back the created object from the create's reply."""

    name: str
    factory: str
    tenant: str
    auth: dict[str, str]
    create_path: str
    create_body: bytes
    content_type: str
    read: Callable[[Reply | None], tuple[str, str, bytes]]  # -> method, path, body


CASES = [
    CrudCase("billing (Stripe): create customer + retrieve", "lockstep.apps:billing_app", "sk_test_bench",
             {"Authorization": "Bearer sk_test_bench"}, "/v1/customers", b"name=Acme&email=a%40acme.example", FORM,
             lambda r: ("GET", f"/v1/customers/{json_path(r, 'id')}", b"")),
    CrudCase("crm (Salesforce): create Account + retrieve", "lockstep.apps:crm_app", "benchtoken",
             {"Authorization": "Bearer benchtoken"}, "/services/data/v60.0/sobjects/Account",
             b'{"Name": "Acme", "Industry": "Technology"}', JSON,
             lambda r: ("GET", f"/services/data/v60.0/sobjects/Account/{json_path(r, 'id')}", b"")),
    CrudCase("erp (NetSuite): create customer + retrieve", "lockstep.apps:erp_app", "benchtoken",
             {"Authorization": "Bearer benchtoken"}, "/services/rest/record/v1/customer",
             b'{"companyName": "Acme", "subsidiary": {"id": "1"}}', JSON,
             lambda r: ("GET", "/services/rest/record/v1/customer/" + (r.header("location") or "/0").rsplit("/", 1)[1]
                        if r else "/", b"")),
    CrudCase("cs (Gainsight): insert company + query it", "lockstep.apps:cs_app", "benchaccesskey",
             {"accesskey": "benchaccesskey"}, "/v1/data/objects/Company", b'{"records": [{"Name": "Acme"}]}', JSON,
             lambda r: ("POST", "/v1/data/objects/query/Company", json.dumps({
                 "select": ["Gsid", "Name"], "where": {"conditions": [
                     {"name": "Gsid", "alias": "A", "value": [json_path(r, "data", "records", 0, "Gsid")],
                      "operator": "EQ"}], "expression": "A"}, "limit": 1}).encode())),
]


def crud_steps(port: int, case: CrudCase) -> list[Step]:
    host = f"{HOST}:{port}"
    create = build_request("POST", case.create_path, host, {**case.auth, "Content-Type": case.content_type},
                           case.create_body)

    def post(_: Reply | None) -> bytes:
        return create

    def read(previous: Reply | None) -> bytes:
        method, path, body = case.read(previous)
        headers = {**case.auth, "Content-Type": JSON} if body else case.auth
        return build_request(method, path, host, headers, body)

    return [post, read]


def measure_bare(seconds: float, connections: int) -> LoadResult:
    case = CrudCase("bare", "bench.bare_app:create_app", "", {}, "/v1/customers", b"name=Acme", FORM,
                    lambda r: ("GET", f"/v1/customers/{json_path(r, 'id')}", b""))
    with ServerProcess(case.factory) as server:
        result = run_load(HOST, server.port, crud_steps(server.port, case), connections=connections, seconds=seconds)
        PEAK_RSS_MB[case.name] = peak_rss_mb(server.proc.pid) if server.proc else None
        return result


def measure_mock(case: CrudCase, seconds: float, connections: int) -> LoadResult:
    with ServerProcess(case.factory, env={"LOCKSTEP_ADMIN_TOKEN": ADMIN}, health="/_sandbox/health") as server:
        admin = {"Lockstep-Admin-Token": ADMIN}
        httpx.post(f"{server.url}/_sandbox/tenants", json={"key": case.tenant}, headers=admin).raise_for_status()
        # Measure the mock, not the vendor's rate limits (those have their own tests).
        httpx.put(f"{server.url}/_sandbox/tenants/{case.tenant}/limits", json={"policies": []},
                  headers=admin).raise_for_status()
        result = run_load(HOST, server.port, crud_steps(server.port, case), connections=connections, seconds=seconds)
        PEAK_RSS_MB[case.name] = peak_rss_mb(server.proc.pid) if server.proc else None
        return result


def row(name: str, result: LoadResult, bare: LoadResult | None) -> dict[str, Any]:
    return {
        "name": name,
        "requests": result.requests,
        "errors": result.errors,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
        "ratio_to_bare": round(result.rps / bare.rps, 3) if bare and bare.rps else None,
        "peak_rss_mb": PEAK_RSS_MB.get("bare" if bare is None else name),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", nargs="*", help="substrings of case names to run")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--burst-events", type=int, default=5000, help="invoice events in the month-end burst")
    parser.add_argument("--burst-limits", choices=["off", "on"], default="off",
                        help="off: vendor limits and the core's client throttles lifted (capacity); on: as shipped")
    parser.add_argument("--no-burst", action="store_true", help="only the request/s table")
    parser.add_argument("--no-scenarios", action="store_true", help="skip the scenario-suite slot")
    args = parser.parse_args()

    bare = measure_bare(args.seconds, args.connections)
    rows = [row("bare FastAPI: create + retrieve (uvicorn[standard], 1 worker)", bare, None)]
    for case in CASES:
        if args.only and not any(part in case.name for part in args.only):
            continue
        rows.append(row(case.name, measure_mock(case, args.seconds, args.connections), bare))

    burst: dict[str, Any] | None = None
    if not args.no_burst:
        burst = run_burst_measured(events=args.burst_events, limits=args.burst_limits == "on")
    scenarios = None if args.no_scenarios else run_scenario_suite()

    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "seconds": args.seconds, "connections": args.connections}
    print(write_reports(args.out, meta, rows, burst, scenarios))
    clean_burst = burst is None or (burst["duplicates"] == 0 and burst["lost"] == 0)
    return 0 if all(r["errors"] == 0 for r in rows) and clean_burst else 1


if __name__ == "__main__":
    raise SystemExit(main())
