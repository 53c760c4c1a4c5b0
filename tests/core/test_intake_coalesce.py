"""Coalescing: events of one aggregate that arrive while its state-based flow is still queued join that flow.

The runtime here runs one flow at a time (flow_concurrency=1), so a blocking flow keeps every other flow
ENQUEUED for as long as a test needs: no timing guesses.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbos import DBOS

from core.intake.envelopes import IntakeEvent
from core.intake.router import Router, register_flow
from core.intake.service import process
from core.runtime import Runtime
from core.settings import CoreSettings
from tests.core._runtime_kit import billing_event, launched_runtime, unique, wait_for

RUNS: Counter[str] = Counter()
GATES: dict[str, threading.Event] = {}
_lock = threading.Lock()


def _gate(key: str) -> threading.Event:
    with _lock:
        return GATES.setdefault(key, threading.Event())


@DBOS.step()
def hold(key: str) -> None:
    if not _gate(key).wait(timeout=30):
        raise TimeoutError(f"gate {key} was never opened")


def _object_id(event: dict) -> str:
    return event["payload"]["data"]["object"]["id"]


def blocking_flow(event: dict) -> str:
    hold(_object_id(event))
    return "released"


@DBOS.step()
def read_current_state(aggregate: str) -> int:
    with _lock:
        RUNS[aggregate] += 1
        return RUNS[aggregate]


def state_flow(event: dict) -> int:
    if event["event_type"].endswith(".gated"):
        hold(_object_id(event))
    return read_current_state(_object_id(event))


def _obj(event: IntakeEvent) -> str:
    return str(event.payload["data"]["object"]["id"])


register_flow(["billing:coalesce.block"], lambda e: f"block:{_obj(e)}", blocking_flow, name="demo_block")
# Explicit event types, no pattern: a pattern would make the core subscribe to every billing event here.
STATE_TRIGGERS = [f"billing:coalesce.state.{s}" for s in ("open", "paid", "gated")]
register_flow(STATE_TRIGGERS, lambda e: f"state:{_obj(e)}:{e.event_type.rsplit('.', 1)[1]}",
              state_flow, name="demo_state", coalesce_key=lambda e: f"state:{_obj(e)}")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from launched_runtime(request.param, Path(tmp_path_factory.mktemp(f"co_{request.param}")),
                                flow_concurrency=1, coalesce_events=True)


@pytest.fixture
def blocked(runtime: Runtime) -> Iterator[str]:
    """A running flow that holds the only worker slot until the test ends (or opens its gate)."""
    agg = unique("in")
    [start] = runtime.router.start(billing_event("coalesce.block", agg))
    wait_for(start.workflow_id, statuses=("PENDING",))
    yield agg
    _gate(agg).set()
    wait_for(start.workflow_id)


def test_a_second_event_joins_the_queued_flow_of_its_aggregate(runtime: Runtime, blocked: str) -> None:
    agg = unique("in")
    [first] = runtime.router.start(billing_event("coalesce.state.open", agg))
    [second] = runtime.router.start(billing_event("coalesce.state.paid", agg))
    assert first.created and not first.coalesced
    assert second.coalesced and not second.created
    assert second.workflow_id == first.workflow_id == f"state:{agg}:open"
    assert second.business_key == f"state:{agg}:paid"

    _gate(blocked).set()
    assert wait_for(first.workflow_id).status == "SUCCESS"
    assert DBOS.get_workflow_status(f"state:{agg}:paid") is None  # no second flow
    assert RUNS[agg] == 1


def test_the_inbox_says_which_flow_a_coalesced_event_went_to(runtime: Runtime, blocked: str) -> None:
    agg = unique("in")
    first, second = billing_event("coalesce.state.open", agg), billing_event("coalesce.state.paid", agg)
    process(runtime, first)
    result = process(runtime, second)
    assert result.status == "accepted" and result.flows[0].coalesced
    entry = runtime.inbox.get("billing", second.event_id)
    assert entry is not None and entry.status == "routed"
    assert entry.flow_ids == [f"state:{agg}:open"]
    assert entry.detail == f"state:{agg}:paid coalesced into state:{agg}:open"
    _gate(blocked).set()
    assert wait_for(f"state:{agg}:open").status == "SUCCESS"


def test_a_flow_that_has_started_is_never_joined(runtime: Runtime) -> None:
    agg = unique("in")
    [first] = runtime.router.start(billing_event("coalesce.state.gated", agg))
    wait_for(first.workflow_id, statuses=("PENDING",))  # running: it may have read the state already
    [second] = runtime.router.start(billing_event("coalesce.state.paid", agg))
    assert second.created and not second.coalesced and second.workflow_id == f"state:{agg}:paid"
    _gate(agg).set()
    assert wait_for(first.workflow_id).status == "SUCCESS"
    assert wait_for(second.workflow_id).status == "SUCCESS"
    assert RUNS[agg] == 2


def test_other_aggregates_and_coalescing_off_start_their_own_flows(runtime: Runtime, blocked: str) -> None:
    a, b, c = unique("in"), unique("in"), unique("in")
    [fa] = runtime.router.start(billing_event("coalesce.state.open", a))
    [fb] = runtime.router.start(billing_event("coalesce.state.open", b))
    assert fa.created and fb.created and fa.workflow_id != fb.workflow_id

    strict = Router(queue_name=runtime.settings.flow_queue, coalesce=CoreSettings().coalesce_events)  # the default
    [c1] = strict.start(billing_event("coalesce.state.open", c))
    [c2] = strict.start(billing_event("coalesce.state.paid", c))
    assert c1.created and c2.created and not c2.coalesced
    _gate(blocked).set()
    for workflow_id in (fa.workflow_id, fb.workflow_id, c1.workflow_id, c2.workflow_id):
        assert wait_for(workflow_id).status == "SUCCESS"
    assert (RUNS[a], RUNS[b], RUNS[c]) == (1, 1, 2)


def test_the_light_status_read_agrees_with_dbos(runtime: Runtime) -> None:
    agg = unique("in")
    [start] = runtime.router.start(billing_event("coalesce.state.open", agg))
    done = wait_for(start.workflow_id)
    light = runtime.flow_status.get(start.workflow_id)
    assert light is not None and (light.name, light.status) == (done.name, done.status) == (
        "lockstep.flow.demo_state", "SUCCESS")
    assert runtime.flow_status.get(f"state:{unique('in')}:open") is None


def _another_process(runtime: Runtime) -> Router:
    """What a second core process has: its own router (nothing in its memory), the same store."""
    return Router(queue_name=runtime.settings.flow_queue, coalesce=True, status_of=runtime.flow_status.get,
                  enqueued_under=runtime.flow_status.enqueued_under)


def test_a_flow_another_core_process_enqueued_is_joined(runtime: Runtime, blocked: str) -> None:
    agg = unique("in")
    [first] = runtime.router.start(billing_event("coalesce.state.open", agg))
    [second] = _another_process(runtime).start(billing_event("coalesce.state.paid", agg))
    assert second.coalesced and not second.created and second.workflow_id == first.workflow_id
    _gate(blocked).set()
    assert wait_for(first.workflow_id).status == "SUCCESS"
    assert DBOS.get_workflow_status(f"state:{agg}:paid") is None
    assert RUNS[agg] == 1


def test_the_store_lookup_matches_the_aggregate_exactly(runtime: Runtime, blocked: str) -> None:
    """LIKE wildcards in an id are literal (PostgreSQL), and one id is never a prefix match of another's."""
    tag = unique("in")
    wild, tame, longer = f"{tag}_%", f"{tag}xy", f"{tag}_%9"
    [w] = runtime.router.start(billing_event("coalesce.state.open", wild))
    [t] = runtime.router.start(billing_event("coalesce.state.open", tame))
    queue = runtime.settings.flow_queue
    assert runtime.flow_status.enqueued_under(f"state:{wild}:", queue) == w.workflow_id
    assert runtime.flow_status.enqueued_under(f"state:{tame}:", queue) == t.workflow_id
    assert runtime.flow_status.enqueued_under(f"state:{longer}:", queue) is None
    assert runtime.flow_status.enqueued_under(f"state:{wild}:", "another-queue") is None
    _gate(blocked).set()
    for workflow_id in (w.workflow_id, t.workflow_id):
        assert wait_for(workflow_id).status == "SUCCESS"
    assert runtime.flow_status.enqueued_under(f"state:{wild}:", queue) is None  # started: not joinable
