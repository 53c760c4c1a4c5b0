"""Group commit for intake: one thread takes every verified event waiting and processes them as one batch.

Webhooks arrive several at a time (vendors deliver concurrently). Processed one per thread, each delivery
paid for two write transactions of its own and queued on SQLite's single write lock, whose waiters sleep in
millisecond steps. One writer thread instead drains whatever is waiting (up to `max_batch`) and hands it to
`process_batch`: two transactions per batch, no lock contention, and the batch grows with the load. The
receivers await the outcome of their own event; nothing is acknowledged before its batch committed.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Generic, TypeVar

from core.intake.envelopes import IntakeEvent

__all__ = ["IntakeBatcher"]

_log = logging.getLogger("lockstep.core.intake.batcher")
T = TypeVar("T")
_STOP = object()


class IntakeBatcher(Generic[T]):
    """`await batcher.submit(event)` -> the outcome `process(events)` gave that event (or its exception)."""

    def __init__(self, process: Callable[[Sequence[IntakeEvent]], list[T | BaseException]], *,
                 max_batch: int = 64, name: str = "lockstep-intake") -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._process = process
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.events = 0  # events processed so far

    async def submit(self, event: IntakeEvent) -> T:
        return await asyncio.wrap_future(self.submit_future(event))

    def submit_future(self, event: IntakeEvent) -> Future[T]:
        if self._closed:
            raise RuntimeError("intake is shut down")
        future: Future[T] = Future()
        self._queue.put((event, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Process what was submitted, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            stop = item is _STOP
            batch: list[tuple[IntakeEvent, Future[T]]] = [] if stop else [item]  # type: ignore[list-item]
            while not stop and len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            if batch:
                self._handle(batch)
            if stop:
                return

    def _handle(self, batch: list[tuple[IntakeEvent, Future[T]]]) -> None:
        try:
            outcomes = self._process([event for event, _ in batch])
        except BaseException as exc:  # every sender of the batch hears why (and redelivers)
            _log.exception("intake batch of %d failed", len(batch))
            outcomes = [exc] * len(batch)
        self.events += len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            try:
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            except InvalidStateError:  # the sender gave up (disconnected): it redelivers, and finds it done
                pass
