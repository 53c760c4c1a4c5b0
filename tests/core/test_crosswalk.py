"""Crosswalk behaviour on a SQLite file and on PostgreSQL (each test runs on both via the `xw` fixture)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from core.crosswalk import (
    CorruptCrosswalkError,
    Crosswalk,
    LinkConflictError,
    MergeCycleError,
    MergeError,
    UnknownCanonicalIdError,
)
from core.model import IdSource, entity_of
from tests.core.conftest import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_get_or_create_is_stable_and_keyed_by_entity_system_and_native_id(xw: Crosswalk) -> None:
    acc = xw.get_or_create("account", "crm", "001A")
    assert entity_of(acc) == "account" and acc.startswith("acc_")
    assert xw.get_or_create("account", "crm", "001A") == acc
    assert xw.get_or_create("account", "erp", "001A") != acc  # same native id, other system
    assert xw.get_or_create("contact", "crm", "001A").startswith("con_")  # other entity
    assert xw.lookup("account", "crm", "001A") == acc
    assert xw.lookup("account", "crm", "nope") is None
    assert xw.counts()["canonical"] == 3


def test_bad_keys_are_rejected(xw: Crosswalk) -> None:
    with pytest.raises(ValueError, match="unknown entity 'acount'"):
        xw.get_or_create("acount", "crm", "1")
    with pytest.raises(ValueError, match="unknown system 'sap'"):
        xw.get_or_create("account", "sap", "1")
    with pytest.raises(ValueError, match="native id"):
        xw.get_or_create("account", "crm", "")


def test_one_canonical_id_links_one_native_id_per_system(xw: Crosswalk) -> None:
    acc = xw.get_or_create("account", "crm", "001A")
    assert xw.link(acc, "billing", "cus_1") == acc
    assert xw.link(acc, "erp", "4711") == acc
    assert xw.link(acc, "billing", "cus_1") == acc  # idempotent
    assert xw.refs(acc) == {"crm": "001A", "billing": "cus_1", "erp": "4711"}
    assert xw.native(acc, "billing") == "cus_1"
    assert xw.native(acc, "cs") is None
    assert xw.lookup("account", "billing", "cus_1") == acc

    with pytest.raises(LinkConflictError, match="already has billing id 'cus_1'"):
        xw.link(acc, "billing", "cus_2")
    other = xw.get_or_create("account", "crm", "001B")
    with pytest.raises(LinkConflictError, match="already belongs to"):
        xw.link(other, "billing", "cus_1")
    with pytest.raises(UnknownCanonicalIdError):
        xw.link("acc_01J00000000000000000000000", "erp", "1")


def test_merges_are_transitive_and_native_ids_follow_the_survivor(xw: Crosswalk) -> None:
    a = xw.get_or_create("account", "crm", "001A")
    b = xw.get_or_create("account", "crm", "001B")
    c = xw.get_or_create("account", "crm", "001C")
    xw.link(a, "billing", "cus_A")
    xw.link(a, "cs", "gs_A")
    xw.link(b, "billing", "cus_B")

    xw.merge(a, b, source="crm", at=T0)
    xw.merge(b, c, source="crm", at=T0 + timedelta(minutes=5))

    assert xw.resolve(a) == xw.resolve(b) == xw.resolve(c) == c
    assert xw.lookup("account", "crm", "001A") == c
    assert xw.get_or_create("account", "billing", "cus_A") == c
    # Conflict rule: both billing customers are kept; the one merged in most directly (b) is primary.
    assert xw.refs(a) == {"crm": "001C", "billing": "cus_B", "cs": "gs_A"}
    billing = {(r.native_id, r.canonical_id, r.primary) for r in xw.aliases(c) if r.system == "billing"}
    assert billing == {("cus_B", b, True), ("cus_A", a, False)}
    assert xw.link(c, "billing", "cus_A") == c  # already reachable as an alias: idempotent, not a conflict
    # Linking through a merged-away id lands on the survivor.
    assert xw.link(a, "erp", "4711") == c
    assert xw.native(c, "erp") == "4711"
    assert xw.check_integrity() == []
    other = xw.get_or_create("account", "crm", "001D")
    xw.get_or_create("contact", "crm", "003A")
    assert xw.survivors("account") == sorted([c, other])


def test_merge_refuses_cycles_self_merges_and_mixed_entities(xw: Crosswalk) -> None:
    a = xw.get_or_create("account", "crm", "001A")
    b = xw.get_or_create("account", "crm", "001B")
    c = xw.get_or_create("account", "crm", "001C")
    xw.merge(a, b, source="crm", at=T0)
    xw.merge(b, c, source="crm", at=T0)
    with pytest.raises(MergeCycleError, match="cycle"):
        xw.merge(c, a, source="crm", at=T0)
    with pytest.raises(MergeCycleError, match="into itself"):
        xw.merge(c, c, source="crm", at=T0)
    with pytest.raises(MergeError, match="contact"):
        xw.merge(xw.get_or_create("contact", "crm", "003X"), c, source="crm", at=T0)
    d = xw.get_or_create("account", "crm", "001D")
    with pytest.raises(MergeError, match="already merged into"):
        xw.merge(a, d, source="crm", at=T0)
    with pytest.raises(ValueError, match="naive"):
        xw.merge(d, c, source="crm", at=datetime(2026, 1, 1))
    assert xw.resolve(c) == c
    assert xw.counts()["aliases"] == 2


def test_replayed_merge_is_a_no_op(xw: Crosswalk) -> None:
    a = xw.get_or_create("account", "crm", "001A")
    b = xw.get_or_create("account", "crm", "001B")
    first = xw.merge(a, b, source="crm", at=T0)
    again = xw.merge(a, b, source="crm-redelivery", at=T0 + timedelta(hours=1))
    assert again == first
    assert len(xw.history(b)) == 1


def test_history_records_winner_loser_source_and_time(xw: Crosswalk) -> None:
    a = xw.get_or_create("account", "crm", "001A")
    b = xw.get_or_create("account", "crm", "001B")
    c = xw.get_or_create("account", "crm", "001C")
    xw.merge(a, b, source="crm", at=T0)
    xw.merge(b, c, source="ops", at=T0.astimezone(timezone(timedelta(hours=2))) + timedelta(days=1))

    events = [(e.action, e.winner, e.loser, e.source, e.at) for e in xw.history(a)]
    assert events == [
        ("merge", b, a, "crm", T0),
        ("merge", c, b, "ops", T0 + timedelta(days=1)),
    ]
    assert xw.history(c) == xw.history(a)
    assert all(e.at.tzinfo is not None and e.at.utcoffset() == timedelta(0) for e in xw.history(c))
    assert xw.history(xw.get_or_create("account", "crm", "001Z")) == []


def test_unmerge_corrects_a_merge(xw: Crosswalk) -> None:
    a = xw.get_or_create("account", "crm", "001A")
    b = xw.get_or_create("account", "crm", "001B")
    xw.link(a, "billing", "cus_A")
    xw.merge(a, b, source="crm", at=T0)
    assert xw.native(b, "billing") == "cus_A"

    record = xw.unmerge(a, source="ops", at=T0 + timedelta(hours=1))
    assert (record.action, record.winner, record.loser) == ("unmerge", b, a)
    assert xw.resolve(a) == a
    assert xw.native(b, "billing") is None
    assert xw.lookup("account", "billing", "cus_A") == a
    assert [e.action for e in xw.history(a)] == ["merge", "unmerge"]
    with pytest.raises(MergeError, match="not merged"):
        xw.unmerge(a, source="ops", at=T0)


def test_mapping_persists_across_handles(store: Store) -> None:
    with store.open() as first:
        acc = first.get_or_create("account", "crm", "001A")
        other = first.get_or_create("account", "crm", "001B")
        first.merge(acc, other, source="crm", at=T0)
    with store.open() as second:
        assert second.lookup("account", "crm", "001A") == other
        assert second.history(acc)[0].loser == acc


def test_seeded_id_source_mints_the_same_ids() -> None:
    runs = []
    for _ in range(2):
        with Crosswalk(":memory:", ids=IdSource.seeded(11)) as xw:
            runs.append([xw.get_or_create("account", "crm", f"001{i}") for i in range(5)])
    assert runs[0] == runs[1]
    assert runs[0] == sorted(runs[0])  # sortable: minted in order


def test_check_integrity_finds_a_planted_dangling_alias_on_sqlite(sqlite_store: Store) -> None:
    with sqlite_store.open() as xw:
        a = xw.get_or_create("account", "crm", "001A")
        assert xw.check_integrity() == []
    ghost = "acc_01J0GHQST0000000000000000Z"
    # A hand edit through a connection without `PRAGMA foreign_keys=ON` (sqlite3's default).
    raw = sqlite3.connect(sqlite_store.url)
    raw.execute("INSERT INTO xw_aliases VALUES (?, ?, 'hand-edit', '2026-01-01 00:00:00.000000')", (a, ghost))
    raw.commit()
    raw.close()
    with sqlite_store.open() as xw:
        problems = xw.check_integrity()
        assert [(p.kind, p.canonical_id) for p in problems] == [("dangling_alias", a)]
        assert "unknown winner" in problems[0].detail
        with pytest.raises(CorruptCrosswalkError, match="dangling alias"):
            xw.resolve(a)


def test_check_integrity_finds_a_planted_dangling_alias_on_postgres(pg_store: Store) -> None:
    with pg_store.open() as xw:
        a = xw.get_or_create("account", "crm", "001A")
    ghost = "acc_01J0GHQST0000000000000000Z"
    with psycopg.connect(pg_store.url, autocommit=True) as raw:
        try:  # bypass the foreign keys the way a restore tool would (superuser only)
            raw.execute("SET session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("planting a dangling row on PostgreSQL needs a superuser to bypass foreign keys")
        raw.execute(f'INSERT INTO "{pg_store.schema}".xw_aliases VALUES (%s, %s, %s, %s)', (a, ghost, "hand-edit", T0))
    with pg_store.open() as xw:
        assert [(p.kind, p.canonical_id) for p in xw.check_integrity()] == [("dangling_alias", a)]


def test_check_integrity_finds_a_planted_cycle(store: Store, xw: Crosswalk) -> None:
    a = xw.get_or_create("account", "crm", "001A")
    b = xw.get_or_create("account", "crm", "001B")
    xw.merge(a, b, source="crm", at=T0)
    assert xw.check_integrity() == []
    # The API refuses this merge, so plant the reverse alias directly.
    table = f'"{store.schema}".xw_aliases' if store.schema else "xw_aliases"
    if store.schema:
        with psycopg.connect(store.url, autocommit=True) as raw:
            raw.execute(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)", (b, a, "hand-edit", T0))
    else:
        raw = sqlite3.connect(store.url)
        raw.execute(f"INSERT INTO {table} VALUES (?, ?, 'hand-edit', '2026-01-01 00:00:00.000000')", (b, a))
        raw.commit()
        raw.close()
    problems = xw.check_integrity()
    assert [p.kind for p in problems] == ["alias_cycle"]
    assert a in problems[0].detail and b in problems[0].detail
    with pytest.raises(CorruptCrosswalkError, match="cycle"):
        xw.lookup("account", "crm", "001A")
