"""`lockstep load SHAPE`: the sandbox as local servers, a real Locust run against it, then the books.

1. `lockstep up` (four mocks + the core, SQLite, the core's client throttles as shipped) in a child process on
   a free port block (bench/burst.py's LiveSandbox).
2. The estate (bench/burst.py's build_estate): accounts linked by the core's own lead-to-cash flow, and
   `--invoices` monthly subscriptions with cards on file, each backed by an ERP sales order.
3. The load plan (loadtests/plan.py) is written to the run's directory; Locust runs headless on it: one
   local process, or with `--workers N` a master and N worker processes. Vendor rate limits stay on.
   CSV (`locust_stats.csv`, `_stats_history`, `_failures`, `_exceptions`) and HTML reports go to
   reports/load/<shape>-<UTC time>/.
4. Meanwhile the mocks' journals are read for 429s, classed as the core's or the load's (journal_watch.py).
5. Then the sandbox is left to settle (webhook outboxes drained, no flow enqueued or pending) for as long as
   the core keeps making progress, and the books are taken (books.py) and reconciled (core /reconcile).
6. The summary (summary.json, printed) is held to the thresholds (thresholds.toml): exit 0 pass, 1 breach
   (each breach on its own line), 2 the run could not be made (bad input, sandbox or Locust failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.burst import LiveSandbox, build_estate, ok
from bench.suite import tree_peak_rss
from loadtests.books import Before, SettleTimeout, books, settle, snapshot
from loadtests.journal_watch import JournalWatch, ThrottleTally
from loadtests.plan import MONTH_END_ADVANCE_S, PLAN_ENV, Plan
from loadtests.profiles import PROFILES, Profile
from loadtests.report import format_summary, read_stats
from loadtests.thresholds import breaches, load_thresholds
from lockstep.sandbox import Sandbox

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
EXIT_PASS, EXIT_BREACH, EXIT_ERROR = 0, 1, 2


class LoadRunError(RuntimeError):
    """The run could not be made (exit code 2): the message is the one line to print."""


@dataclass
class LoadOptions:
    shape: str
    users: int = 30
    duration_s: float = 120.0
    workers: int = 0
    invoices: int = 200
    subs_per_account: int = 25
    seed: int = 7
    thresholds: Path | None = None
    out: Path = Path("reports/load")
    stall_s: float = 300.0  # settling gives up after this long without progress
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.shape not in PROFILES:
            raise LoadRunError(f"unknown shape {self.shape!r}; shapes: {', '.join(PROFILES)}")
        for name, value, low in (("--users", self.users, 1), ("--duration", self.duration_s, 5),
                                 ("--workers", self.workers, 0), ("--invoices", self.invoices, 1),
                                 ("--subs-per-account", self.subs_per_account, 1)):
            if value < low:
                raise LoadRunError(f"{name} must be at least {low} (got {value})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_load(opts: LoadOptions, *, say: Callable[[str], None] = print) -> int:
    """The whole run; returns the exit code. Raises LoadRunError (exit 2) when the run cannot be made."""
    opts.validate()
    thresholds = load_thresholds(opts.thresholds)  # a bad file stops us before anything starts
    run_dir = opts.out / f"{opts.shape}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        live = LiveSandbox(client_limits=True).start()
    except (RuntimeError, TimeoutError) as exc:
        raise LoadRunError(f"the sandbox did not start: {str(exc).splitlines()[0]}") from exc
    try:
        say(f"lockstep load {opts.shape}: sandbox up (port offset {live.port_offset}); reports in {run_dir}")
        summary = asyncio.run(_run(live, opts, PROFILES[opts.shape], run_dir, say))
        pid = live.pid()
        summary["run"]["peak_rss_mb"] = tree_peak_rss(pid, "lockstep up (4 mocks)") if pid else {}
    except LoadRunError:
        raise
    except Exception as exc:  # one line on the terminal; the traceback and the sandbox's log in the run dir
        (run_dir / "error.log").write_text(traceback.format_exc())
        raise LoadRunError(f"the run failed: {type(exc).__name__}: {str(exc)[:300]} "
                           f"(traceback in {run_dir / 'error.log'})") from exc
    finally:
        with contextlib.suppress(OSError):
            shutil.copyfile(live.log_path, run_dir / "lockstep-up.log")
        live.stop()
    return judge(summary, thresholds, run_dir, say)


def judge(summary: dict[str, Any], thresholds: dict[str, float], run_dir: Path | None,
          say: Callable[[str], None] = print) -> int:
    found = breaches(summary, thresholds)
    if summary["run"].get("cut_short"):
        found.append(f"the load did not run its course: {summary['run']['cut_short']}")
    summary["thresholds"], summary["breaches"] = thresholds, found
    if run_dir is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    say(format_summary(summary))
    for line in found:
        say(line)
    say("load run: FAIL" if found else "load run: PASS (every threshold held)")
    return EXIT_BREACH if found else EXIT_PASS


def check_summary(path: Path, thresholds_path: Path | None, say: Callable[[str], None] = print) -> int:
    """Hold an earlier run's summary.json to (other) thresholds, without running anything."""
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LoadRunError(f"cannot read summary {path}: {exc}") from exc
    if not isinstance(summary, dict) or "figures" not in summary or "endpoints" not in summary:
        raise LoadRunError(f"{path} is not a `lockstep load` summary.json")
    return judge(summary, load_thresholds(thresholds_path), None, say)


async def _run(live: LiveSandbox, opts: LoadOptions, profile: Profile, run_dir: Path,
               say: Callable[[str], None]) -> dict[str, Any]:
    sandbox = await live.connect()
    try:
        setup_timeout = 600.0 + opts.invoices * 2.0  # the estate's first invoices go through the core too
        estate = await build_estate(sandbox, invoices=opts.invoices, subs_per_account=opts.subs_per_account,
                                    tag=f"load{opts.seed}", timeout=setup_timeout, say=say)
        for account in estate.accounts:
            account["cs_company"] = ok(await sandbox.core.get(f"/crosswalk/{account['account']}"))["refs"].get("cs", "")
        say(f"  estate: {len(estate.accounts)} accounts, {len(estate.subscriptions)} monthly subscriptions "
            f"({estate.setup_seconds:.0f} s; {len(estate.setup_flow_failures)} set-up flows not SUCCESS)")
        before = await snapshot(sandbox)
        plan = _plan(opts, profile, live, sandbox, estate.accounts, before)
        plan_path = plan.dump(run_dir / "plan.json")
        watch = JournalWatch({s: sandbox.control(s) for s in sandbox.keys})
        await watch.start()
        try:
            say(f"  locust: {profile.name} ({profile.summary}); {opts.users} peak users, {opts.duration_s:.0f} s, "
                f"{'local' if not opts.workers else f'master + {opts.workers} workers'}")
            locust_s = await _locust(plan_path, run_dir, opts.workers, opts.duration_s)
            cut_short = _cut_short(run_dir, locust_s, opts.duration_s)
            say(f"  locust done in {locust_s:.0f} s{f' ({cut_short})' if cut_short else ''}; settling (webhooks "
                "drained, no active flow) ...")
            cap_s = 600.0 + opts.invoices * 4.0
            try:
                settled = await settle(sandbox, stall_s=opts.stall_s, cap_s=cap_s, say=say)
            except SettleTimeout as exc:
                settled = {"error": str(exc)}
                say(f"  {exc}")
        finally:
            tally = await watch.stop()
        subscriptions = estate.subscriptions if profile.runs_invoices else set()
        taken = await books(sandbox, before, subscriptions, [a["account"] for a in estate.accounts])
        if profile.runs_invoices:  # every subscription renews once in a month-end run; one that did not is lost
            taken["invoices_not_run"] = max(0, len(estate.subscriptions) - taken["invoices"])
            taken["lost"] += taken["invoices_not_run"]
            taken["lost_detail"]["invoices_not_run"] = taken["invoices_not_run"]
        if "error" in settled:
            taken["lost"] = max(taken["lost"], 1)  # not quiet: nothing proves the rest arrives
        summary = _summary(opts, profile, estate_info(estate), run_dir, locust_s, settled, tally, taken)
        summary["run"]["cut_short"] = cut_short
        return summary
    finally:
        await sandbox.aclose()


def estate_info(estate: Any) -> dict[str, Any]:
    return {"accounts": len(estate.accounts), "invoices": len(estate.subscriptions),
            "setup_s": round(estate.setup_seconds, 1), "setup_flows": estate.setup_flows,
            "setup_flows_not_success": len(estate.setup_flow_failures)}


def _plan(opts: LoadOptions, profile: Profile, live: LiveSandbox, sandbox: Sandbox, accounts: list[dict[str, str]],
          before: Before) -> Plan:
    return Plan(
        shape=opts.shape, users=opts.users, duration_s=opts.duration_s, seed=opts.seed, urls=live.urls,
        keys=dict(sandbox.keys), admin_token=live.admin_token, accounts=accounts,
        stages=profile.stages(opts.users, opts.duration_s),
        tick_at_s=None if profile.tick_fraction is None else profile.tick_fraction * opts.duration_s,
        tick_to=None if profile.tick_fraction is None else float(before.billing_clock + MONTH_END_ADVANCE_S),
        mix=dict(profile.mix))


async def _locust(plan_path: Path, run_dir: Path, workers: int, duration_s: float) -> float:
    """Locust headless on the plan: local, or a master and `workers` worker processes. Returns its wall time."""
    env = {**os.environ, PLAN_ENV: str(plan_path.resolve()), "PYTHONUNBUFFERED": "1"}
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "INFO"]
    main = [*base, "--headless", "--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust.html"),
            "--exit-code-on-error", "0", "--stop-timeout", "120", "--only-summary"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    started = time.monotonic()
    try:
        if workers:
            port = _free_port()
            main += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                     "--expect-workers", str(workers), "--expect-workers-max-wait", "120"]
        logs.append(open(run_dir / "locust-master.log", "wb"))  # noqa: SIM115 - closed in finally
        procs.append(subprocess.Popen(main, env=env, stdout=logs[-1], stderr=subprocess.STDOUT))
        for i in range(workers):
            logs.append(open(run_dir / f"locust-worker-{i}.log", "wb"))  # noqa: SIM115
            procs.append(subprocess.Popen([*base, "--worker", "--master-host", "127.0.0.1", "--master-port",
                                           str(port)], env=env, stdout=logs[-1], stderr=subprocess.STDOUT))
        deadline = started + duration_s + 300 + 120
        while procs[0].poll() is None:
            if time.monotonic() > deadline:
                raise LoadRunError(f"locust did not finish by {deadline - started:.0f} s; see {run_dir}")
            dead = [p for p in procs[1:] if p.poll() not in (None, 0)]
            if dead:
                raise LoadRunError(f"a locust worker exited with {dead[0].returncode}; see {run_dir}")
            await asyncio.sleep(0.5)
        if procs[0].returncode != 0:
            tail = (run_dir / "locust-master.log").read_text(errors="replace").splitlines()[-5:]
            raise LoadRunError(f"locust exited with {procs[0].returncode}: {' | '.join(tail)}")
        if not (run_dir / "locust_stats.csv").exists():
            raise LoadRunError(f"locust wrote no stats CSV; see {run_dir / 'locust-master.log'}")
        return time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for log in logs:
            log.close()


def _cut_short(run_dir: Path, locust_s: float, duration_s: float) -> str | None:
    """Why Locust stopped before the shape's end, if it did (a lost worker ends a distributed run early)."""
    log = (run_dir / "locust-master.log").read_text(errors="replace")
    for line in log.splitlines():
        if "went missing" in line or "failed to send heartbeat" in line:
            return f"locust stopped early: {line.split(': ', 1)[-1].strip()}"
    if locust_s < duration_s - 2:
        return f"locust stopped after {locust_s:.0f} s of {duration_s:.0f}"
    return None


def _exceptions(run_dir: Path) -> int:
    path = run_dir / "locust_exceptions.csv"
    if not path.exists():
        return 0
    import csv

    with path.open(newline="") as fh:
        return sum(int(row.get("Count") or 0) for row in csv.DictReader(fh))


def _summary(opts: LoadOptions, profile: Profile, estate: dict[str, Any], run_dir: Path, locust_s: float,
             settled: dict[str, Any], tally: ThrottleTally, taken: dict[str, Any]) -> dict[str, Any]:
    endpoints, totals = read_stats(run_dir / "locust_stats.csv")
    exceptions = _exceptions(run_dir)
    failures = totals["failures"] + exceptions
    requests = max(1, totals["requests"])
    figures = {
        "requests": totals["requests"], "rps": totals["rps"], "failures": failures,
        "user_exceptions": exceptions, "failure_ratio": round(failures / requests, 5),
        "load_429s": totals["throttled"], "load_429_ratio": round(totals["throttled"] / requests, 5),
        "core_429s": tally.total("core"), "core_429_ratio": tally.core_429_ratio(),
        "core_requests": tally.calls("core"),
        "reconcile_failures": 1 if taken["reconcile"].get("failed") else 0,
        "reconcile_findings": taken["reconcile"]["findings"],
        **{k: taken[k] for k in ("invoices", "invoice_events", "events_per_s", "invoice_run_wall_s",
                                 "flow_run_p50_ms", "flow_run_p99_ms", "duplicates", "lost", "dlq",
                                 "inbox_duplicates_absorbed")},
    }
    return {
        "run": {"shape": profile.name, "users": opts.users, "duration_s": opts.duration_s, "workers": opts.workers,
                "seed": opts.seed, "locust_s": round(locust_s, 1), "run_dir": str(run_dir), **estate,
                "options": {k: str(v) for k, v in asdict(opts).items()}},
        "figures": figures,
        "endpoints": endpoints,
        "books": taken,
        "throttling": tally.to_dict(),
        "settle": settled,
        "reports": {"html": str(run_dir / "locust.html"), "csv": str(run_dir / "locust_stats.csv"),
                    "plan": str(run_dir / "plan.json")},
    }
