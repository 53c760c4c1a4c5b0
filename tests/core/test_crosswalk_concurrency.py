"""get_or_create under contention: threads sharing one crosswalk, and separate processes sharing the DB.

Every worker asks for the same keys in the same order, released together by a barrier, so each key is
raced. Exactly one canonical id may exist per key, and no minted-but-unused ids may be left behind.
"""

from __future__ import annotations

import multiprocessing
from collections import defaultdict

from core.crosswalk import Crosswalk
from tests.core._workers import hammer, hammer_in_process
from tests.core.conftest import Store

KEYS = [f"001RACE{i:02d}" for i in range(10)]


def _assert_one_id_per_key(observed: list[tuple[str, str]], store: Store, expected_calls: int) -> None:
    assert len(observed) == expected_calls
    ids_per_key: dict[str, set[str]] = defaultdict(set)
    for key, canonical in observed:
        ids_per_key[key].add(canonical)
    assert {key: len(ids) for key, ids in ids_per_key.items()} == dict.fromkeys(KEYS, 1)
    assert len({next(iter(ids)) for ids in ids_per_key.values()}) == len(KEYS)
    with store.open() as xw:
        counts = xw.counts()
        assert (counts["canonical"], counts["refs"]) == (len(KEYS), len(KEYS))  # losers rolled back their mint
        assert {key: xw.lookup("account", "crm", key) for key in KEYS} == {
            key: next(iter(ids)) for key, ids in ids_per_key.items()
        }


def test_threads_never_mint_two_ids_for_one_key(store: Store) -> None:
    with store.open() as xw:
        observed = hammer(xw, KEYS, threads=8, calls=50)
    _assert_one_id_per_key(observed, store, expected_calls=8 * 50)


def test_in_memory_crosswalk_is_thread_safe() -> None:
    with Crosswalk(":memory:") as xw:
        observed = hammer(xw, KEYS, threads=8, calls=50)
        assert xw.counts()["canonical"] == len(KEYS)
    assert len(set(observed)) == len(KEYS)


def test_processes_never_mint_two_ids_for_one_key(store: Store) -> None:
    store.open().close()  # create the tables up front; the race under test is get_or_create's
    # fork is much cheaper than spawn; each child still opens its own crosswalk (own engine, own connections),
    # so the processes share nothing but the database.
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=hammer_in_process, args=(store.url, store.schema, KEYS, 4, 50, start, out)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    errors = [payload for status, payload in results if status != "ok"]
    assert errors == []
    observed = [pair for _status, payload in results for pair in payload]
    _assert_one_id_per_key(observed, store, expected_calls=2 * 4 * 50)
