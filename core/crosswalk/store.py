"""The crosswalk: canonical id <-> (system, native id), with merge aliases and their history.

Rules (the ones callers can rely on):
- `get_or_create` never mints two canonical ids for one (entity, system, native_id), whatever races it:
  the unique constraint on that triple decides, via INSERT ... ON CONFLICT DO NOTHING, and the loser of a
  race rolls back its freshly minted id and reads the winner's.
- A canonical id holds at most one native id per system (`link` refuses a second one: LinkConflictError).
- `merge(loser, winner)` records an alias; nothing is rewritten. Every read resolves aliases first, so
  lookups of the loser's native ids return the survivor. Conflicting native ids (both sides had one for
  a system) are all kept: `native()` / `refs()` prefer the survivor's own, then the one merged in most
  directly (fewest alias hops, then first linked); `aliases()` lists them all.
- Merges are transitive (A -> B, B -> C: resolve(A) == C); a merge that would close a cycle is refused.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from core.crosswalk.db import WRITE_OPTION, build_tables, make_engine
from core.crosswalk.errors import (
    CorruptCrosswalkError,
    LinkConflictError,
    MergeCycleError,
    MergeError,
    UnknownCanonicalIdError,
)
from core.crosswalk.integrity import check_integrity
from core.crosswalk.records import MergeRecord, NativeRef, Problem
from core.model.base import SYSTEMS
from core.model.ids import PREFIXES, CanonicalId, IdSource

_MINT_ATTEMPTS = 5  # only an id collision (two sources, same ms, same 80 random bits) ever needs a retry


class Crosswalk:
    """Persistent id mapping. `url`: a SQLite file path, ':memory:', or a SQLAlchemy / PostgreSQL URL.

    `schema` (PostgreSQL only) keeps the tables in their own schema, created if missing. `ids` and
    `clock` are injectable so seeded runs mint the same ids and timestamps. Thread-safe; several processes
    may share one database. Create it after forking (a forked copy re-opens its own connections).
    """

    def __init__(
        self,
        url: str = ":memory:",
        *,
        schema: str | None = None,
        ids: IdSource | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = make_engine(url)
        self._pg = self._engine.dialect.name == "postgresql"
        if schema and not self._pg:
            raise ValueError("schema= is only supported on PostgreSQL")
        self._t = build_tables(schema)
        self._ids = ids or IdSource()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._pid = os.getpid()
        # SQLite ':memory:' is one shared connection: serialize its users. Elsewhere the database does.
        self._mem_lock: Any = threading.RLock() if str(self._engine.url) == "sqlite://" else nullcontext()
        # A per-schema key, so crosswalks in separate schemas don't serialize each other's merges.
        digest = hashlib.blake2b(f"lockstep.crosswalk:{schema or ''}".encode(), digest_size=8).digest()
        self._lock_key = int.from_bytes(digest, "big", signed=True)
        self._q = _Statements(self._t, postgresql.insert if self._pg else sqlite.insert)
        self._create_schema(schema)

    # -- plumbing ---------------------------------------------------------------------------------

    def _create_schema(self, schema: str | None) -> None:
        with self._tx(write=True, exclusive=True) as conn:
            if schema:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            self._t.metadata.create_all(conn, checkfirst=True)

    @contextmanager
    def _tx(self, *, write: bool, exclusive: bool = False) -> Iterator[Connection]:
        """One transaction. `write`: SQLite takes its write lock up front. `exclusive`: PostgreSQL also
        serializes with other exclusive transactions (for checks spanning several rows: link, merge)."""
        if os.getpid() != self._pid:  # forked: never share the parent's sockets / file handles
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        with self._mem_lock, self._engine.connect() as conn:
            if write:
                conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if exclusive and self._pg:
                    conn.execute(select(text("pg_advisory_xact_lock(:key)")), {"key": self._lock_key})
                yield conn

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Crosswalk:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def backend(self) -> str:
        return self._engine.dialect.name

    # -- minting and linking ------------------------------------------------------------------------

    def new(self, entity: str) -> CanonicalId:
        """Mint a canonical id with no native record yet (the core creates the record first)."""
        _check_entity(entity)
        for _ in range(_MINT_ATTEMPTS):
            with self._tx(write=True) as conn:
                new_id = self._ids.new(entity)
                if self._mint(conn, new_id, entity):
                    return new_id
        raise RuntimeError("could not mint a unique canonical id")  # pragma: no cover - needs a broken IdSource

    def get_or_create(self, entity: str, system: str, native_id: str) -> CanonicalId:
        """The canonical id (merges resolved) for a native record, minting one on first sight."""
        _check_key(entity, system, native_id)
        with self._tx(write=False) as conn:
            found = self._find(conn, entity, system, native_id)
            if found is not None:
                return self._resolve(conn, found)
        for _ in range(_MINT_ATTEMPTS):
            with self._tx(write=True) as conn:
                new_id = self._ids.new(entity)
                if not self._mint(conn, new_id, entity):
                    continue
                row = {
                    "entity": entity,
                    "system": system,
                    "native_id": native_id,
                    "canonical_id": new_id,
                    "linked_at": self._clock(),
                }
                if conn.execute(self._q.add_ref, row).first() is not None:
                    return new_id
                # Lost the race: another writer committed this key first. Read its id, then roll back our
                # mint so no orphan canonical id survives.
                found = self._find(conn, entity, system, native_id)
                if found is None:  # pragma: no cover - the conflicting row is committed by now
                    raise CorruptCrosswalkError(f"conflict on {entity}/{system}/{native_id} but no row")
                winner = self._resolve(conn, found)
                conn.rollback()
                return winner
        raise RuntimeError("could not mint a unique canonical id")  # pragma: no cover

    def link(self, canonical_id: str, system: str, native_id: str) -> CanonicalId:
        """Attach a native id to a canonical id (to its survivor, if it was merged). Idempotent.

        LinkConflictError when the native id belongs to another canonical id, or when the canonical id
        already has a different native id for `system`.
        """
        with self._tx(write=True, exclusive=True) as conn:
            entity = self._entity(conn, canonical_id)
            _check_key(entity, system, native_id)
            target = self._resolve(conn, canonical_id)
            if self._owner_of(conn, entity, system, native_id, target) == target:
                return target
            current = self._primary_refs(conn, target).get(system)
            if current is not None:
                raise LinkConflictError(
                    f"{target} already has {system} id {current!r}; refusing to add {native_id!r} "
                    "(one native id per system; merge the canonical records instead)"
                )
            row = {"entity": entity, "system": system, "native_id": native_id, "canonical_id": target,
                   "linked_at": self._clock()}
            if conn.execute(self._q.add_ref, row).first() is None:
                # get_or_create doesn't take the lock: it may have claimed this native id since the check above.
                self._owner_of(conn, entity, system, native_id, target)
                raise LinkConflictError(f"{system} {entity} {native_id!r} was linked concurrently")  # pragma: no cover
            return target

    def _owner_of(self, conn: Connection, entity: str, system: str, native_id: str, target: str) -> str | None:
        """The survivor holding this native id: None if free, `target` if already ours; conflict otherwise."""
        existing = self._find(conn, entity, system, native_id)
        if existing is None:
            return None
        owner = self._resolve(conn, existing)
        if owner != target:
            raise LinkConflictError(f"{system} {entity} {native_id!r} already belongs to {owner}, not {target}")
        return owner

    # -- reads ----------------------------------------------------------------------------------------

    def lookup(self, entity: str, system: str, native_id: str) -> CanonicalId | None:
        """The canonical id (merges resolved) for a native record, or None if never seen."""
        _check_key(entity, system, native_id)
        with self._tx(write=False) as conn:
            found = self._find(conn, entity, system, native_id)
            return None if found is None else self._resolve(conn, found)

    def native(self, canonical_id: str, system: str) -> str | None:
        _check_system(system)
        return self.refs(canonical_id).get(system)

    def refs(self, canonical_id: str) -> dict[str, str]:
        """system -> native id for the survivor of `canonical_id` (one per system; see the module rules)."""
        with self._tx(write=False) as conn:
            self._entity(conn, canonical_id)
            return self._primary_refs(conn, self._resolve(conn, canonical_id))

    def aliases(self, canonical_id: str) -> list[NativeRef]:
        """Every native ref reachable from the survivor of `canonical_id`, merged-in ones included."""
        with self._tx(write=False) as conn:
            self._entity(conn, canonical_id)
            return self._group_refs(conn, self._resolve(conn, canonical_id))

    def resolve(self, canonical_id: str) -> CanonicalId:
        """Follow merge aliases to the surviving canonical id (itself when never merged)."""
        with self._tx(write=False) as conn:
            self._entity(conn, canonical_id)
            return self._resolve(conn, canonical_id)

    def entity(self, canonical_id: str) -> str:
        with self._tx(write=False) as conn:
            return self._entity(conn, canonical_id)

    # -- merges ---------------------------------------------------------------------------------------

    def merge(self, loser: str, winner: str, *, source: str, at: datetime) -> MergeRecord:
        """Alias `loser` to `winner`. Replaying a merge whose outcome already holds is a no-op."""
        _check_event(source, at)
        with self._tx(write=True, exclusive=True) as conn:
            loser_entity, winner_entity = self._entity(conn, loser), self._entity(conn, winner)
            if loser_entity != winner_entity:
                raise MergeError(f"can't merge a {loser_entity} ({loser}) into a {winner_entity} ({winner})")
            if loser == winner:
                raise MergeCycleError(f"can't merge {loser} into itself")
            a = self._t.aliases.c
            current = conn.execute(select(a.winner, a.source, a.merged_at).where(a.loser == loser)).first()
            survivor = self._resolve(conn, winner)
            if current is not None:
                if self._resolve(conn, current.winner) == survivor:
                    return MergeRecord("merge", current.winner, loser, current.source, current.merged_at)
                raise MergeError(f"{loser} is already merged into {current.winner}; unmerge it first")
            if survivor == loser:
                raise MergeCycleError(f"merging {loser} into {winner} would make a cycle: {winner} resolves to {loser}")
            at = at.astimezone(UTC)
            conn.execute(insert(self._t.aliases).values(loser=loser, winner=winner, source=source, merged_at=at))
            event = {"winner": winner, "loser": loser, "source": source, "at": at}
            conn.execute(insert(self._t.history).values(action="merge", **event))
            return MergeRecord("merge", winner, loser, source, at)

    def unmerge(self, loser: str, *, source: str, at: datetime) -> MergeRecord:
        """Undo a merge (a correction): `loser` becomes a survivor again, with the refs linked to it."""
        _check_event(source, at)
        with self._tx(write=True, exclusive=True) as conn:
            self._entity(conn, loser)
            a = self._t.aliases.c
            winner = conn.execute(select(a.winner).where(a.loser == loser)).scalar_one_or_none()
            if winner is None:
                raise MergeError(f"{loser} is not merged into anything")
            at = at.astimezone(UTC)
            conn.execute(delete(self._t.aliases).where(a.loser == loser))
            event = {"winner": winner, "loser": loser, "source": source, "at": at}
            conn.execute(insert(self._t.history).values(action="unmerge", **event))
            return MergeRecord("unmerge", winner, loser, source, at)

    def history(self, canonical_id: str) -> list[MergeRecord]:
        """Merge / unmerge events touching `canonical_id` or anything merged with it, oldest first."""
        with self._tx(write=False) as conn:
            self._entity(conn, canonical_id)
            group = {canonical_id, *self._group(conn, self._resolve(conn, canonical_id))}
            h = self._t.history.c
            rows = conn.execute(
                select(h.action, h.winner, h.loser, h.source, h.at)
                .where(h.winner.in_(group) | h.loser.in_(group))
                .order_by(h.seq)
            )
            return [MergeRecord(r.action, r.winner, r.loser, r.source, r.at) for r in rows]

    def survivors(self, entity: str) -> list[str]:
        """Canonical ids of `entity` that were not merged away, in id (= minting time) order."""
        c = self._t.canonical.c
        query = (select(c.canonical_id)
                 .where(c.entity == entity, c.canonical_id.not_in(select(self._t.aliases.c.loser)))
                 .order_by(c.canonical_id))
        with self._tx(write=False) as conn:
            return [str(x) for x in conn.execute(query).scalars().all()]

    def counts(self) -> dict[str, int]:
        """Row counts per table (canonical ids, native refs, aliases, history): for tests and health checks."""
        with self._tx(write=False) as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in (
                    ("canonical", self._t.canonical),
                    ("refs", self._t.refs),
                    ("aliases", self._t.aliases),
                    ("history", self._t.history),
                )
            }

    def check_integrity(self) -> list[Problem]:
        """Problems with the standing invariant "every crosswalk entry resolves" (empty when healthy)."""
        with self._tx(write=False) as conn:
            return check_integrity(conn, self._t)

    # -- internals (all run inside a caller's transaction) ---------------------------------------------

    def _mint(self, conn: Connection, canonical_id: str, entity: str) -> bool:
        row = {"canonical_id": canonical_id, "entity": entity, "created_at": self._clock()}
        return conn.execute(self._q.mint, row).first() is not None

    def _find(self, conn: Connection, entity: str, system: str, native_id: str) -> CanonicalId | None:
        return conn.execute(self._q.find, {"b_entity": entity, "b_system": system,
                                           "b_native": native_id}).scalar_one_or_none()

    def _entity(self, conn: Connection, canonical_id: str) -> str:
        entity = conn.execute(self._q.entity, {"b_id": canonical_id}).scalar_one_or_none()
        if entity is None:
            raise UnknownCanonicalIdError(f"unknown canonical id {canonical_id!r}")
        return str(entity)

    def _resolve(self, conn: Connection, canonical_id: str) -> CanonicalId:
        path = [canonical_id]
        while (winner := conn.execute(self._q.winner, {"b_loser": path[-1]}).scalar_one_or_none()) is not None:
            if winner in path:
                raise CorruptCrosswalkError(f"alias cycle: {' -> '.join([*path, winner])}")
            path.append(winner)
            # Only merged ids pay for this check; foreign keys make it fail only on hand-edited data.
            if conn.execute(self._q.entity, {"b_id": winner}).first() is None:
                raise CorruptCrosswalkError(f"dangling alias: {' -> '.join(path)} (unknown {winner})")
        return CanonicalId(path[-1])

    def _group(self, conn: Connection, survivor: str) -> list[str]:
        """The survivor, then everything merged into it, nearest first (breadth-first over aliases)."""
        members, frontier = [survivor], [survivor]
        while frontier:
            losers = conn.execute(self._q.losers, {"b_winners": frontier}).scalars().all()
            frontier = [x for x in losers if x not in members]
            members.extend(frontier)
        return members

    def _group_refs(self, conn: Connection, survivor: str) -> list[NativeRef]:
        members = self._group(conn, survivor)
        rank = {cid: i for i, cid in enumerate(members)}
        rows = list(conn.execute(self._q.group_refs, {"b_members": members}).all())
        rows.sort(key=lambda row: (rank[row.canonical_id], row.seq))
        seen: set[str] = set()
        out = []
        for row in rows:
            out.append(NativeRef(row.entity, row.system, row.native_id, row.canonical_id, row.system not in seen))
            seen.add(row.system)
        return out

    def _primary_refs(self, conn: Connection, survivor: str) -> dict[str, str]:
        return {ref.system: ref.native_id for ref in self._group_refs(conn, survivor) if ref.primary}


def _check_entity(entity: str) -> None:
    if entity not in PREFIXES:
        raise ValueError(f"unknown entity {entity!r}; known: {', '.join(sorted(PREFIXES))}")


def _check_system(system: str) -> None:
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")


def _check_key(entity: str, system: str, native_id: str) -> None:
    _check_entity(entity)
    _check_system(system)
    if not isinstance(native_id, str) or not native_id or len(native_id) > 255:
        raise ValueError(f"native id must be a non-empty string of at most 255 characters, got {native_id!r}")


def _check_event(source: str, at: datetime) -> None:
    if not source or len(source) > 64:
        raise ValueError("source must be a non-empty string of at most 64 characters")
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware (UTC) time")


class _Statements:
    """The statements every lookup runs, built once: building a statement (and its cache key) on each call
    cost more than running it (profiled in the month-end burst)."""

    def __init__(self, t: Any, insert: Callable[[Table], Any]) -> None:
        r, c, a = t.refs.c, t.canonical.c, t.aliases.c
        self.find = select(r.canonical_id).where(r.entity == bindparam("b_entity"), r.system == bindparam("b_system"),
                                                 r.native_id == bindparam("b_native"))
        self.entity = select(c.entity).where(c.canonical_id == bindparam("b_id"))
        self.winner = select(a.winner).where(a.loser == bindparam("b_loser"))
        self.losers = (select(a.loser).where(a.winner.in_(bindparam("b_winners", expanding=True)))
                       .order_by(a.loser))
        self.group_refs = select(r.entity, r.system, r.native_id, r.canonical_id, r.seq).where(
            r.canonical_id.in_(bindparam("b_members", expanding=True)))
        # RETURNING, not rowcount: drivers disagree on rowcount for INSERT ... ON CONFLICT DO NOTHING.
        self.mint = insert(t.canonical).on_conflict_do_nothing().returning(c.canonical_id)
        self.add_ref = insert(t.refs).on_conflict_do_nothing().returning(r.seq)
