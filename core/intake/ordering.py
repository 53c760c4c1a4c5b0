"""Per-aggregate ordering: the newest version seen for each (system, aggregate) wins; older ones are stale.

Webhooks arrive out of order (every vendor says so). Each event carries a version of the aggregate it is
about (envelopes.py says where it comes from per system). `advance(...)` keeps the highest version per
aggregate in one atomic upsert (`... ON CONFLICT DO UPDATE ... WHERE stored <= new`), so concurrent
deliveries can't both win: an event whose version is lower than the stored one is stale, and the caller
ignores it (the inbox records it as `stale`, with the version that beat it). Equal versions are not stale:
the wire can't tell them apart, so both are processed (flows are idempotent). No version: always current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    bindparam,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from core.crosswalk.db import UtcDateTime
from core.intake.envelopes import IntakeEvent
from core.intake.inbox import in_transaction

__all__ = ["Ordering", "OrderingDecision"]


@dataclass(frozen=True)
class OrderingDecision:
    current: bool
    stored_version: int | None  # the winning version after this call
    stored_event_id: str | None


def define_table(md: MetaData) -> Table:
    return Table(
        "aggregate_versions",
        md,
        Column("system", String(16), nullable=False),
        Column("aggregate_key", String(255), nullable=False),
        Column("version", BigInteger, nullable=False),
        Column("event_id", String(255), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        PrimaryKeyConstraint("system", "aggregate_key", name="aggregate_versions_key"),
    )


class Ordering:
    def __init__(self, engine: Engine, table: Table, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._t = table
        self._clock = clock or (lambda: datetime.now(UTC))
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        t = table
        # Built once (intake runs it per event): the row comes in as parameters.
        stmt = insert(t)
        self._advance = stmt.on_conflict_do_update(
            index_elements=[t.c.system, t.c.aggregate_key],
            set_={"version": stmt.excluded.version, "event_id": stmt.excluded.event_id,
                  "updated_at": stmt.excluded.updated_at},
            where=t.c.version <= stmt.excluded.version,
        ).returning(t.c.version)
        self._stored = select(t.c.version, t.c.event_id).where(t.c.system == bindparam("b_system"),
                                                                t.c.aggregate_key == bindparam("b_key"))

    def advance(self, event: IntakeEvent, *, conn: Connection | None = None) -> OrderingDecision:
        """Move the aggregate's version to the event's unless a newer one was seen (then: not current).
        `conn`: run inside the caller's transaction."""
        if event.aggregate_key is None or event.aggregate_version is None:
            return OrderingDecision(True, None, None)
        row = {"system": event.system, "aggregate_key": event.aggregate_key, "version": event.aggregate_version,
               "event_id": event.event_id, "updated_at": self._clock()}
        with in_transaction(self._engine, conn) as tx:
            if tx.execute(self._advance, row).first() is not None:
                return OrderingDecision(True, event.aggregate_version, event.event_id)
            stored = tx.execute(self._stored, {"b_system": event.system, "b_key": event.aggregate_key}).one()
        return OrderingDecision(False, stored.version, stored.event_id)

    def version(self, system: str, aggregate_key: str) -> int | None:
        with self._engine.connect() as conn:
            return conn.execute(select(self._t.c.version).where(self._t.c.system == system,
                                                                self._t.c.aggregate_key == aggregate_key)).scalar()
