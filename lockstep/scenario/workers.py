"""Worker processes: each runs its own in-process Sandbox (DBOS is one per process) and a share of the suite.

Each worker is a full, private sandbox: its own mock tenants, its own core and store, so worker processes
share nothing and even exclusive scenarios (faults, limits, drift, chaos) run in every worker at once.
Scenarios are dealt out round-robin in file order, so a given scenario always lands on the same worker for
a given worker count. Results come back in file order.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from lockstep.scenario.engine import run_suite
from lockstep.scenario.loader import LoadedScenario, load_file
from lockstep.scenario.results import ScenarioResult, SuiteResult
from lockstep.scenario.target import Target

__all__ = ["run_in_workers"]


def _worker(files: list[tuple[str, str]], seed: int | None, concurrency: int, timeline: bool,
            progress: Any, skip_invariants: frozenset[str] = frozenset()) -> list[ScenarioResult]:
    import logging

    logging.getLogger("dbos").setLevel(logging.CRITICAL)
    items = [load_file(path, pack=pack) for path, pack in files]

    async def main() -> list[ScenarioResult]:
        target = await Target.inprocess(seed=seed or 0)
        try:
            suite = await run_suite(items, target, seed=seed, concurrency=concurrency, timeline=timeline,
                                    skip_invariants=skip_invariants,
                                    on_result=progress.put if progress is not None else None)
        finally:
            await target.aclose()
        return suite.scenarios

    return asyncio.run(main())


def run_in_workers(items: list[LoadedScenario], *, workers: int, seed: int | None, concurrency: int,
                   timeline: bool, skip_invariants: frozenset[str] = frozenset(),
                   on_result: Callable[[ScenarioResult], None] | None = None) -> SuiteResult:
    import time

    started = time.monotonic()
    workers = max(1, min(workers, len(items)))
    buckets: list[list[tuple[str, str]]] = [[] for _ in range(workers)]
    for i, item in enumerate(items):
        buckets[i % workers].append((str(item.path), item.pack))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        progress = manager.Queue() if on_result else None
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set() or (progress is not None and not progress.empty()):
                try:
                    result = progress.get(timeout=0.1)
                except queue.Empty:
                    continue
                if on_result:
                    on_result(result)

        printer = threading.Thread(target=pump, daemon=True) if progress is not None else None
        if printer:
            printer.start()
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_worker, bucket, seed, concurrency, timeline, progress, skip_invariants)
                           for bucket in buckets]
                results = [r for f in futures for r in f.result()]
        finally:
            stop.set()
            if printer:
                printer.join(5)
    by_id = {r.id: r for r in results}
    suite = SuiteResult(target="in-process", seed=seed or 0, concurrency=concurrency, workers=workers,
                        scenarios=[by_id[i.id] for i in items])
    suite.duration_s = round(time.monotonic() - started, 3)
    return suite
