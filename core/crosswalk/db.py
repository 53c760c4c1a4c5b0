"""Storage for the crosswalk: engine setup per backend and the table definitions (SQLAlchemy Core).

One code path for SQLite and PostgreSQL; the two differ only in how a writer is serialized:
- SQLite: WAL, and every write transaction starts with BEGIN IMMEDIATE (the database's single write lock,
  taken up front, so two writers never deadlock on a read->write upgrade); a busy timeout makes others wait.
- PostgreSQL: row-level conflicts are settled by unique constraints; operations that check an invariant
  across rows (link, merge) also take a transaction-scoped advisory lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from core.model.base import SYSTEMS

WRITE_OPTION = "crosswalk_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SQLITE_BUSY_TIMEOUT_S = 30.0


def normalize_url(url: str) -> str:
    """Accept a SQLAlchemy URL, a plain file path, or ':memory:'; pick psycopg 3 for PostgreSQL."""
    if url in (":memory:", "sqlite://", "sqlite:///:memory:"):
        return "sqlite://"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def make_engine(url: str) -> Engine:
    normalized = normalize_url(url)
    if not normalized.startswith("sqlite"):
        return create_engine(normalized, pool_pre_ping=True)
    if normalized == "sqlite://":
        # One shared connection, or every pooled connection would see its own empty in-memory database.
        engine = create_engine(normalized, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(normalized, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S})
    _tune_sqlite(engine, in_memory=normalized == "sqlite://")
    return engine


def _tune_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module (its implicit BEGIN is deferred and can't be
        # made IMMEDIATE); SQLAlchemy's "begin" event below issues BEGIN itself.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on both backends (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the crosswalk stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Tables:
    metadata: MetaData
    canonical: Table  # every minted canonical id and its entity
    refs: Table  # (entity, system, native_id) -> canonical id, as first linked (merges don't rewrite it)
    aliases: Table  # loser -> winner, one row per merged-away canonical id
    history: Table  # append-only merge / unmerge log


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name {schema!r} must match {_SCHEMA_NAME.pattern}")
    return schema


def build_tables(schema: str | None = None) -> Tables:
    md = MetaData(schema=check_schema_name(schema) if schema else None)
    ids = f"{md.schema}.xw_canonical" if md.schema else "xw_canonical"
    systems = ", ".join(f"'{s}'" for s in SYSTEMS)
    canonical = Table(
        "xw_canonical",
        md,
        Column("canonical_id", String(40), primary_key=True),
        Column("entity", String(32), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
    )
    refs = Table(
        "xw_refs",
        md,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("entity", String(32), nullable=False),
        Column("system", String(16), nullable=False),
        Column("native_id", String(255), nullable=False),
        Column("canonical_id", String(40), ForeignKey(f"{ids}.canonical_id"), nullable=False),
        Column("linked_at", UtcDateTime(), nullable=False),
        # The constraint get_or_create relies on: one canonical id per native record, whoever races.
        UniqueConstraint("entity", "system", "native_id", name="xw_refs_native_key"),
        # At most one native id per system on one canonical id (merged-in ones stay on the loser's id).
        UniqueConstraint("canonical_id", "system", name="xw_refs_one_per_system"),
        CheckConstraint(f"system IN ({systems})", name="xw_refs_system"),
    )
    aliases = Table(
        "xw_aliases",
        md,
        Column("loser", String(40), ForeignKey(f"{ids}.canonical_id"), primary_key=True),
        Column("winner", String(40), ForeignKey(f"{ids}.canonical_id"), nullable=False),
        Column("source", String(64), nullable=False),
        Column("merged_at", UtcDateTime(), nullable=False),
        CheckConstraint("loser <> winner", name="xw_aliases_not_self"),
        Index("xw_aliases_winner", "winner"),
    )
    history = Table(
        "xw_history",
        md,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("action", String(8), nullable=False),
        Column("winner", String(40), nullable=False),
        Column("loser", String(40), nullable=False),
        Column("source", String(64), nullable=False),
        Column("at", UtcDateTime(), nullable=False),
        CheckConstraint("action IN ('merge', 'unmerge')", name="xw_history_action"),
        Index("xw_history_winner", "winner"),
        Index("xw_history_loser", "loser"),
    )
    return Tables(md, canonical, refs, aliases, history)
