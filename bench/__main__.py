"""`make bench`: each mock beside a bare FastAPI endpoint, same server stack, same client, same run.

Writes reports/bench.json and reports/bench.md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import LoadResult, build_request, json_id, run_load
from bench.servers import ServerProcess

ADMIN = "bench-admin"
HOST = "127.0.0.1"


def crud_steps(port: int, auth: dict[str, str], body: bytes, content_type: str) -> list:
    host = f"{HOST}:{port}"
    create = build_request("POST", "/v1/customers", host, {**auth, "Content-Type": content_type}, body)

    def post(_: bytes | None) -> bytes:
        return create

    def get(previous: bytes | None) -> bytes:
        return build_request("GET", f"/v1/customers/{json_id(previous)}", host, auth)

    return [post, get]


def measure_bare(seconds: float, connections: int) -> LoadResult:
    with ServerProcess("bench.bare_app:create_app") as server:
        steps = crud_steps(server.port, {}, b"name=Acme&email=a%40acme.example", "application/x-www-form-urlencoded")
        return run_load(HOST, server.port, steps, connections=connections, seconds=seconds)


def measure_billing(seconds: float, connections: int) -> LoadResult:
    key = "sk_test_bench"
    env = {"LOCKSTEP_ADMIN_TOKEN": ADMIN}
    with ServerProcess("lockstep.apps:billing_app", env=env, health="/_sandbox/health") as server:
        admin = {"Lockstep-Admin-Token": ADMIN}
        httpx.post(f"{server.url}/_sandbox/tenants", json={"key": key}, headers=admin).raise_for_status()
        # The bench measures the mock, not Stripe's 25 req/s test-mode limit.
        httpx.put(f"{server.url}/_sandbox/tenants/{key}/limits", json={"policies": []},
                  headers=admin).raise_for_status()
        steps = crud_steps(server.port, {"Authorization": f"Bearer {key}"},
                           b"name=Acme&email=a%40acme.example", "application/x-www-form-urlencoded")
        return run_load(HOST, server.port, steps, connections=connections, seconds=seconds)


def row(name: str, result: LoadResult, bare: LoadResult | None) -> dict[str, Any]:
    return {
        "name": name,
        "requests": result.requests,
        "errors": result.errors,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
        "ratio_to_bare": round(result.rps / bare.rps, 3) if bare and bare.rps else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()

    bare = measure_bare(args.seconds, args.connections)
    rows = [row("bare FastAPI (uvicorn[standard], 1 worker)", bare, None)]
    rows.append(row("billing mock: create customer + retrieve", measure_billing(args.seconds, args.connections), bare))

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "seconds": args.seconds,
            "connections": args.connections}
    (args.out / "bench.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = ["| benchmark | req/s | ratio to bare | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["ratio_to_bare"] is None else f"{r['ratio_to_bare']:.2f}"
        lines.append(f"| {r['name']} | {r['rps']:.0f} | {ratio} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")
    table = "\n".join(lines)
    (args.out / "bench.md").write_text(table + "\n")
    print(table)
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
