"""A light read of a flow's DBOS status (name, status) for intake's per-event checks.

`DBOS.get_workflow_status` loads the whole status row through DBOS's generic listing, and on SQLite every DBOS
transaction is IMMEDIATE (it takes the write lock, even to read), so each webhook's "does this flow exist?"
queued behind the flows' own checkpoint writes. This reads the documented system table `workflow_status` by
its primary key in a plain (DEFERRED) transaction: in WAL mode a reader never waits for a writer.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, create_engine, event, select

__all__ = ["FlowStatus", "FlowStatusReader"]


class FlowStatus(NamedTuple):
    name: str
    status: str


class FlowStatusReader:
    def __init__(self, url: str, *, schema: str | None = None) -> None:
        sqlite = url.startswith("sqlite")
        self._sqlite = sqlite
        self._engine: Engine = create_engine(url, pool_size=8, max_overflow=8, **(
            {"connect_args": {"check_same_thread": False}} if sqlite else {"pool_pre_ping": True}))
        if sqlite:
            @event.listens_for(self._engine, "connect")
            def _setup(dbapi_conn: object, _record: object) -> None:
                dbapi_conn.execute("PRAGMA busy_timeout=30000")  # type: ignore[attr-defined]

        self._t = Table("workflow_status", MetaData(schema=None if sqlite else schema),
                        Column("workflow_uuid", String, primary_key=True), Column("name", String),
                        Column("status", String), Column("queue_name", String), Column("created_at", BigInteger))

    def get(self, workflow_id: str) -> FlowStatus | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(self._t.c.name, self._t.c.status)
                               .where(self._t.c.workflow_uuid == workflow_id)).first()
        return None if row is None else FlowStatus(str(row.name), str(row.status))

    def enqueued_under(self, prefix: str, queue: str) -> str | None:
        """A flow of `queue` still ENQUEUED (not started) whose id starts with `prefix`, or None: what lets
        several core processes coalesce events into one flow, whichever of them enqueued it. SQLite compares
        text bytewise, so the primary key's range is the prefix; PostgreSQL's collation may not, so there it
        is LIKE over DBOS's index of in-flight flows (queue, status): the backlog, not the history."""
        wf = self._t.c
        query = select(wf.workflow_uuid).where(wf.status == "ENQUEUED", wf.queue_name == queue)
        if self._sqlite:
            query = query.where(wf.workflow_uuid >= prefix, wf.workflow_uuid < prefix + "\U0010ffff")
        else:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(wf.workflow_uuid.like(escaped + "%", escape="\\"))
        with self._engine.connect() as conn:
            row = conn.execute(query.order_by(wf.created_at).limit(1)).first()
        return None if row is None else str(row.workflow_uuid)

    def close(self) -> None:
        self._engine.dispose()
