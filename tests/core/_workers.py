"""Concurrency drivers shared by the thread and process tests (importable, so spawned processes find them)."""

from __future__ import annotations

import threading
from typing import Any

from core.crosswalk import Crosswalk


def hammer(xw: Crosswalk, keys: list[str], threads: int, calls: int) -> list[tuple[str, str]]:
    """`threads` threads released together, each calling get_or_create `calls` times over `keys`
    in the same order (so they collide on every key). Returns every (key, canonical id) observed."""
    start = threading.Barrier(threads)
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            mine = [(k, xw.get_or_create("account", "crm", k)) for k in (keys[i % len(keys)] for i in range(calls))]
        except BaseException as exc:  # surfaced to the test below, not swallowed by the thread
            errors.append(exc)
            return
        with lock:
            seen.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return seen


def hammer_in_process(
    url: str, schema: str | None, keys: list[str], threads: int, calls: int, start: Any, out: Any
) -> None:
    """Process entry point: open a separate crosswalk (own engine, own connections), wait, hammer, report."""
    try:
        xw = Crosswalk(url, schema=schema)
        start.wait(timeout=60)
        out.put(("ok", hammer(xw, keys, threads, calls)))
        xw.close()
    except BaseException as exc:
        out.put(("error", repr(exc)))
