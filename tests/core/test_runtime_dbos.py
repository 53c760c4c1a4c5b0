"""The runtime on DBOS, on SQLite (tuned) and on PostgreSQL: retried steps, business-key dedupe, the DLQ
and its replay, async flows with correlation headers on outbound calls.

Demo flows are registered at import (before any launch), as real flows will be.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dbos import DBOS

from core import trace
from core.dlq import NotParkedError, replay
from core.intake.router import register_flow
from core.runtime import Runtime, RuntimeBusyError, transient
from tests.core._runtime_kit import billing_event, launched_runtime, unique, wait_for

EFFECTS: Counter[str] = Counter()
FAILS_LEFT: dict[str, int] = {}
BROKEN: set[str] = set()
SEEN: dict[str, httpx.Headers] = {}
_lock = threading.Lock()


def _count(name: str) -> int:
    with _lock:
        EFFECTS[name] += 1
        return EFFECTS[name]


# -- demo flows ---------------------------------------------------------------------------------------------


@DBOS.step(retries_allowed=True, max_attempts=4, interval_seconds=0.01, backoff_rate=1.0)
def flaky_step(key: str) -> int:
    attempt = _count(f"{key}:flaky")
    with _lock:
        if FAILS_LEFT.get(key, 0) > 0:
            FAILS_LEFT[key] -= 1
            raise ConnectionError(f"ERP said 503 (attempt {attempt})")
    return attempt


def retry_flow(event: dict) -> int:
    return flaky_step(event["business_key"])


class DriftError(Exception):
    dlq_reason = "schema drift"
    retryable = False


@DBOS.step()
def first_effect(key: str) -> None:
    _count(f"{key}:first")


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01,
           should_retry=transient)
def fragile_effect(key: str) -> str:
    _count(f"{key}:fragile")
    if key in BROKEN:
        raise DriftError("invoice field 'amount_due' is missing (renamed to 'amountDue'?)")
    return "written"


@DBOS.step()
def last_effect(key: str) -> None:
    _count(f"{key}:last")


def park_flow(event: dict) -> str:
    key = event["business_key"]
    first_effect(key)
    fragile_effect(key)
    last_effect(key)
    return "done"


def dedupe_flow(event: dict) -> str:
    first_effect(event["business_key"])
    return event["event_id"]


@DBOS.step()
async def call_erp(key: str) -> int:
    def handler(request: httpx.Request) -> httpx.Response:
        SEEN[key] = request.headers
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://erp.invalid",
                                 event_hooks=trace.async_event_hooks("erp")) as client:
        response = await client.post("/services/rest/record/v1/customer", json={"companyName": "Acme"})
    return response.status_code


async def async_flow(event: dict) -> int:
    return await call_erp(event["business_key"])


register_flow(["billing:test.retry"], lambda e: f"retry:{e.aggregate_key}", retry_flow, name="demo_retry")
register_flow(["billing:test.park"], lambda e: f"park:{e.aggregate_key}", park_flow, name="demo_park")
register_flow(["billing:test.dedupe"], lambda e: f"dedupe:{e.aggregate_key}", dedupe_flow, name="demo_dedupe")
register_flow(["billing:test.async"], lambda e: f"async:{e.aggregate_key}", async_flow, name="demo_async")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from launched_runtime(request.param, Path(tmp_path_factory.mktemp(f"rt_{request.param}")))


def start(runtime: Runtime, event_type: str, obj: str | None = None, **kw: object) -> tuple[str, bool]:
    starts = runtime.router.start(billing_event(event_type, obj or unique("in"), **kw))
    assert len(starts) == 1, starts
    return starts[0].workflow_id, starts[0].created


# -- tests --------------------------------------------------------------------------------------------------


def test_a_failing_step_is_retried_until_it_succeeds(runtime: Runtime) -> None:
    obj = unique("in")
    FAILS_LEFT[f"retry:invoice:{obj}"] = 2
    wid, created = start(runtime, "test.retry", obj)
    status = wait_for(wid)
    assert created and wid == f"retry:invoice:{obj}"
    assert status.status == "SUCCESS"
    assert DBOS.retrieve_workflow(wid).get_result() == 3  # two failures, then the third attempt
    assert EFFECTS[f"{wid}:flaky"] == 3


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_step_retry_is_logged_as_one_line_with_its_error(runtime: Runtime) -> None:
    """DBOS logs each automatic retry with the whole traceback; the runtime keeps it to one line that still
    says what failed."""
    dbos_log, seen = logging.getLogger("dbos"), _Records()
    level = dbos_log.level
    dbos_log.addHandler(seen)
    dbos_log.setLevel(logging.WARNING)
    try:
        obj = unique("in")
        FAILS_LEFT[f"retry:invoice:{obj}"] = 2
        wid, _ = start(runtime, "test.retry", obj)
        assert wait_for(wid).status == "SUCCESS"
    finally:
        dbos_log.removeHandler(seen)
        dbos_log.setLevel(level)
    retries = [r for r in seen.records if r.getMessage().startswith("Step being automatically retried")]
    assert len(retries) >= 2, [r.getMessage() for r in seen.records]
    assert all(r.exc_info is None for r in retries)
    assert all("ConnectionError: ERP said 503" in r.getMessage() for r in retries), [r.getMessage() for r in retries]


def test_exhausted_retries_park_the_flow_with_the_last_error(runtime: Runtime) -> None:
    obj = unique("in")
    FAILS_LEFT[f"retry:invoice:{obj}"] = 99
    wid, _ = start(runtime, "test.retry", obj)
    assert wait_for(wid).status == "ERROR"
    entry = runtime.dlq.by_key(wid)
    assert entry.reason == "step retries exhausted"
    assert entry.error_class == "builtins.ConnectionError"
    assert "ERP said 503 (attempt 4)" in entry.error_message
    assert EFFECTS[f"{wid}:flaky"] == 4


def test_the_business_key_is_the_workflow_id_so_a_second_trigger_starts_nothing(runtime: Runtime) -> None:
    obj = unique("in")
    first_id, first_created = start(runtime, "test.dedupe", obj, event_id="evt_first")
    second_id, second_created = start(runtime, "test.dedupe", obj, event_id="evt_second", created=1_700_000_100)
    assert first_id == second_id == f"dedupe:invoice:{obj}"
    assert (first_created, second_created) == (True, False)
    assert wait_for(first_id).status == "SUCCESS"
    assert DBOS.retrieve_workflow(first_id).get_result() == "evt_first"  # the first trigger's input stands
    assert [w.workflow_id for w in DBOS.list_workflows(workflow_id_prefix=first_id)] == [first_id]
    assert EFFECTS[f"{first_id}:first"] == 1


def test_a_non_retryable_error_parks_the_flow_and_replay_resumes_at_the_failed_step(runtime: Runtime) -> None:
    obj = unique("in")
    key = f"park:invoice:{obj}"
    BROKEN.add(key)
    wid, _ = start(runtime, "test.park", obj)
    assert wait_for(wid).status == "ERROR"
    entry = runtime.dlq.by_key(key)
    assert (entry.status, entry.reason, entry.failed_attempt_id, entry.attempts) == ("parked", "schema drift", wid, 0)
    assert entry.error_class.endswith("DriftError") and "amount_due" in entry.error_message
    assert entry.payload["business_key"] == key and entry.payload["event_type"] == "test.park"
    assert EFFECTS[f"{key}:fragile"] == 1  # not retried: the predicate said it can't get better

    # Replayed while the cause is still there: parked again, one attempt more.
    _, attempt1 = replay(runtime.dlq, entry.id, queue_name=runtime.settings.flow_queue,
                         app_version=runtime.settings.app_version)
    assert attempt1 == f"{key}~replay-1"
    assert wait_for(attempt1).status == "ERROR"
    again = runtime.dlq.by_key(key)
    assert (again.status, again.attempts, again.failed_attempt_id) == ("parked", 1, attempt1)

    BROKEN.discard(key)  # the cause is fixed
    _, attempt2 = replay(runtime.dlq, entry.id, queue_name=runtime.settings.flow_queue,
                         app_version=runtime.settings.app_version)
    assert wait_for(attempt2).status == "SUCCESS"
    assert DBOS.retrieve_workflow(attempt2).get_result() == "done"
    done = runtime.dlq.by_key(key)
    assert (done.status, done.last_replay_id) == ("resolved", attempt2)
    # The steps before the failure ran once in all; the failed one once per attempt; the rest once.
    assert (EFFECTS[f"{key}:first"], EFFECTS[f"{key}:fragile"], EFFECTS[f"{key}:last"]) == (1, 3, 1)
    assert DBOS.get_workflow_status(wid).status == "ERROR"  # the original attempt stays as the record
    with pytest.raises(NotParkedError):
        replay(runtime.dlq, entry.id, queue_name=runtime.settings.flow_queue, app_version=None)


def test_an_async_flow_sends_correlation_headers_and_traces_the_call(runtime: Runtime) -> None:
    obj = unique("in")
    wid, _ = start(runtime, "test.async", obj)
    assert wait_for(wid).status == "SUCCESS"
    cid = trace.correlation_id_for(wid)
    headers = SEEN[wid]
    assert headers["X-Correlation-Id"] == cid
    assert re.fullmatch(rf"00-{cid}-[0-9a-f]{{16}}-01", headers["traceparent"])
    steps = runtime.trace.for_correlation(cid)
    assert [(s.system, s.action, s.status) for s in steps] == [
        ("billing", "webhook test.async", "flow started"),
        ("erp", "POST /services/rest/record/v1/customer", "204"),
        ("core", "flow demo_async completed", "success"),
    ]
    assert all(s.flow_id == wid for s in steps)


def test_a_second_runtime_in_one_process_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(RuntimeBusyError):
        Runtime(runtime.settings.model_copy(update={"data_dir": tmp_path})).launch()
    assert runtime.launched
