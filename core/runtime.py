"""The core's runtime, in one place: storage engines (tuned), DBOS Transact launch / destroy, the services.

    runtime = Runtime(CoreSettings()).launch()   # register flows before this
    ...
    runtime.destroy()

Storage (CoreSettings says where):
- SQLite (default): four files in data_dir: `dbos.sqlite` (DBOS system database), `core.sqlite` (inbox,
  aggregate versions, DLQ), `trace.sqlite` (the trace log) and `crosswalk.sqlite`. DBOS gets a tuned
  `system_database_engine`: WAL + synchronous=NORMAL (durable against a process crash; an OS crash may lose
  the last commits, never corrupt), plus what DBOS's own SQLite engine sets (IMMEDIATE transactions, 30 s
  busy timeout, foreign keys), because a custom engine skips DBOS's setup. `sqlite_tuned=False` leaves
  SQLite's defaults (for measuring).
- PostgreSQL (`database_url`): DBOS in schema `dbos_schema`, core tables in `db_schema`, crosswalk in
  `crosswalk_schema`, all in that database.
Flows run from one DBOS queue (`flow_queue`) with a per-process concurrency limit and a low polling interval
(DBOS's default of 1 s would add up to a second to every start).
DBOS is a process-wide singleton: one Runtime is launched per process at a time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, event, text

from core import trace
from core.crosswalk import Crosswalk
from core.dlq import DeadLetters
from core.dlq import define_table as dlq_table
from core.intake import inbox as inbox_mod
from core.intake import ordering as ordering_mod
from core.intake.batcher import IntakeBatcher
from core.intake.flow_status import FlowStatusReader
from core.intake.inbox import Inbox
from core.intake.ordering import Ordering
from core.intake.router import Router, bind_services, flow_specs, register_flow
from core.intake.service import IntakeResult, process_batch
from core.settings import CoreSettings

__all__ = ["Runtime", "RuntimeBusyError", "register_flow", "sqlite_engine", "transient"]

_log = logging.getLogger("lockstep.core.runtime")
_lock = threading.Lock()
_active: dict[str, Runtime | None] = {"runtime": None}
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL = {"pool_size": 20, "max_overflow": 0, "pool_timeout": 30}


def transient(exc: BaseException) -> bool:
    """`should_retry=` for `@DBOS.step(retries_allowed=True, ...)`: retry unless the error says it can't get
    better (`exc.retryable is False`, as connectors' SchemaDriftError and 4xx VendorErrors do)."""
    return getattr(exc, "retryable", True) is not False


class StepRetryOneLiner(logging.Filter):
    """DBOS logs every automatic step retry as a WARNING with the whole traceback. A retry is the flow working
    as designed (a 5xx, a 429, waiting for another flow to link or amend something), so keep it to one line,
    the exception's type and message; a flow that fails for good is logged and parked with its reason."""

    PREFIX = "Step being automatically retried"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.msg, str) and record.msg.startswith(self.PREFIX):
            exc = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {exc}", None
            record.exc_info, record.exc_text = None, None
        return True


_RETRY_ONE_LINER = StepRetryOneLiner()


class RuntimeBusyError(Exception):
    """Another Runtime is launched in this process."""
    pass


def sqlite_engine(url: str, *, tuned: bool = True) -> Engine:
    """A SQLite engine the way DBOS's own is set up (IMMEDIATE transactions: writers queue on the lock up
    front instead of deadlocking on an upgrade), plus WAL + synchronous=NORMAL when `tuned`."""
    engine = create_engine(url, connect_args={"check_same_thread": False}, **SQLITE_POOL)

    @event.listens_for(engine, "connect")
    def _setup(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"
        dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        if tuned:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine



@dataclass(frozen=True)
class CoreTables:
    metadata: MetaData
    inbox: Table
    versions: Table
    dlq: Table
    trace: Table


def build_tables(schema: str | None) -> CoreTables:
    md = MetaData(schema=schema)
    # The trace log has its own MetaData: on SQLite it lives in its own file (see _open_storage).
    return CoreTables(md, inbox_mod.define_table(md), ordering_mod.define_table(md), dlq_table(md),
                      trace.define_table(MetaData(schema=schema)))


class Runtime:
    """Owns the engines, the DBOS instance and the services built on them (inbox, ordering, router, DLQ,
    trace log, crosswalk). Construct, `launch()`, use, `destroy()` (or use as a context manager)."""

    def __init__(self, settings: CoreSettings | None = None) -> None:
        self.settings = settings or CoreSettings()
        self._launched = False
        self.engine: Engine | None = None
        self.dbos_engine: Engine | None = None
        self.trace_engine: Engine | None = None
        self.intake: IntakeBatcher[IntakeResult] | None = None  # group commit of webhooks (after launch)

    # -- lifecycle --------------------------------------------------------------------------------------

    def launch(self) -> Runtime:
        from dbos import DBOS

        s = self.settings
        with _lock:
            if _active["runtime"] is not None:
                raise RuntimeBusyError("a core runtime is already launched in this process (DBOS is a singleton)")
            _active["runtime"] = self
        try:
            # Every flow registers before DBOS launches, so recovery can resume any of them.
            from core import flows

            flows.load_all()
            self._open_storage()
            config: dict[str, Any] = {
                "name": s.app_name,
                "system_database_url": s.dbos_url,
                "application_version": s.app_version,
                "log_level": s.dbos_log_level,
                "notification_listener_polling_interval_sec": s.dbos_notification_polling_s,
                "max_executor_threads": s.dbos_threads,
            }
            if s.worker_executor_id:
                config["executor_id"] = s.worker_executor_id
            if s.backend == "sqlite":
                if s.sqlite_tuned:
                    self.dbos_engine = sqlite_engine(s.dbos_url, tuned=True)
                    config["system_database_engine"] = self.dbos_engine
            else:
                config["dbos_system_schema"] = s.dbos_schema
            DBOS(config=config)  # type: ignore[arg-type]
            logging.getLogger("dbos").addFilter(_RETRY_ONE_LINER)  # the same filter object: added once
            bind_services(self.dlq, self.trace)
            trace.activate(self.trace)
            DBOS.launch()
            DBOS.register_queue(s.flow_queue, worker_concurrency=s.flow_concurrency,
                                polling_interval_sec=s.queue_polling_interval_s, on_conflict="always_update")
            self.intake = IntakeBatcher(lambda events: process_batch(self, events), max_batch=s.intake_batch)
        except BaseException:
            self._teardown()
            raise
        self._launched = True
        _log.info("core runtime launched (%s; flows: %s)", s.backend, ", ".join(sorted(flow_specs())) or "none")
        return self

    def destroy(self) -> None:
        self._teardown()

    def _teardown(self) -> None:
        from dbos import DBOS

        if getattr(self, "intake", None) is not None:
            self.intake.close()  # what was submitted is processed before DBOS goes
            self.intake = None
        try:
            DBOS.destroy(destroy_registry=False)  # keep registered workflows for a later launch
        finally:
            bind_services(None, None)
            trace.activate(None)
            if getattr(self, "trace", None) is not None:
                self.trace.close()
            for engine in {self.engine, self.dbos_engine, getattr(self, "trace_engine", None)} - {None}:
                if engine is not None:
                    engine.dispose()
            if getattr(self, "crosswalk", None) is not None:
                self.crosswalk.close()
            if getattr(self, "flow_status", None) is not None:
                self.flow_status.close()
            self._launched = False
            with _lock:
                if _active["runtime"] is self:
                    _active["runtime"] = None

    def __enter__(self) -> Runtime:
        return self.launch()

    def __exit__(self, *_exc: object) -> None:
        self.destroy()

    @property
    def launched(self) -> bool:
        return self._launched

    # -- storage ----------------------------------------------------------------------------------------

    def _open_storage(self) -> None:
        s = self.settings
        if s.backend == "sqlite":
            s.data_dir.expanduser().mkdir(parents=True, exist_ok=True)
            self.engine = sqlite_engine(s.core_db_url, tuned=s.sqlite_tuned)
            schema = None
        else:
            self.engine = create_engine(s.core_db_url, pool_pre_ping=True, pool_size=10, max_overflow=10)
            schema = s.db_schema
            with self.engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        self.tables = build_tables(schema)
        self.tables.metadata.create_all(self.engine, checkfirst=True)
        # SQLite: the trace log (written on every outbound call) in its own file, so its batch writes never
        # hold the write lock intake needs (a SQLite writer waiting on a lock sleeps in ms-sized steps).
        self.trace_engine = (sqlite_engine(f"sqlite:///{s.sqlite_path('trace')}", tuned=s.sqlite_tuned)
                             if s.backend == "sqlite" else self.engine)
        self.tables.trace.metadata.create_all(self.trace_engine, checkfirst=True)
        self.inbox = Inbox(self.engine, self.tables.inbox)
        self.ordering = Ordering(self.engine, self.tables.versions)
        self.dlq = DeadLetters(self.engine, self.tables.dlq)
        self.trace = trace.TraceLog(self.trace_engine, self.tables.trace)
        self.flow_status = (FlowStatusReader(s.dbos_url) if s.backend == "sqlite"
                            else FlowStatusReader(s.postgres_url, schema=s.dbos_schema))
        self.router = Router(queue_name=s.flow_queue, trace_log=self.trace, coalesce=s.coalesce_events,
                             status_of=self.flow_status.get, enqueued_under=self.flow_status.enqueued_under)
        self.crosswalk = Crosswalk(s.crosswalk_url, schema=s.crosswalk_schema if s.backend == "postgresql" else None)


def active_runtime() -> Runtime | None:
    return _active["runtime"]
