"""Intake's group commit: events processed as a batch get the outcomes they would get one by one, in order,
and concurrent deliveries are gathered into batches by one writer thread."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from dbos import DBOS

from core.intake.batcher import IntakeBatcher
from core.intake.envelopes import IntakeEvent
from core.intake.router import register_flow
from core.intake.service import IntakeResult, process_batch
from core.runtime import Runtime
from tests.core._runtime_kit import billing_event, dbos_call, launched_runtime, unique, wait_async

RUNS: Counter[str] = Counter()


def batch_flow(event: dict) -> int:
    RUNS[event["business_key"]] += 1
    return event["aggregate_version"]


register_flow(["billing:batch.updated"], lambda e: f"batch:{e.aggregate_key}:{e.aggregate_version}", batch_flow,
              name="intake_batch")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from launched_runtime(request.param, Path(tmp_path_factory.mktemp(f"batch_{request.param}")))


def _outcome(result: IntakeResult | BaseException) -> str:
    assert isinstance(result, IntakeResult), result
    return result.status


async def test_a_batch_gives_each_event_its_own_outcome_in_order(runtime: Runtime) -> None:
    inv, other = unique("in"), unique("in")
    newer = billing_event("batch.updated", inv, created=200)
    older = billing_event("batch.updated", inv, created=100)
    repeat = billing_event("batch.updated", inv, created=200, event_id=newer.event_id)
    unwanted = billing_event("batch.ignored", other, created=1)
    results = await asyncio.to_thread(process_batch, runtime, [newer, older, repeat, unwanted])
    assert [_outcome(r) for r in results] == ["accepted", "stale", "duplicate", "ignored"]
    assert "version 100 < 200" in (results[1].detail or "")  # type: ignore[union-attr]
    assert (await wait_async(f"batch:invoice:{inv}:200")).status == "SUCCESS"
    assert await dbos_call(DBOS.get_workflow_status, f"batch:invoice:{inv}:100") is None
    assert RUNS[f"batch:invoice:{inv}:200"] == 1
    entry = runtime.inbox.get("billing", newer.event_id)
    assert entry is not None and entry.status == "routed" and entry.deliveries == 2
    assert entry.flow_ids == [f"batch:invoice:{inv}:200"]
    assert runtime.inbox.get("billing", older.event_id).status == "stale"  # type: ignore[union-attr]
    assert runtime.inbox.get("billing", unwanted.event_id).status == "ignored"  # type: ignore[union-attr]
    # The same batch delivered again: every event is a duplicate now, and nothing starts twice.
    again = await asyncio.to_thread(process_batch, runtime, [newer, older])
    assert [_outcome(r) for r in again] == ["duplicate", "duplicate"]


async def test_concurrent_submits_to_the_runtimes_intake_each_get_their_own_flow(runtime: Runtime) -> None:
    # (That waiting events are drained into one batch is the batcher's own test below, where it is certain.)
    assert runtime.intake is not None
    before = runtime.intake.events
    invoices = [unique("in") for _ in range(40)]
    events = [billing_event("batch.updated", inv, created=7) for inv in invoices]
    results = await asyncio.gather(*(runtime.intake.submit(e) for e in events))
    assert [r.status for r in results] == ["accepted"] * 40
    assert [r.flows[0].workflow_id for r in results] == [f"batch:invoice:{inv}:7" for inv in invoices]
    assert runtime.intake.events - before == 40
    for inv in invoices:
        assert (await wait_async(f"batch:invoice:{inv}:7")).status == "SUCCESS"
        assert RUNS[f"batch:invoice:{inv}:7"] == 1


def test_one_bad_event_does_not_fail_its_batch(runtime: Runtime) -> None:
    good = billing_event("batch.updated", unique("in"), created=3)
    # Its business key would contain the replay marker: the router refuses it (RouteError).
    bad = billing_event("batch.updated", f"in_{unique('x')}~replay-1", created=3)
    results = process_batch(runtime, [bad, good])
    assert type(results[0]).__name__ == "RouteError" and "~replay-" in str(results[0])
    assert isinstance(results[1], IntakeResult) and results[1].status == "accepted"
    # The refused event stays `received`, so the sender's redelivery tries it again; its neighbour is routed.
    assert runtime.inbox.get("billing", bad.event_id).status == "received"  # type: ignore[union-attr]
    assert runtime.inbox.get("billing", good.event_id).status == "routed"  # type: ignore[union-attr]


def test_an_event_the_database_refuses_is_isolated_and_its_neighbours_processed(runtime: Runtime) -> None:
    # A version past 64 bits fails the batch's claim transaction (parse_event refuses such a body; this one is
    # built by hand): the batch is redone one event at a time, so only that event gets the error.
    good = billing_event("batch.updated", unique("in"), created=4)
    bad = IntakeEvent("billing", unique("evt"), "batch.updated", f"invoice:{unique('in')}", 2**70, None,
                      {"data": {"object": {"id": "in_x"}}})
    results = process_batch(runtime, [good, bad])
    assert isinstance(results[0], IntakeResult) and results[0].status == "accepted"
    assert isinstance(results[1], Exception) and not isinstance(results[1], IntakeResult)
    assert runtime.inbox.get("billing", good.event_id).status == "routed"  # type: ignore[union-attr]
    assert runtime.inbox.get("billing", bad.event_id) is None  # nothing half-written


def test_the_batcher_drains_what_waits_into_one_batch_and_hands_out_each_outcome() -> None:
    entered, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []

    def process(events: Sequence[IntakeEvent]) -> list[str | BaseException]:
        batches.append([e.event_id for e in events])
        if len(batches) == 1:
            entered.set()
            assert release.wait(10)
        return [ValueError(e.event_id) if e.event_id.endswith("-bad") else f"ok {e.event_id}" for e in events]

    batcher: IntakeBatcher[str] = IntakeBatcher(process, max_batch=3)
    try:
        first = batcher.submit_future(billing_event("x.y", "in_1", event_id="e0"))
        assert entered.wait(10)  # the writer holds the first batch; the rest queue behind it
        waiting = [batcher.submit_future(billing_event("x.y", "in_1", event_id=f"e{i}")) for i in (1, 2, 3, 4)]
        bad = batcher.submit_future(billing_event("x.y", "in_1", event_id="e5-bad"))
        release.set()
        assert first.result(10) == "ok e0"
        assert [f.result(10) for f in waiting] == ["ok e1", "ok e2", "ok e3", "ok e4"]
        with pytest.raises(ValueError, match="e5-bad"):
            bad.result(10)
    finally:
        batcher.close()
    assert batches == [["e0"], ["e1", "e2", "e3"], ["e4", "e5-bad"]]  # max_batch bounds each batch
    with pytest.raises(RuntimeError, match="shut down"):
        batcher.submit_future(billing_event("x.y", "in_1", event_id="late"))
