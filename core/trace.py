"""Correlation ids and the trace log: one correlation id per business transaction, on every outbound call.

- The correlation id of a flow is derived from its business key (`correlation_id_for`): 32 hex digits, so
  it doubles as the W3C trace-id. Every retry, crash recovery and DLQ replay of that flow keeps it.
- `correlation(...)` sets it in a contextvar for the code of one flow; the flow runner does this.
- Connectors: build the httpx client with `event_hooks=trace.async_event_hooks("erp")` (or
  `sync_event_hooks`). The request hook adds `X-Correlation-Id` and a fresh `traceparent` span; the response
  hook appends one ordered step (system, "POST /path", status code) to the trace log. Or call
  `outbound_headers()` and `record(...)` by hand.
- The trace log is a table of ordered steps (seq, correlation id, flow id, system, action, status, detail,
  at), read back by `/trace/{correlation_id}`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Column, Engine, Index, Integer, MetaData, String, Table, Text, func, insert, select

from core.crosswalk.db import UtcDateTime

__all__ = [
    "CORRELATION_HEADER",
    "TRACEPARENT_HEADER",
    "TraceContext",
    "TraceLog",
    "TraceStep",
    "async_event_hooks",
    "correlation",
    "correlation_id_for",
    "current",
    "outbound_headers",
    "record",
    "sync_event_hooks",
    "traceparent",
]

CORRELATION_HEADER = "X-Correlation-Id"
TRACEPARENT_HEADER = "traceparent"
_NAMESPACE = uuid.UUID("5d0c9a2e-3f4b-4c8e-9a61-6c6f636b7374")  # fixed: ids must be stable across processes
_log = logging.getLogger("lockstep.core.trace")
MAX_BATCH = 500  # queued steps that wake the writer before its interval


@dataclass(frozen=True)
class TraceContext:
    correlation_id: str
    flow_id: str | None = None
    business_key: str | None = None


_current: ContextVar[TraceContext | None] = ContextVar("lockstep_trace", default=None)


def correlation_id_for(business_key: str) -> str:
    """The correlation id of the business transaction `business_key`: stable, 32 lowercase hex digits."""
    return uuid.uuid5(_NAMESPACE, business_key).hex


def current() -> TraceContext | None:
    return _current.get()


@contextmanager
def correlation(correlation_id: str, *, flow_id: str | None = None, business_key: str | None = None) -> Iterator[
    TraceContext
]:
    ctx = TraceContext(correlation_id, flow_id, business_key)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def traceparent(correlation_id: str, span_id: str | None = None) -> str:
    """W3C traceparent `00-<trace id>-<span id>-01`; the trace id is the correlation id (as 32 hex)."""
    trace_id = correlation_id.replace("-", "").lower()
    if len(trace_id) != 32 or set(trace_id) - set("0123456789abcdef") or trace_id == "0" * 32:
        trace_id = uuid.uuid5(_NAMESPACE, correlation_id).hex  # any other id shape still yields a valid trace id
    span = span_id or secrets.token_hex(8)
    return f"00-{trace_id}-{span}-01"


def outbound_headers() -> dict[str, str]:
    """Headers for one outbound call in the current flow (empty outside one)."""
    ctx = _current.get()
    if ctx is None:
        return {}
    return {CORRELATION_HEADER: ctx.correlation_id, TRACEPARENT_HEADER: traceparent(ctx.correlation_id)}


# -- the trace log ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceStep:
    seq: int
    correlation_id: str | None
    flow_id: str | None
    system: str
    action: str
    status: str
    detail: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


def define_table(md: MetaData) -> Table:
    return Table(
        "trace_steps",
        md,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("correlation_id", String(64), nullable=True),
        Column("flow_id", String(255), nullable=True),
        Column("system", String(32), nullable=False),
        Column("action", String(255), nullable=False),
        Column("status", String(64), nullable=False),
        Column("detail", Text, nullable=True),
        Column("at", UtcDateTime(), nullable=False),
        Index("trace_steps_correlation", "correlation_id", "seq"),
        Index("trace_steps_flow", "flow_id", "seq"),
    )


class TraceLog:
    """The ordered trace steps, written in batches by one writer thread.

    `add()` only queues the row (in order) and returns: the trace is written from flows' hot paths (every
    outbound HTTP call, on the flows' event loop), where a synchronous SQLite commit per call would block
    every other flow on the loop and contend for the core database's write lock with intake. The writer
    thread inserts whatever is queued in one transaction; readers (`for_correlation`, `for_flow`) and
    `close()` flush first, so a read always sees every step added before it. A process crash can lose the
    last few milliseconds of trace lines (never business state: flows, inbox and DLQ commit synchronously).
    """

    def __init__(self, engine: Engine, table: Table, clock: Callable[[], datetime] | None = None, *,
                 flush_interval_s: float = 0.05) -> None:
        self._engine = engine
        self._t = table
        self._clock = clock or (lambda: datetime.now(UTC))
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one batch insert at a time, so seq follows add() order
        self._wake = threading.Event()
        self._closed = False
        self._interval = flush_interval_s
        self._writer = threading.Thread(target=self._run, name="lockstep-trace-writer", daemon=True)
        self._writer.start()

    def add(self, *, system: str, action: str, status: str, correlation_id: str | None = None,
            flow_id: str | None = None, detail: str | None = None) -> None:
        row = {"correlation_id": correlation_id, "flow_id": flow_id, "system": system, "action": action[:255],
               "status": str(status)[:64], "detail": detail, "at": self._clock()}
        with self._lock:
            if self._closed:
                raise RuntimeError("the trace log is closed")
            self._pending.append(row)
            if len(self._pending) >= MAX_BATCH:
                self._wake.set()

    def flush(self) -> None:
        """Write every queued step now (the caller's thread)."""
        with self._write_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if rows:
                with self._engine.begin() as conn:
                    conn.execute(insert(self._t), rows)

    def close(self) -> None:
        """Flush and stop the writer (idempotent)."""
        with self._lock:
            self._closed = True
        self._wake.set()
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            self._writer.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the trace is an observer: a failed batch is logged, the writer goes on
                _log.exception("could not write trace steps")
            with self._lock:
                if self._closed:
                    return

    def for_correlation(self, correlation_id: str) -> list[TraceStep]:
        return self._read(self._t.c.correlation_id == correlation_id)

    def for_flow(self, flow_id: str) -> list[TraceStep]:
        return self._read(self._t.c.flow_id == flow_id)

    def since(self, seq: int, limit: int = 500) -> list[TraceStep]:
        """Steps after `seq`, oldest first (a live feed's cursor: the last seq it has seen)."""
        self.flush()
        with self._engine.connect() as conn:
            rows = conn.execute(select(self._t).where(self._t.c.seq > seq).order_by(self._t.c.seq)
                                .limit(limit)).mappings().all()
        return [TraceStep(**row) for row in rows]

    def last_seq(self) -> int:
        """The seq of the newest step (0 when the log is empty)."""
        self.flush()
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.max(self._t.c.seq))).scalar() or 0)

    def _read(self, where: Any) -> list[TraceStep]:
        self.flush()
        with self._engine.connect() as conn:
            rows = conn.execute(select(self._t).where(where).order_by(self._t.c.seq)).mappings().all()
        return [TraceStep(**row) for row in rows]


# The log the module-level helpers write to (the runtime sets it at launch, clears it at destroy).
_active: dict[str, TraceLog | None] = {"log": None}


def activate(log: TraceLog | None) -> None:
    _active["log"] = log


def record(system: str, action: str, status: str, *, detail: str | None = None) -> None:
    """Append a step for the current flow to the active trace log (a no-op outside a flow or runtime).
    A trace write never fails the business call it describes: errors are logged, not raised."""
    ctx, log = _current.get(), _active["log"]
    if ctx is None or log is None:
        return
    try:
        log.add(system=system, action=action, status=status, correlation_id=ctx.correlation_id,
                flow_id=ctx.flow_id, detail=detail)
    except Exception:  # the trace is an observer: losing one line must not break the flow
        _log.exception("could not write trace step %s %s", system, action)


# -- httpx event hooks -----------------------------------------------------------------------------------


def _on_request(request: httpx.Request) -> None:
    for name, value in outbound_headers().items():
        request.headers.setdefault(name, value)


def _on_response(system: str, response: httpx.Response) -> None:
    req = response.request
    record(system, f"{req.method} {req.url.path}", str(response.status_code))


def sync_event_hooks(system: str) -> dict[str, list[Callable[..., Any]]]:
    """`event_hooks=` for an `httpx.Client` talking to `system`."""
    return {"request": [_on_request], "response": [lambda response: _on_response(system, response)]}


def async_event_hooks(system: str) -> dict[str, list[Callable[..., Any]]]:
    """`event_hooks=` for an `httpx.AsyncClient` talking to `system`."""

    async def on_request(request: httpx.Request) -> None:
        _on_request(request)

    async def on_response(response: httpx.Response) -> None:
        _on_response(system, response)

    return {"request": [on_request], "response": [on_response]}
