"""Event -> flow: flows register what they listen to and how to name the business transaction; the router
starts each one as a DBOS workflow whose id IS the business key, so a second trigger never starts a second
flow (DBOS hands back the existing workflow instead).

A flow plugs in with one call, at import time, before the runtime launches:

    register_flow(["billing:invoice.paid", "billing:invoice.payment_failed"],
                  lambda event: f"failed-payment:{event.payload['data']['object']['id']}",
                  failed_payment)

- triggers: `<system>:<event type>` patterns (fnmatch: `billing:invoice.*`); event types repeat across
  systems (ERP and billing both have `invoice.created`), so the system is always named.
- business_key_fn(IntakeEvent) -> str | None: None means "not for this flow" (e.g. an opportunity update
  that is not a close).
- workflow_fn(event: dict) -> result, sync or async. It runs inside a DBOS workflow; its side effects go in
  `@DBOS.step` functions (with retries) so they are checkpointed. The dict is `IntakeEvent.to_dict()` plus
  `business_key`, `correlation_id` and `flow`. The correlation id is in `core.trace.current()` meanwhile,
  so connectors built with `trace.async_event_hooks(system)` send it on every call.
- An exception escaping workflow_fn parks the flow in the DLQ (dlq.py) and the workflow ends in ERROR.
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dbos import DBOS, SetWorkflowID

from core import trace
from core.dlq import DeadLetters, business_key_of
from core.intake.envelopes import IntakeEvent
from core.settings import SYSTEM_NAMES

__all__ = ["FlowSpec", "FlowStart", "Router", "flow_specs", "register_flow", "subscribed_events"]

WORKFLOW_PREFIX = "lockstep.flow."
_log = logging.getLogger("lockstep.core.router")

BusinessKeyFn = Callable[[IntakeEvent], str | None]


@dataclass(frozen=True)
class FlowSpec:
    name: str
    triggers: tuple[str, ...]
    business_key: BusinessKeyFn
    fn: Callable[..., Any]
    workflow: Callable[..., Any]  # the registered DBOS workflow wrapping fn
    # State-based flows (they read the aggregate's CURRENT state when they run) name the aggregate an event
    # is about; a later event of an aggregate whose flow has not started yet is absorbed by that flow.
    coalesce_key: Callable[[IntakeEvent], str | None] | None = None

    @property
    def workflow_name(self) -> str:
        return WORKFLOW_PREFIX + self.name

    def wants(self, event: IntakeEvent) -> bool:
        return any(fnmatch.fnmatchcase(event.qualified_type, pattern) for pattern in self.triggers)


@dataclass(frozen=True)
class FlowStart:
    flow: str
    business_key: str
    workflow_id: str
    correlation_id: str
    created: bool  # False: the flow already existed (a second trigger), nothing new was started
    coalesced: bool = False  # True: absorbed by a not-yet-started flow of the same aggregate (workflow_id)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_FLOWS: dict[str, FlowSpec] = {}
# What the runner's steps write to; the runtime binds these at launch and clears them at destroy.
_services: dict[str, Any] = {"dlq": None, "trace": None}


def bind_services(dlq: DeadLetters | None, trace_log: trace.TraceLog | None) -> None:
    _services["dlq"], _services["trace"] = dlq, trace_log


def flow_specs() -> dict[str, FlowSpec]:
    return dict(_FLOWS)


def subscribed_events(system: str) -> list[str]:
    """The event types of `system` that some registered flow listens to: what the core's webhook endpoint on
    that system subscribes to (Stripe `enabled_events`, and the like), so a vendor does not send, and the
    core does not verify, store and drop, the events no flow wants. `["*"]` when a trigger is a pattern, and
    for a system no flow listens to yet (its events still land in the inbox, and in the trace as ignored)."""
    wanted: set[str] = set()
    for spec in _FLOWS.values():
        for pattern in spec.triggers:
            trigger_system, _, event_type = pattern.partition(":")
            if trigger_system != system:
                continue
            if any(ch in event_type for ch in "*?["):
                return ["*"]
            wanted.add(event_type)
    return sorted(wanted) or ["*"]


def register_flow(trigger_event_types: Iterable[str], business_key_fn: BusinessKeyFn,
                  workflow_fn: Callable[..., Any], *, name: str | None = None,
                  coalesce_key: Callable[[IntakeEvent], str | None] | None = None) -> FlowSpec:
    """Register a flow (see the module doc). Idempotent for the same function; a different function under
    a taken name is an error. Call before `Runtime.launch()`, so crash recovery finds the workflow.

    `coalesce_key(event)`: only for flows that read the current state of what the event is about when they
    run (never the event's payload). Events with the same coalesce key arriving while that key's last flow
    is still ENQUEUED (not started, so it has read nothing yet) are absorbed by it instead of starting a
    flow each: the flow will read a state that already includes them. See Router.start. A coalesce key that
    is a prefix of the business key (`<ckey>:<rest>`) is looked up in the store, so it works across core
    processes; any other only among the flows this process started."""
    flow_name = name or workflow_fn.__name__
    triggers = tuple(trigger_event_types)
    if not triggers:
        raise ValueError(f"flow {flow_name!r}: give at least one trigger event type")
    for pattern in triggers:
        system, sep, event_type = pattern.partition(":")
        if not sep or system not in SYSTEM_NAMES or not event_type:
            raise ValueError(f"flow {flow_name!r}: trigger {pattern!r} must be '<system>:<event type>' with "
                             f"system one of {', '.join(SYSTEM_NAMES)}")
    existing = _FLOWS.get(flow_name)
    if existing is not None:
        if existing.fn is workflow_fn:
            return existing
        raise ValueError(f"a different flow is already registered as {flow_name!r}")
    spec = FlowSpec(flow_name, triggers, business_key_fn, workflow_fn, _make_runner(flow_name, workflow_fn),
                    coalesce_key)
    _FLOWS[flow_name] = spec
    return spec


# -- the runner: what every flow runs inside ------------------------------------------------------------


@DBOS.step(name="lockstep.park", retries_allowed=True, max_attempts=5, interval_seconds=0.1)
def _park(flow: str, event: dict[str, Any], attempt_id: str, exc: BaseException) -> int:
    letters: DeadLetters | None = _services["dlq"]
    if letters is None:
        raise RuntimeError("no runtime bound: cannot park the flow")
    entry = letters.park(business_key=event["business_key"], flow=flow, attempt_id=attempt_id,
                         correlation_id=event.get("correlation_id"), exc=exc, payload=event)
    log: trace.TraceLog | None = _services["trace"]
    if log is not None:
        log.add(system="core", action=f"flow {flow} parked", status="parked", correlation_id=event.get(
            "correlation_id"), flow_id=attempt_id, detail=f"{entry.error_class}: {entry.error_message}"[:2000])
    _log.warning("flow %s (%s) parked in the DLQ: %s", flow, attempt_id, entry.error_message)
    return entry.id


@DBOS.step(name="lockstep.finish", retries_allowed=True, max_attempts=5, interval_seconds=0.1)
def _finish_replay(flow: str, event: dict[str, Any], attempt_id: str) -> None:
    """A replay got through: its DLQ entry is resolved (a checkpointed step: a database write)."""
    letters: DeadLetters | None = _services["dlq"]
    if letters is not None:
        letters.resolve(event["business_key"], attempt_id)
    _trace_completed(flow, event, attempt_id)


def _finish(flow: str, event: dict[str, Any], attempt_id: str) -> None:
    if attempt_id != event["business_key"]:
        _finish_replay(flow, event, attempt_id)
    else:
        # Only a trace line: no checkpoint needed (a recovery that re-runs it writes the line again).
        _trace_completed(flow, event, attempt_id)


def _trace_completed(flow: str, event: dict[str, Any], attempt_id: str) -> None:
    log: trace.TraceLog | None = _services["trace"]
    if log is not None:
        log.add(system="core", action=f"flow {flow} completed", status="success",
                correlation_id=event.get("correlation_id"), flow_id=attempt_id)


def _make_runner(flow: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        async def run_async(event: dict[str, Any]) -> Any:
            attempt_id = DBOS.workflow_id or event["business_key"]
            with trace.correlation(event["correlation_id"], flow_id=attempt_id, business_key=event["business_key"]):
                try:
                    result = await fn(event)
                except Exception as exc:
                    _park(flow, event, attempt_id, exc)
                    raise
                _finish(flow, event, attempt_id)
                return result

        run_async.__name__ = run_async.__qualname__ = f"flow_{flow}"
        return DBOS.workflow(name=WORKFLOW_PREFIX + flow)(run_async)

    def run(event: dict[str, Any]) -> Any:
        attempt_id = DBOS.workflow_id or event["business_key"]
        with trace.correlation(event["correlation_id"], flow_id=attempt_id, business_key=event["business_key"]):
            try:
                result = fn(event)
            except Exception as exc:
                _park(flow, event, attempt_id, exc)
                raise
            _finish(flow, event, attempt_id)
            return result

    run.__name__ = run.__qualname__ = f"flow_{flow}"
    return DBOS.workflow(name=WORKFLOW_PREFIX + flow)(run)


# -- routing ----------------------------------------------------------------------------------------------


class RouteError(Exception):
    pass


class Router:
    # Coalesce keys remembered per process (their latest flow); beyond this the oldest are forgotten, which
    # only means a later event of such an aggregate starts its own flow.
    COALESCE_MEMORY = 100_000

    def __init__(self, *, queue_name: str, trace_log: trace.TraceLog | None = None,
                 flows: Callable[[], dict[str, FlowSpec]] = flow_specs, coalesce: bool = True,
                 status_of: Callable[[str], Any] | None = None,
                 enqueued_under: Callable[[str, str], str | None] | None = None) -> None:
        """`status_of(workflow_id)` -> an object with `.name` and `.status`, or None (default: DBOS's own
        lookup; the runtime passes `FlowStatusReader.get`, a light read of the same row).
        `enqueued_under(prefix, queue)` -> the id of a flow still ENQUEUED whose id starts with prefix
        (`FlowStatusReader.enqueued_under`): with it, coalescing sees the flows every core process enqueued,
        not only this one's (see core/workers.py)."""
        self._queue = queue_name
        self._enqueued_under = enqueued_under
        self._status_of = status_of or DBOS.get_workflow_status
        self._coalesce = coalesce
        self._trace = trace_log
        self._flows = flows
        self._latest: OrderedDict[str, str] = OrderedDict()  # coalesce key -> the last flow started for it
        self._latest_lock = threading.Lock()

    def matches(self, event: IntakeEvent) -> list[tuple[FlowSpec, str]]:
        out = []
        for spec in self._flows().values():
            if not spec.wants(event):
                continue
            key = spec.business_key(event)
            if key:
                if business_key_of(key) != key:
                    raise RouteError(f"flow {spec.name}: business key {key!r} may not contain '~replay-'")
                out.append((spec, key))
        return out

    def start(self, event: IntakeEvent) -> list[FlowStart]:
        """Start (or find) every flow this event triggers; idempotent per business key.

        Coalescing (flows registered with `coalesce_key`): when the aggregate's last flow started by this
        process is still ENQUEUED, the event is absorbed by it (FlowStart.coalesced, its workflow id). That is
        safe because ENQUEUED means the flow has not run a step, so everything it reads is read after this
        event's change was made (the vendor emits an event after the change). In a burst this turns the
        `open` and `paid` events of one invoice into one flow. A flow already running is never joined."""
        starts = []
        for spec, key in self.matches(event):
            ckey = spec.coalesce_key(event) if self._coalesce and spec.coalesce_key is not None else None
            absorbed = self._absorbing_flow(ckey, key) if ckey else None
            if absorbed is not None:
                correlation_id = trace.correlation_id_for(absorbed)
                starts.append(FlowStart(spec.name, key, absorbed, correlation_id, created=False, coalesced=True))
                self._note(event, "coalesced", correlation_id, absorbed)
                continue
            correlation_id = trace.correlation_id_for(key)
            existing = self._status_of(key)
            if existing is not None and existing.name != spec.workflow_name:
                raise RouteError(f"business key {key!r} already belongs to {existing.name}, not {spec.workflow_name}")
            if existing is None:
                payload = {**event.to_dict(), "business_key": key, "correlation_id": correlation_id,
                           "flow": spec.name}
                with SetWorkflowID(key):
                    DBOS.enqueue_workflow(self._queue, spec.workflow, payload)
                if ckey:
                    self._remember(ckey, key)
            starts.append(FlowStart(spec.name, key, key, correlation_id, created=existing is None))
            self._note(event, "flow started" if existing is None else "flow exists", correlation_id, key)
        return starts

    def _note(self, event: IntakeEvent, status: str, correlation_id: str, flow_id: str) -> None:
        if self._trace is not None:
            self._trace.add(system=event.system, action=f"webhook {event.event_type}", status=status,
                            correlation_id=correlation_id, flow_id=flow_id, detail=f"event {event.event_id}")

    def _absorbing_flow(self, ckey: str, key: str) -> str | None:
        if self._enqueued_under is not None and key.startswith(ckey + ":"):
            # The store knows every process's flows: any of this aggregate's that has not started will do.
            found = self._enqueued_under(ckey + ":", self._queue)
            return found if found is not None and found != key else None
        with self._latest_lock:
            latest = self._latest.get(ckey)
        if latest is None or latest == key:
            return None
        status = self._status_of(latest)
        return latest if status is not None and status.status == "ENQUEUED" else None

    def _remember(self, ckey: str, key: str) -> None:
        with self._latest_lock:
            self._latest[ckey] = key
            self._latest.move_to_end(ckey)
            while len(self._latest) > self.COALESCE_MEMORY:
                self._latest.popitem(last=False)
