"""`lockstep run [PATH...]`: run scenario files (default: every shipped pack) and write reports."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx

from lockstep.scenario.engine import run_suite, select
from lockstep.scenario.loader import ScenarioFileError, load_paths
from lockstep.scenario.model import json_schema
from lockstep.scenario.reports import write_reports
from lockstep.scenario.results import ScenarioResult, SuiteResult
from lockstep.scenario.target import Target

__all__ = ["add_parser", "cmd_run", "packs_dir"]

_LABEL = {"passed": "PASS ", "failed": "FAIL ", "error": "ERROR", "xfail": "XFAIL", "xpass": "XPASS"}


def packs_dir() -> Path:
    """The scenario packs shipped with lockstep (scenarios/packs)."""
    import scenarios

    return Path(scenarios.__file__).resolve().parent / "packs"


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="run scenario files (default: every shipped pack) and write reports",
                         description="Run scenarios in-process (default) or against running servers; exit 1 when "
                                     "any scenario fails, 2 on bad input.")
    run.add_argument("paths", nargs="*", type=Path, help="scenario files or directories (default: the packs)")
    run.add_argument("--target", default="inprocess",
                     help="inprocess | local (lockstep up on this machine, LOCKSTEP_ADMIN_TOKEN) | "
                          "crm=URL,erp=URL,billing=URL,cs=URL,core=URL")
    run.add_argument("--port-offset", type=int, default=0, help="with --target local: lockstep up --port-offset N")
    run.add_argument("--admin-token", default=None, help="the mocks' admin token (default: $LOCKSTEP_ADMIN_TOKEN)")
    run.add_argument("--seed", type=int, default=None, help="seed for every scenario (default: each file's, else 0)")
    run.add_argument("-k", dest="keyword", default=None, help="only scenarios whose pack/name contains this "
                                                              "('not x' excludes)")
    run.add_argument("--tag", action="append", default=[], help="only scenarios with this tag or pack (repeatable)")
    run.add_argument("--exclude-tag", action="append", default=[], help="skip scenarios with this tag")
    run.add_argument("-j", "--concurrency", type=int, default=6,
                     help="scenarios run at once per sandbox (shared ones; exclusive ones run alone)")
    run.add_argument("-w", "--workers", type=int, default=1,
                     help="in-process only: worker processes, each with its own sandbox (default 1)")
    run.add_argument("--report-dir", type=Path, default=Path("reports/scenarios"),
                     help="where report.json, junit.xml and report.html go (default: reports/scenarios)")
    run.add_argument("--json", dest="json_path", type=Path, default=None, help="JSON report path")
    run.add_argument("--junit", dest="junit_path", type=Path, default=None, help="JUnit XML path")
    run.add_argument("--html", dest="html_path", type=Path, default=None, help="HTML report path")
    run.add_argument("--no-reports", action="store_true", help="print results only")
    run.add_argument("--skip-invariant", action="append", default=[],
                     choices=["duplicates", "crosswalk", "stuck_flows", "reconcile"],
                     help="leave out a standing invariant for every scenario (shown as skipped in reports)")
    run.add_argument("--list", action="store_true", help="list the selected scenarios and exit")
    run.add_argument("--print-schema", action="store_true", help="print the scenario JSON Schema and exit")
    run.set_defaults(func=cmd_run)


def _live_urls(spec: str) -> tuple[dict[str, str], str]:
    parts = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
    missing = [n for n in ("crm", "erp", "billing", "cs", "core") if n not in parts]
    if missing or len(parts) != len([p for p in spec.split(",") if p]):
        raise ValueError(f"--target {spec!r}: give crm=URL,erp=URL,billing=URL,cs=URL,core=URL "
                         f"(missing: {', '.join(missing) or 'none'})")
    core = parts.pop("core")
    return parts, core


async def _target(args: argparse.Namespace) -> Target:
    if args.target == "inprocess":
        return await Target.inprocess(seed=args.seed or 0)
    if args.target == "local":
        return await Target.local(args.port_offset, args.admin_token)
    urls, core = _live_urls(args.target)
    import os

    token = args.admin_token or os.environ.get("LOCKSTEP_ADMIN_TOKEN")
    if not token:
        raise ValueError("a live target needs the mocks' admin token: --admin-token or LOCKSTEP_ADMIN_TOKEN")
    return await Target.live(urls, token, core)


class Progress:
    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.done, self.out = total, 0, out

    def __call__(self, r: ScenarioResult) -> None:
        self.done += 1
        width = len(str(self.total))
        line = f"[{self.done:>{width}}/{self.total}] {_LABEL[r.status]} {r.id} ({r.duration_s:.1f}s)"
        if r.status == "xpass":
            line += f"\n      known issue did not reproduce: {(r.known_issue or '').strip()[:300]}"
        elif r.status != "passed":
            line += "\n      " + r.message.replace("\n", "\n      ")[:1500]
        print(line, file=self.out, flush=True)


async def _run(args: argparse.Namespace, items: list[Any], problems: list[str]) -> SuiteResult:
    if args.workers > 1:
        if args.target != "inprocess":
            raise ValueError("--workers needs --target inprocess (a live core is wired to one tenant set)")
        from lockstep.scenario.workers import run_in_workers

        suite = await asyncio.to_thread(run_in_workers, items, workers=args.workers, seed=args.seed,
                                        concurrency=args.concurrency, timeline=not args.no_reports,
                                        skip_invariants=frozenset(args.skip_invariant),
                                        on_result=Progress(len(items), sys.stdout))
        suite.problems = problems
        return suite
    target = await _target(args)
    try:
        suite = await run_suite(items, target, seed=args.seed, concurrency=args.concurrency,
                                timeline=not args.no_reports, skip_invariants=frozenset(args.skip_invariant),
                                on_result=Progress(len(items), sys.stdout))
    finally:
        await target.aclose()
    suite.problems = problems
    return suite


def cmd_run(args: argparse.Namespace) -> int:
    if args.workers < 1 or args.concurrency < 1:
        print("lockstep run: --workers and --concurrency must be at least 1", file=sys.stderr)
        return 2
    if args.print_schema:
        print(json.dumps(json_schema(), indent=2))
        return 0
    try:
        loaded, problems = load_paths(args.paths or [packs_dir()])
    except ScenarioFileError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    if problems:
        print("\n".join(problems), file=sys.stderr)
    items = select(loaded, keyword=args.keyword, tags=args.tag, exclude_tags=args.exclude_tag)
    if args.list:
        for item in items:
            flags = " [exclusive]" if item.scenario.exclusive else ""
            print(f"{item.id}{flags}  {item.path}")
        return 2 if problems else 0
    if not items:
        print("no scenario selected" + (" (and some files could not be loaded)" if problems else ""),
              file=sys.stderr)
        return 2
    print(f"lockstep run: {len(items)} scenario(s), target {args.target}, {args.workers} worker(s) x "
          f"concurrency {args.concurrency}", flush=True)
    if args.target == "inprocess":
        import logging

        logging.getLogger("dbos").setLevel(logging.CRITICAL)  # flow errors are in the report (DLQ, flow status)
    try:
        suite = asyncio.run(_run(args, items, problems))
    except (ValueError, OSError, httpx.HTTPError) as exc:
        print(f"lockstep run: cannot reach the target: {exc}" if isinstance(exc, httpx.HTTPError | OSError)
              else f"lockstep run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lockstep run: interrupted", file=sys.stderr)
        return 130
    if not args.no_reports:
        d = args.report_dir
        written = write_reports(suite, json_path=args.json_path or d / "report.json",
                                junit_path=args.junit_path or d / "junit.xml",
                                html_path=args.html_path or d / "report.html")
        print("reports: " + ", ".join(str(p) for p in written))
    counts = ", ".join(f"{v} {k}" for k, v in suite.counts().items() if v)
    print(f"{'OK' if suite.ok else 'FAILED'}: {counts} in {suite.duration_s:.1f}s"
          + (f"; {len(problems)} file problem(s)" if problems else ""))
    if problems:
        return 2
    return 0 if suite.ok else 1
