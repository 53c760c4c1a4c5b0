"""`lockstep` command line: serve one mock, bring the sandbox up, and (later) run scenarios."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lockstep.systems import CORE_NAME, CORE_PORT, SYSTEMS


def _admin_token() -> str:
    token = os.environ.get("LOCKSTEP_ADMIN_TOKEN")
    if not token:
        token = secrets.token_urlsafe(18)
        os.environ["LOCKSTEP_ADMIN_TOKEN"] = token
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    from lockstep.runner import serve_one

    entry = SYSTEMS[args.system]
    token = _admin_token()
    port = args.port or entry.port
    print(f"lockstep {entry.name} mock on http://{args.host}:{port}  (admin token: {token})", flush=True)
    return serve_one(entry, host=args.host, port=port, admin_token=token, state_file=args.state_file,
                     seed=args.seed, demo=args.demo)


def cmd_up(args: argparse.Namespace) -> int:
    from lockstep.runner import CoreOptions, up

    token = _admin_token()
    # No --only: every mock and the core. --only: exactly what is named ("core" included or not).
    names = args.only or [*SYSTEMS, CORE_NAME]
    unknown = [n for n in names if n not in SYSTEMS and n != CORE_NAME]
    if unknown:
        print(f"unknown system(s): {', '.join(unknown)}; known: {', '.join([*SYSTEMS, CORE_NAME])}",
              file=sys.stderr)
        return 2
    mocks = [n for n in names if n in SYSTEMS]
    state_files = {n: args.state_dir / f"{n}.json" for n in mocks} if args.state_dir else None
    entries = [replace(SYSTEMS[n], port=SYSTEMS[n].port + args.port_offset) for n in mocks]
    core = None
    if CORE_NAME in names:
        core = CoreOptions(port=CORE_PORT + args.port_offset,
                           mock_ports={n: e.port + args.port_offset for n, e in SYSTEMS.items()},
                           data_dir=args.state_dir / CORE_NAME if args.state_dir else None)
    return up(entries, tls_dir=args.tls_dir, host=args.host, admin_token=token, demo=args.demo,
              state_files=state_files, seed=args.seed, core=core)


def cmd_drift(args: argparse.Namespace) -> int:
    from contracts.drift import classify, render
    from contracts.openapi import load

    try:
        old, new = load(args.system, args.from_version), load(args.system, args.to_version)
    except FileNotFoundError as exc:
        print(f"lockstep drift: {exc}", file=sys.stderr)
        return 2
    changes = classify(old, new)
    print(render(changes, args.format, title=f"{args.system}: API {args.from_version} -> {args.to_version}"))
    return 1 if args.fail_on_breaking and any(c.breaking for c in changes) else 0


def cmd_contracts_verify(args: argparse.Namespace) -> int:
    os.environ.setdefault("PACT_DO_NOT_TRACK", "true")
    from contracts.matrix import junit_xml, render_matrix, run_all

    unknown = [s for s in args.systems or [] if s not in SYSTEMS]
    if unknown:
        print(f"lockstep contracts verify: unknown system(s) {', '.join(unknown)}; known: {', '.join(SYSTEMS)}",
              file=sys.stderr)
        return 2
    systems = tuple(args.systems or SYSTEMS)
    rows = run_all(systems, consumer=not args.skip_consumer)
    print(render_matrix(rows))
    if args.junit is not None:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_text(junit_xml(rows))
        print(f"JUnit XML: {args.junit}")
    return 1 if any(r.gating and not r.ok for r in rows) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lockstep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve one mock system on a port")
    serve.add_argument("system", choices=sorted(SYSTEMS))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="default: the system's standard port")
    serve.add_argument("--state-file", type=Path, default=None, help="load at start, save at stop")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--demo", action="store_true", help="seed a demo tenant")
    serve.set_defaults(func=cmd_serve)

    up = sub.add_parser("up", help="start the sandbox: every mock on its standard port, the core on 8100")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--only", nargs="*",
                    help=f"start only these systems ({', '.join([*SYSTEMS, CORE_NAME])}); the core only if named")
    up.add_argument("--demo", action="store_true", help="seed demo data and play the demo flow")
    up.add_argument("--state-dir", type=Path, default=None,
                    help="keep each mock's state in DIR/<system>.json and the core's in DIR/core/ "
                         "(default: a temp dir for the core)")
    up.add_argument("--seed", type=int, default=0)
    up.add_argument("--tls-dir", type=Path, default=None,
                    help="serve the CRM over https with a local CA kept in DIR (for simple-salesforce)")
    up.add_argument("--port-offset", type=int, default=0,
                    help="add N to every standard port, the core's too (run two sandboxes)")
    up.set_defaults(func=cmd_up)

    drift = sub.add_parser("drift", help="classify the changes between two API versions of a system (OpenAPI "
                                         "snapshots in contracts/openapi/) as breaking or not")
    drift.add_argument("system", choices=sorted(SYSTEMS))
    drift.add_argument("--from", dest="from_version", required=True, metavar="VERSION")
    drift.add_argument("--to", dest="to_version", required=True, metavar="VERSION")
    drift.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    drift.add_argument("--fail-on-breaking", action="store_true", help="exit 1 when a change is breaking")
    drift.set_defaults(func=cmd_drift)

    contracts = sub.add_parser("contracts", help="Pact contracts between the core and the mocks")
    contracts_sub = contracts.add_subparsers(dest="contracts_command", required=True)
    verify = contracts_sub.add_parser("verify", help="verify every pact against every mock version; print the "
                                                     "consumer x provider x version matrix")
    verify.add_argument("--systems", nargs="*", metavar="SYSTEM", help=f"default: {' '.join(SYSTEMS)}")
    verify.add_argument("--junit", type=Path, default=None, metavar="PATH", help="write JUnit XML results here")
    verify.add_argument("--skip-consumer", action="store_true",
                        help="do not rebuild the consumer pacts (verify the committed ones only)")
    verify.set_defaults(func=cmd_contracts_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
