"""The persistent inbox: every verified event once, keyed by (system, event id). Duplicates stop here.

`claim(event)` inserts the event (status `received`) and answers whether this delivery should be processed:
- `new`: first sight;
- `unfinished`: seen before, but its processing never finished (the core crashed between the inbox write
  and starting the flow): processed again, which is safe because starting a flow is idempotent;
- `duplicate`: seen and finished: the delivery is acknowledged and dropped (its count goes up).
`finish(...)` records the outcome: routed (flows started or already running), ignored (no flow wants it),
stale (an older version of its aggregate; see ordering.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from core.crosswalk.db import UtcDateTime
from core.intake.envelopes import IntakeEvent

__all__ = ["Claim", "Inbox", "InboxEntry", "in_transaction"]

RECEIVED, ROUTED, IGNORED, STALE = "received", "routed", "ignored", "stale"


@dataclass(frozen=True)
class InboxEntry:
    system: str
    event_id: str
    event_type: str
    aggregate_key: str | None
    aggregate_version: int | None
    occurred_at: datetime | None
    received_at: datetime
    status: str
    deliveries: int
    flow_ids: list[str]
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["received_at"] = self.received_at.isoformat()
        out["occurred_at"] = self.occurred_at.isoformat() if self.occurred_at else None
        return out


@dataclass(frozen=True)
class Claim:
    outcome: Literal["new", "unfinished", "duplicate"]
    status: str  # the stored status at claim time

    @property
    def process(self) -> bool:
        return self.outcome != "duplicate"


def define_table(md: MetaData) -> Table:
    return Table(
        "inbox",
        md,
        Column("system", String(16), nullable=False),
        Column("event_id", String(255), nullable=False),
        Column("event_type", String(128), nullable=False),
        Column("aggregate_key", String(255), nullable=True),
        Column("aggregate_version", BigInteger, nullable=True),
        Column("occurred_at", UtcDateTime(), nullable=True),
        Column("received_at", UtcDateTime(), nullable=False),
        Column("status", String(16), nullable=False),
        Column("deliveries", Integer, nullable=False),
        Column("flow_ids", Text, nullable=False, default="[]"),
        Column("detail", Text, nullable=True),
        Column("payload", Text, nullable=False),
        PrimaryKeyConstraint("system", "event_id", name="inbox_event"),
        Index("inbox_aggregate", "system", "aggregate_key"),
        Index("inbox_status", "status"),
    )


class Inbox:
    def __init__(self, engine: Engine, table: Table, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._t = table
        self._clock = clock or (lambda: datetime.now(UTC))
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        t = table
        # Built once: intake runs these per event, and building a statement costs more than running it.
        self._claim = insert(t).on_conflict_do_nothing().returning(t.c.event_id)
        this_event = (t.c.system == bindparam("b_system"), t.c.event_id == bindparam("b_event_id"))
        self._redelivered = (update(t).where(*this_event).values(deliveries=t.c.deliveries + 1)
                             .returning(t.c.status))
        self._finish = update(t).where(*this_event).values(status=bindparam("b_status"),
                                                           flow_ids=bindparam("b_flow_ids"),
                                                           detail=bindparam("b_detail"))

    def claim(self, event: IntakeEvent, *, conn: Connection | None = None) -> Claim:
        """Record a delivery of `event`: new, unfinished (a redelivery of one not routed yet) or duplicate.
        `conn`: run inside the caller's transaction (intake claims and orders in one)."""
        row = {
            "system": event.system, "event_id": event.event_id, "event_type": event.event_type,
            "aggregate_key": event.aggregate_key, "aggregate_version": event.aggregate_version,
            "occurred_at": event.occurred_at, "received_at": self._clock(), "status": RECEIVED,
            "deliveries": 1, "flow_ids": "[]", "payload": json.dumps(event.payload),
        }
        with in_transaction(self._engine, conn) as tx:
            if tx.execute(self._claim, row).first() is not None:
                return Claim("new", RECEIVED)
            status = tx.execute(self._redelivered, {"b_system": event.system,
                                                    "b_event_id": event.event_id}).scalar_one()
        return Claim("unfinished" if status == RECEIVED else "duplicate", status)

    def finish(self, system: str, event_id: str, status: str, *, flow_ids: list[str] | None = None,
               detail: str | None = None, conn: Connection | None = None) -> None:
        with in_transaction(self._engine, conn) as tx:
            tx.execute(self._finish, {"b_system": system, "b_event_id": event_id, "b_status": status,
                                      "b_flow_ids": json.dumps(flow_ids or []), "b_detail": detail})

    def get(self, system: str, event_id: str) -> InboxEntry | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(self._t).where(self._t.c.system == system, self._t.c.event_id == event_id)
                               ).mappings().first()
        return None if row is None else _entry(row)

    def list(self, *, system: str | None = None, status: str | None = None, event_type: str | None = None,
             limit: int = 100, offset: int = 0) -> list[InboxEntry]:
        """Events, newest received first (what happened to each: status, the flows it went to, why)."""
        t = self._t
        query = select(t).order_by(t.c.received_at.desc(), t.c.event_id.desc()).limit(limit).offset(offset)
        if system is not None:
            query = query.where(t.c.system == system)
        if status is not None:
            query = query.where(t.c.status == status)
        if event_type is not None:
            query = query.where(t.c.event_type == event_type)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_entry(r) for r in rows]

    def unfinished(self, limit: int = 1000) -> list[InboxEntry]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(self._t).where(self._t.c.status == RECEIVED)
                                .order_by(self._t.c.received_at).limit(limit)).mappings().all()
        return [_entry(r) for r in rows]

    def payload(self, system: str, event_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            raw = conn.execute(select(self._t.c.payload).where(self._t.c.system == system,
                                                              self._t.c.event_id == event_id)).scalar()
        return None if raw is None else json.loads(raw)

    def counts(self) -> dict[str, int]:
        """Events per status, plus `duplicates`: deliveries beyond the first, summed over all events."""
        t = self._t
        with self._engine.connect() as conn:
            out = {s: n for s, n in conn.execute(select(t.c.status, func.count()).group_by(t.c.status))}
            out["duplicates"] = int(conn.execute(select(func.coalesce(func.sum(t.c.deliveries - 1), 0))).scalar_one())
        return out


@contextmanager
def in_transaction(engine: Engine, conn: Connection | None) -> Iterator[Connection]:
    """The caller's connection (its transaction), else a transaction of our own."""
    if conn is not None:
        yield conn
        return
    with engine.begin() as own:
        yield own


def _entry(row: Any) -> InboxEntry:
    data = {k: v for k, v in dict(row).items() if k != "payload"}
    data["flow_ids"] = json.loads(data["flow_ids"] or "[]")
    return InboxEntry(**data)
