"""Inbox and per-aggregate ordering on both stores (SQLite file, real PostgreSQL in a throwaway schema),
without DBOS: their SQL differs per dialect (ON CONFLICT ... RETURNING), so each runs on each."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, select, text

from core.intake.envelopes import IntakeEvent
from core.intake.inbox import Inbox
from core.intake.ordering import Ordering
from core.runtime import CoreTables, build_tables, sqlite_engine
from core.trace import TraceLog
from tests.core._runtime_kit import billing_event
from tests.core.conftest import _reachable_pg


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, CoreTables]]:
    if request.param == "sqlite":
        engine, schema = sqlite_engine(f"sqlite:///{tmp_path / 'core.sqlite'}"), None
    else:
        url, why = _reachable_pg()
        if url is None:
            pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 ({why})")
        engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
        schema = f"core_t_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    tables = build_tables(schema)
    tables.metadata.create_all(engine)
    yield engine, tables
    engine.dispose()
    if schema:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def event(obj: str = "in_1", created: int = 100, event_id: str | None = None) -> IntakeEvent:
    return billing_event("invoice.paid", obj, created=created, event_id=event_id or f"evt_{uuid.uuid4().hex}")


def test_inbox_claims_once_and_counts_duplicates(store: tuple[Engine, CoreTables]) -> None:
    inbox = Inbox(store[0], store[1].inbox)
    ev = event()
    assert inbox.claim(ev).outcome == "new"
    assert inbox.claim(ev).outcome == "unfinished"  # received, never finished: process again
    inbox.finish("billing", ev.event_id, "routed", flow_ids=["k"])
    assert inbox.claim(ev).outcome == "duplicate"
    entry = inbox.get("billing", ev.event_id)
    assert entry is not None
    assert (entry.status, entry.deliveries, entry.flow_ids, entry.aggregate_key) == ("routed", 3, ["k"], "invoice:in_1")
    assert inbox.counts() == {"routed": 1, "duplicates": 2}
    assert inbox.payload("billing", ev.event_id)["id"] == ev.event_id
    # The same id from another system is another event.
    other = IntakeEvent("cs", ev.event_id, "company.updated", None, None, None, {})
    assert inbox.claim(other).outcome == "new"


def test_concurrent_deliveries_of_one_event_make_one_new_claim(store: tuple[Engine, CoreTables]) -> None:
    inbox = Inbox(store[0], store[1].inbox)
    ev = event()
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        outcomes.append(inbox.claim(ev).outcome)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("new") == 1 and len(outcomes) == 8


def test_ordering_ignores_older_versions_and_accepts_ties(store: tuple[Engine, CoreTables]) -> None:
    ordering = Ordering(store[0], store[1].versions)
    v2 = event(created=200, event_id="evt_v2")
    assert ordering.advance(v2).current
    stale = ordering.advance(event(created=100, event_id="evt_v1"))
    assert (stale.current, stale.stored_version, stale.stored_event_id) == (False, 200, "evt_v2")
    assert ordering.advance(event(created=200, event_id="evt_v2b")).current  # a tie can't be ordered: processed
    assert ordering.advance(event(created=300)).current
    assert ordering.version("billing", "invoice:in_1") == 300
    assert ordering.advance(event("in_2", created=1)).current  # another aggregate has its own order
    unversioned = IntakeEvent("cs", "evt_x", "company.updated", None, None, None, {})
    assert ordering.advance(unversioned).current


def test_racing_versions_leave_the_highest(store: tuple[Engine, CoreTables]) -> None:
    ordering = Ordering(store[0], store[1].versions)
    barrier = threading.Barrier(10)
    results: dict[int, bool] = {}

    def deliver(version: int) -> None:
        barrier.wait()
        results[version] = ordering.advance(event(created=version)).current

    threads = [threading.Thread(target=deliver, args=(v,)) for v in range(1, 11)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ordering.version("billing", "invoice:in_1") == 10
    assert results[10] is True


# -- the trace log: batched writes, reads that see every step added before them ----------------------------


def test_trace_log_reads_see_every_step_added_before_them_in_order(store: tuple[Engine, CoreTables]) -> None:
    engine, tables = store
    tables.trace.metadata.create_all(engine)
    log = TraceLog(engine, tables.trace, flush_interval_s=60)  # the writer won't flush on its own in this test
    try:
        for i in range(5):
            log.add(system="erp", action=f"GET /step/{i}", status="200", correlation_id="c1", flow_id="f1")
        log.add(system="crm", action="other flow", status="200", correlation_id="c2", flow_id="f2")
        steps = log.for_correlation("c1")
        assert [s.action for s in steps] == [f"GET /step/{i}" for i in range(5)]
        assert [s.seq for s in steps] == sorted(s.seq for s in steps)
        assert [s.action for s in log.for_flow("f2")] == ["other flow"]
    finally:
        log.close()


def test_trace_log_close_writes_what_is_queued_and_refuses_more(store: tuple[Engine, CoreTables]) -> None:
    engine, tables = store
    tables.trace.metadata.create_all(engine)
    log = TraceLog(engine, tables.trace, flush_interval_s=60)
    log.add(system="billing", action="POST /v1/customers", status="200", correlation_id="c3")
    log.close()
    with engine.connect() as conn:
        rows = conn.execute(select(tables.trace.c.action).where(tables.trace.c.correlation_id == "c3")).all()
    assert [r.action for r in rows] == ["POST /v1/customers"]
    with pytest.raises(RuntimeError, match="closed"):
        log.add(system="billing", action="late", status="200")


def test_trace_log_writer_flushes_on_its_own(store: tuple[Engine, CoreTables]) -> None:
    engine, tables = store
    tables.trace.metadata.create_all(engine)
    log = TraceLog(engine, tables.trace, flush_interval_s=0.01)
    try:
        log.add(system="cs", action="PUT /v1/data", status="200", correlation_id="c4")
        seen = threading.Event()

        def written() -> bool:
            with engine.connect() as conn:
                return conn.execute(select(tables.trace.c.seq).where(tables.trace.c.correlation_id == "c4")).first() \
                    is not None

        for _ in range(500):  # bounded: up to ~5 s, waiting on the condition, not a fixed sleep
            if written():
                seen.set()
                break
            seen.wait(0.01)
        assert seen.is_set(), "the writer thread never flushed the queued step"
    finally:
        log.close()
