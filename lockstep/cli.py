"""`lockstep` command line: serve one mock, bring the sandbox up, run scenarios."""

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

    if args.system == CORE_NAME:
        from lockstep.services import serve_core

        return serve_core(host=args.host if args.host_given else None, port=args.port or None,
                          subscribe=args.subscribe)
    if args.system == "locust":
        from lockstep.services import serve_locust

        return serve_locust(args.locust_args)
    if args.locust_args:
        print(f"unrecognized arguments: {' '.join(args.locust_args)}", file=sys.stderr)
        return 2

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
              state_files=state_files, seed=args.seed, core=core, pace=args.pace)


def cmd_load(args: argparse.Namespace) -> int:
    """`lockstep load SHAPE`: loadtests/run.py does the work; this maps its failures to one line + exit 2."""
    from loadtests.run import EXIT_ERROR, LoadOptions, LoadRunError, check_summary, run_load
    from loadtests.thresholds import ThresholdsError

    try:
        if args.check is not None:
            return check_summary(args.check, args.thresholds)
        if not args.shape:
            raise LoadRunError("give a SHAPE (or --check SUMMARY)")
        return run_load(LoadOptions(shape=args.shape, users=args.users, duration_s=args.duration,
                                    workers=args.workers, invoices=args.invoices,
                                    subs_per_account=args.subs_per_account, seed=args.seed,
                                    thresholds=args.thresholds, out=args.out, stall_s=args.stall))
    except (LoadRunError, ThresholdsError) as exc:
        print(f"lockstep load: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:  # the sandbox and Locust were stopped on the way out
        print("lockstep load: interrupted", file=sys.stderr)
        return 130


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

    serve = sub.add_parser("serve", help="serve one mock system on a port (or the core, or locust: what each "
                                         "docker-compose service runs)")
    serve.add_argument("system", choices=[*sorted(SYSTEMS), CORE_NAME, "locust"])
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1; the core: LOCKSTEP_CORE_HOST)")
    serve.add_argument("--port", type=int, default=0, help="default: the system's standard port")
    serve.add_argument("--state-file", type=Path, default=None, help="load at start, save at stop")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--demo", action="store_true", help="seed a demo tenant")
    serve.add_argument("--subscribe", metavar="URL", default=None,
                       help="core: once up, subscribe URL/webhooks/<system> on each system (URL: the core as the "
                            "mocks reach it)")
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
    up.add_argument("--pace", type=float, default=2.5,
                    help="seconds between the demo story's beats, to watch them on the dashboard (0: no pause)")
    up.set_defaults(func=cmd_up)

    from lockstep.scenario.cli import add_parser as add_run_parser

    add_run_parser(sub)

    load = sub.add_parser("load", help="a Locust load run against the sandbox, then duplicates / lost / thresholds")
    load.add_argument("shape", nargs="?",
                      help="month_end_invoice_run | quarter_end_renewals | migration_backfill")
    load.add_argument("--users", type=int, default=30, help="peak Locust users (the baseline is ~1/15 of it)")
    load.add_argument("--duration", type=float, default=120.0, help="seconds of load (the settling comes after)")
    load.add_argument("--workers", type=int, default=0, help="N: a Locust master and N worker processes")
    load.add_argument("--invoices", type=int, default=200,
                      help="monthly subscriptions in the estate: invoices of the month-end run")
    load.add_argument("--subs-per-account", type=int, default=25)
    load.add_argument("--seed", type=int, default=7, help="seeds the estate's names and every user's choices")
    load.add_argument("--thresholds", type=Path, default=None, help="TOML (default: loadtests/thresholds.toml)")
    load.add_argument("--out", type=Path, default=Path("reports/load"), help="reports go to OUT/<shape>-<time>/")
    load.add_argument("--stall", type=float, default=300.0,
                      help="settling gives up after this many seconds without progress in the core")
    load.add_argument("--check", type=Path, default=None, metavar="SUMMARY",
                      help="hold an earlier run's summary.json to --thresholds; runs nothing")
    load.set_defaults(func=cmd_load)

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
    # `lockstep serve locust ...` passes everything after "locust" to Locust.
    raw = list(sys.argv[1:] if argv is None else argv)
    locust_args: list[str] = []
    if raw[:2] == ["serve", "locust"]:
        raw, locust_args = raw[:2], raw[2:]
    args = build_parser().parse_args(raw)
    if args.func is cmd_serve:
        args.locust_args = locust_args
        args.host_given = args.host is not None
        args.host = args.host or "127.0.0.1"
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
