"""Run scenarios: set up, play the steps, check expectations and the standing invariants, keep a timeline.

Scheduling (see README "Scenarios: parallelism"): the core is wired to one tenant set, so scenarios share
it. Scenarios that touch only their own records (their own accounts, their own billing test clocks) run
concurrently, up to `concurrency` at a time, and keep apart by their seed-derived names and ids. Scenarios
that change something tenant-wide (faults, limits, API versions, webhook chaos, a mock's tenant clock)
are `exclusive`: they run afterwards, one at a time, and every tenant-wide change is undone after each.
"""

from __future__ import annotations

import asyncio
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import jmespath

from lockstep.sandbox import QuiesceTimeout
from lockstep.scenario import actions
from lockstep.scenario.actions import ActionError
from lockstep.scenario.bindings import BindingError, Bindings
from lockstep.scenario.checks import evaluate, list_flows
from lockstep.scenario.invariants import check_invariants
from lockstep.scenario.loader import LoadedScenario
from lockstep.scenario.model import (
    AccountSpec,
    ActStep,
    AdvanceStep,
    AwaitStep,
    BookedSpec,
    ChaosStep,
    DealSpec,
    DoStep,
    DriftStep,
    ExpectStep,
    FaultStep,
    LimitStep,
)
from lockstep.scenario.results import Check, Event, ScenarioResult, StepResult, SuiteResult
from lockstep.scenario.target import Target

__all__ = ["ScenarioRun", "StepFailure", "parse_duration", "run_scenario", "run_suite", "select"]

_ID_KEYS = {"id", "Gsid", "latest_invoice", "invoice", "subscription", "customer", "ExternalId"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class StepFailure(AssertionError):
    """Checks did not hold (status failed), as opposed to an error (the step could not be played)."""


def parse_duration(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ActionError(f"{value!r} is not a duration (e.g. 90s, 15m, 2h, 32d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class ScenarioRun:
    """One scenario being played against a target: its bindings, the ids it has seen, its timeline."""

    def __init__(self, loaded: LoadedScenario, target: Target, seed: int) -> None:
        self.loaded = loaded
        self.target = target
        self.seed = seed
        self.nonce = uuid.uuid4().hex[:8]  # never reported (names are masked)
        self.bindings = Bindings({"scenario": loaded.scenario.name, "seed": seed, "run": self.nonce,
                                  "api": {"crm": target.api_root("crm"), "erp": target.api_root("erp")}})
        self.timeline: list[Event] = []
        self.seen_ids: set[str] = set()

    # -- bookkeeping -----------------------------------------------------------------------------------

    def event(self, lane: str, kind: str, text: str, status: str = "ok") -> None:
        self.timeline.append(Event(time.time(), lane, kind, text, status))

    def saw(self, response: httpx.Response) -> None:
        """Remember ids in a response, so the flows they start count as this scenario's."""
        try:
            body = response.json() if response.content else None
        except ValueError:
            return

        def walk(value: Any, depth: int) -> None:
            if depth > 6:
                return
            if isinstance(value, dict):
                for k, v in value.items():
                    if k in _ID_KEYS and isinstance(v, str) and len(v) >= 4:
                        self.seen_ids.add(v)
                    walk(v, depth + 1)
            elif isinstance(value, list):
                for v in value[:200]:
                    walk(v, depth + 1)

        walk(body, 0)

    def accounts(self) -> list[tuple[str, dict[str, Any]]]:
        return [(k, v) for k, v in self.bindings.values.items() if isinstance(v, dict) and "crm" in v and "name" in v]

    def tokens(self) -> set[str]:
        out = set(self.seen_ids)
        for value in self.bindings.names():
            out.add(value)
        return {t for t in out if len(t) >= 4}

    @staticmethod
    def owns(key: str, tokens: set[str]) -> bool:
        return key in tokens or any(part in tokens for part in re.split(r"[:~]", key))

    def masked(self, value: Any) -> Any:
        return self.bindings.mask(value)


def select(items: Iterable[LoadedScenario], *, keyword: str | None = None, tags: Iterable[str] = (),
           exclude_tags: Iterable[str] = ()) -> list[LoadedScenario]:
    """-k: substring of pack/name (case-insensitive; `not x` excludes); tags: any of; exclude_tags: none of."""
    wanted, unwanted = set(tags), set(exclude_tags)
    out = []
    for item in items:
        if keyword:
            kw = keyword.strip().lower()
            hit = kw.removeprefix("not ").strip() in item.id.lower()
            if hit == kw.startswith("not "):
                continue
        if wanted and not wanted & set(item.scenario.tags) and item.pack not in wanted:
            continue
        if unwanted & set(item.scenario.tags):
            continue
        out.append(item)
    return out


# -- playing one scenario --------------------------------------------------------------------------------------


def _title(kind: str, spec: Any) -> str:
    if kind == "act":
        return f"{spec.system} {spec.method} {spec.path}"
    if kind == "do":
        args = ", ".join(f"{k}={v}" for k, v in spec.args.items())
        return f"{spec.action}({args})"
    if kind == "advance":
        return f"advance {'clock of ' + spec.clock if spec.clock else spec.system + ' tenant clock'} by {spec.by}"
    if kind == "fault":
        return f"{spec.system} faults: {len(spec.rules)} rule(s)"
    if kind == "limit":
        return f"{spec.system} limits: " + ("defaults" if spec.policies is None else f"{len(spec.policies)} policies")
    if kind == "drift":
        return f"{spec.system} API version -> {spec.version}"
    if kind == "chaos":
        return (f"{spec.system} webhook chaos: dup {spec.duplicate_probability}, reorder {spec.reorder_probability}, "
                f"delay {spec.delay_ms} ms")
    if kind == "await":
        if spec == "quiet" or getattr(spec, "quiet", None):
            return "await quiet"
        if getattr(spec, "flow", None):
            return f"await flow {spec.flow}"
        return f"await {len(spec.until)} condition(s)"
    return f"expect {len(spec)} check(s)"


async def _save(run: ScenarioRun, save: dict[str, str] | None, body: Any) -> None:
    for name, path in (save or {}).items():
        value = jmespath.search(path, body)
        if value is None:
            raise ActionError(f"save {name}: {path!r} found nothing in the response")
        run.bindings.bind(name, value)


def _saveable(response: httpx.Response) -> Any:
    """What `save:` paths read: the JSON body; for an empty body (a 204 with a Location, NetSuite-style)
    {"location_id": last segment of Location, "headers": {...}}."""
    if response.content:
        try:
            return response.json()
        except ValueError:
            return {"text": response.text}
    location = response.headers.get("location", "")
    return {"location_id": location.rstrip("/").rsplit("/", 1)[-1] if location else None,
            "headers": {k.lower(): v for k, v in response.headers.items()}}


async def _act(run: ScenarioRun, step: ActStep) -> None:
    act, render = step.act, run.bindings.render
    path = render(act.path)
    response = await run.target.call(act.system, act.method, path, params=render(act.params),
                                     json=render(act.json_body), form=render(act.form), headers=render(act.headers))
    run.saw(response)
    wanted = act.expect_status
    good = response.status_code in ([wanted] if isinstance(wanted, int) else wanted) if wanted is not None \
        else response.status_code < 400
    run.event(act.system, "call", f"{act.method} {run.masked(path)} -> {response.status_code}",
              "ok" if good else "failed")
    if not good:
        raise StepFailure(f"{act.method} {run.masked(path)}: expected status {wanted or '2xx'}, actual "
                          f"{response.status_code}: {run.masked(response.text[:300])}")
    if act.save:
        await _save(run, act.save, _saveable(response))


async def _advance(run: ScenarioRun, step: AdvanceStep) -> None:
    spec = step.advance
    seconds = parse_duration(spec.by)
    if spec.clock:
        acct = run.bindings.values.get(spec.clock)
        clock = acct.get("clock") if isinstance(acct, dict) else None
        if not clock:
            raise ActionError(f"advance: {spec.clock!r} is not an account with a billing test clock")
        await actions.advance_test_clock(run, clock, seconds, wait=spec.settle)
        run.event("billing", "clock", f"test clock of {spec.clock} +{spec.by}")
    else:
        assert spec.system is not None
        actions.ok(await run.target.control(spec.system, "POST", "/clock/advance", json={"by": seconds}),
                   f"{spec.system} clock")
        run.event(spec.system, "clock", f"tenant clock +{spec.by}")
    if spec.settle:
        await run.target.quiet()


async def _tenant_change(run: ScenarioRun, step: Any) -> None:
    t = run.target
    if isinstance(step, FaultStep):
        r = await t.set_faults(step.fault.system, run.bindings.render(step.fault.rules))
        lane, kind, text = step.fault.system, "fault", f"{len(step.fault.rules)} fault rule(s)"
    elif isinstance(step, LimitStep):
        r = await t.set_limits(step.limit.system, step.limit.policies)
        lane, kind, text = step.limit.system, "limit", _title("limit", step.limit)
    elif isinstance(step, DriftStep):
        r = await t.set_version(step.drift.system, step.drift.version)
        lane, kind, text = step.drift.system, "drift", f"API version {step.drift.version}"
    else:
        assert isinstance(step, ChaosStep)
        r = await t.set_chaos(step.chaos.system, step.chaos.model_dump(exclude={"system"}))
        lane, kind, text = step.chaos.system, "chaos", _title("chaos", step.chaos)
    actions.ok(r, f"{kind} on {lane}")
    run.event(lane, kind, text)


async def _expect(run: ScenarioRun, expectations: list[Any], base_line: int, index: int) -> list[Check]:
    checks: list[Check] = []
    for j, exp in enumerate(expectations):
        checks.extend(await evaluate(run, exp, run.loaded.line_of(("steps", index, "expect", j)) or base_line))
    return checks


async def _await(run: ScenarioRun, step: AwaitStep, index: int, result: StepResult) -> None:
    spec = step.await_
    if spec == "quiet" or getattr(spec, "quiet", None):
        await run.target.quiet(getattr(spec, "timeout", 30.0))
        run.event("core", "await", "quiet")
        return
    if spec.flow:
        statuses = [spec.status] if isinstance(spec.status, str) else (spec.status or ["SUCCESS"])
        key = run.bindings.render(spec.flow)
        try:
            flow = await run.target.sandbox.wait_flow(key, statuses=statuses, timeout=spec.timeout)
        except QuiesceTimeout as exc:
            raise StepFailure(run.masked(str(exc))) from None
        run.event("core", "await", f"flow {run.masked(key)} {flow['status']}")
        return
    deadline = time.monotonic() + spec.timeout
    while True:
        checks = []
        for j, exp in enumerate(spec.until or []):
            checks.extend(await evaluate(run, exp, run.loaded.line_of(("steps", index, "await", "until", j))))
        if all(c.ok for c in checks):
            result.checks = checks
            run.event("core", "await", "conditions hold")
            return
        if time.monotonic() > deadline:
            result.checks = checks
            raise StepFailure(f"conditions still false after {spec.timeout} s")
        await asyncio.sleep(0.05)


async def _step(run: ScenarioRun, step: Any, index: int, result: StepResult) -> None:
    if isinstance(step, ActStep):
        await _act(run, step)
    elif isinstance(step, DoStep):
        fn = actions.ACTIONS[step.do.action]
        out = await fn(run, run.bindings.render(step.do.args))
        run.event("crm" if step.do.action in ("merge", "close_won", "close_lost", "edit") else "scenario", "action",
                  run.masked(_title("do", step.do)))
        if step.do.save:
            await _save(run, step.do.save, out)
    elif isinstance(step, AdvanceStep):
        await _advance(run, step)
    elif isinstance(step, FaultStep | LimitStep | DriftStep | ChaosStep):
        await _tenant_change(run, step)
    elif isinstance(step, AwaitStep):
        await _await(run, step, index, result)
    else:
        assert isinstance(step, ExpectStep)
        if step.settle:
            await run.target.quiet()
        result.checks = await _expect(run, step.expect, result.line, index)
        failed = [c for c in result.checks if not c.ok]
        run.event("scenario", "expect", f"{len(result.checks) - len(failed)}/{len(result.checks)} checks hold",
                  "failed" if failed else "ok")
        if failed:
            raise StepFailure(f"{len(failed)} of {len(result.checks)} checks failed")


def _kind(step: Any) -> tuple[str, Any]:
    for name in ("act", "do", "advance", "fault", "limit", "drift", "chaos", "expect"):
        if hasattr(step, name):
            return name, getattr(step, name)
    return "await", step.await_


def _first_failure(result: StepResult) -> str:
    bad = [c for c in result.checks if not c.ok]
    if not bad:
        return result.error or "failed"
    c = bad[0]
    more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
    return f"{c.name}: {c.op} expected {c.expected!r}, actual {c.actual!r}{more}"


async def _setup(run: ScenarioRun, index: int, item: Any) -> None:
    if isinstance(item, AccountSpec):
        name, value = item.account, await actions.make_account(run, item)
    elif isinstance(item, BookedSpec):
        name, value = item.booked, await actions.make_booked(run, item)
    else:
        assert isinstance(item, DealSpec)
        name, value = item.deal, await actions.make_deal(run, item, item.deal)
    run.bindings.bind(name, value)
    run.seen_ids.update(v for v in value.values() if isinstance(v, str))
    run.event("scenario", "setup", f"{type(item).__name__.removesuffix('Spec').lower()} {name}")


async def _collect_flow_timeline(run: ScenarioRun) -> None:
    """The scenario's flows and their trace steps (system calls) on the timeline."""
    from datetime import datetime

    tokens = run.tokens()
    for row in await list_flows(run):
        if not run.owns(row["workflow_id"], tokens):
            continue
        view = (await run.target.core("GET", f"/flows/{row['workflow_id']}")).json()
        if "workflow_id" not in view:
            continue
        at = datetime.fromisoformat(view["created_at"]).timestamp() if view.get("created_at") else time.time()
        run.timeline.append(Event(at, "core", "flow", run.masked(f"{view['workflow_id']} {view['status']}"),
                                  "ok" if view["status"] == "SUCCESS" else "failed"))
        for step in view.get("trace") or []:
            stamp = datetime.fromisoformat(step["at"]).timestamp()
            text = run.masked(f"{step['action']} {step['status']}" + (f": {step['detail']}" if step.get("detail")
                                                                       else ""))
            run.timeline.append(Event(stamp, step["system"], "step", text[:300],
                                      "ok" if step["status"] in ("ok", "success", "done") else step["status"]))


async def run_scenario(loaded: LoadedScenario, target: Target, *, seed: int, timeline: bool = True,
                       skip_invariants: frozenset[str] = frozenset()) -> ScenarioResult:
    sc = loaded.scenario
    result = ScenarioResult(id=loaded.id, name=sc.name, pack=loaded.pack, file=str(loaded.path),
                            description=sc.description, tags=list(sc.tags), seed=seed, exclusive=sc.exclusive,
                            known_issue=sc.known_issue)
    run = ScenarioRun(loaded, target, seed)
    started = time.monotonic()
    current: StepResult | None = None
    try:
        for system, version in sc.tenant.versions.items():
            actions.ok(await target.set_version(system, version), f"{system} version")
            run.event(system, "drift", f"API version {version}")
        for system, policies in sc.tenant.limits.items():
            actions.ok(await target.set_limits(system, policies), f"{system} limits")
            run.event(system, "limit", f"{len(policies)} policies")
        for system, rules in sc.tenant.faults.items():
            actions.ok(await target.set_faults(system, rules), f"{system} faults")
            run.event(system, "fault", f"{len(rules)} fault rule(s)")
        for i, item in enumerate(sc.setup):
            current = StepResult(index=-1 - i, kind="setup", line=loaded.line_of(("setup", i)),
                                 title=f"setup {type(item).__name__.removesuffix('Spec').lower()}")
            await _setup(run, i, item)
        current = None
        for i, step in enumerate(sc.steps):
            kind, spec = _kind(step)
            current = StepResult(index=i, kind=kind, line=loaded.line_of(("steps", i)), title=_title(kind, spec))
            result.steps.append(current)
            t0 = time.monotonic()
            try:
                await _step(run, step, i, current)
            finally:
                current.duration_s = round(time.monotonic() - t0, 3)
        current = None
        await target.quiet()
        result.invariants = await check_invariants(run, skip_invariants)
        broken = [inv for inv in result.invariants if not inv.ok]
        if broken:
            result.status = "failed"
            result.message = "invariant " + "; ".join(f"{inv.name}: {inv.detail}" for inv in broken)
    except StepFailure as exc:
        _fail(result, current, "failed", str(exc))
    except (ActionError, BindingError, QuiesceTimeout, httpx.HTTPError) as exc:
        _fail(result, current, "error", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug in the engine or the sandbox: still a result, never a crash of the suite
        _fail(result, current, "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
    if timeline:
        try:
            await _collect_flow_timeline(run)
        except Exception as exc:
            run.event("scenario", "timeline", f"flows not collected: {exc}", "failed")
    result.timeline = sorted(run.timeline, key=lambda e: e.at)
    result.duration_s = round(time.monotonic() - started, 3)
    if sc.known_issue:
        result.status = "xfail" if result.status in ("failed", "error") else "xpass"
    _mask(run, result)
    return result


def _fail(result: ScenarioResult, current: StepResult | None, status: str, message: str) -> None:
    result.status = status
    if current is not None:
        current.status = status
        current.error = message
        result.failed_line = current.line
        where = "setup" if current.kind == "setup" else f"step {current.index + 1} ({current.kind})"
        detail = _first_failure(current) if current.checks and status == "failed" else message
        result.message = f"{where}, line {current.line}: {detail}"
    else:
        result.message = message


def _mask(run: ScenarioRun, result: ScenarioResult) -> None:
    names = run.bindings.names()
    result.message = run.bindings.mask(result.message, names)
    for step in result.steps:
        step.error = run.bindings.mask(step.error, names)
        for check in step.checks:
            masked = run.bindings.mask(check.expected, names)
            if not check.ok and masked != check.expected:
                # A failed check shows the value behind the binding too (readability wins over stability here).
                masked = f"{masked} = {check.expected!r}" if isinstance(masked, str) else masked
            check.expected = masked
            check.actual = run.bindings.mask(check.actual, names)
            check.name = run.bindings.mask(check.name, names)
    for event in result.timeline:
        event.text = run.bindings.mask(event.text, names)


# -- the suite ---------------------------------------------------------------------------------------------


async def run_suite(items: list[LoadedScenario], target: Target, *, seed: int | None = None,
                    concurrency: int = 6, timeline: bool = True, skip_invariants: frozenset[str] = frozenset(),
                    on_result: Callable[[ScenarioResult], None] | None = None) -> SuiteResult:
    """Shared scenarios concurrently (up to `concurrency`), then exclusive ones one at a time. Results come
    back in file order whatever order they finished in; `on_result` sees each as it finishes."""
    suite = SuiteResult(target=target.kind, seed=seed if seed is not None else 0, concurrency=concurrency)
    started = time.monotonic()
    results: dict[str, ScenarioResult] = {}
    gate = asyncio.Semaphore(max(1, concurrency))

    def seed_of(item: LoadedScenario) -> int:
        return seed if seed is not None else (item.scenario.seed if item.scenario.seed is not None else 0)

    async def one(item: LoadedScenario) -> None:
        async with gate:
            res = await run_scenario(item, target, seed=seed_of(item), timeline=timeline,
                                     skip_invariants=skip_invariants)
        results[item.id] = res
        if on_result:
            on_result(res)

    shared = [i for i in items if not i.scenario.exclusive]
    exclusive = [i for i in items if i.scenario.exclusive]
    await asyncio.gather(*(one(i) for i in shared))
    for item in exclusive:
        res = await run_scenario(item, target, seed=seed_of(item), timeline=timeline,
                                 skip_invariants=skip_invariants)
        problems = await target.restore()
        try:
            await target.quiet()
        except QuiesceTimeout as exc:
            problems.append(str(exc))
        if problems and res.ok:
            res.status, res.message = "error", "could not restore tenant settings: " + "; ".join(problems)
        results[item.id] = res
        if on_result:
            on_result(res)
    suite.scenarios = [results[i.id] for i in items]
    suite.duration_s = round(time.monotonic() - started, 3)
    return suite
