"""Shared state-based work: concurrent callers for one key share a run that started after they asked.

Some steps write a value recomputed from a system's CURRENT state (the CRM's receivables balance is the sum
over the customer's open billing invoices now). In a month-end burst, dozens of invoice flows of one customer
ask for the same recomputation at the same moment; each would list the customer's open invoices and write
the CRM account again, with the same result. `SharedRuns.run(key, fn)` lets them share: a caller gets the
outcome of a run of `fn` that STARTED AFTER the caller asked (so it saw every change the caller's event
reflects), either one already waiting to start or one it starts itself. Runs of one key never overlap. At
most two runs per key are in flight (one running, one waiting), whatever the number of callers.

Per event loop (an asyncio lock belongs to its loop); callers of one key on different loops don't share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Shared", "SharedRuns"]


@dataclass
class Shared:
    """What a caller got: the value, and whether another caller's run produced it."""

    value: Any
    shared: bool
    run: int  # the run's number for its key (1, 2, ...)


@dataclass
class _Key:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started: int = 0  # runs started so far
    done: int = 0  # the number of the last finished run
    outcome: tuple[bool, Any] = (True, None)  # (ok, value or exception) of run `done`
    callers: int = 0


class SharedRuns:
    def __init__(self) -> None:
        self._keys: dict[tuple[int, Hashable], _Key] = {}
        self.runs = 0  # runs of fn, all keys (for tests and figures)
        self.calls = 0

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[Any]]) -> Shared:
        slot_key = (id(asyncio.get_running_loop()), key)
        slot = self._keys.get(slot_key)
        if slot is None:
            slot = self._keys[slot_key] = _Key()
        slot.callers += 1
        self.calls += 1
        wanted = slot.started + 1  # a run numbered this or later began after now
        try:
            async with slot.lock:
                if slot.done >= wanted:
                    ok, value = slot.outcome
                    if not ok:
                        raise value
                    return Shared(value, shared=True, run=slot.done)
                slot.started += 1
                number = slot.started
                self.runs += 1
                try:
                    value = await fn()
                except BaseException as exc:
                    slot.done, slot.outcome = number, (False, exc)
                    raise
                slot.done, slot.outcome = number, (True, value)
                return Shared(value, shared=False, run=number)
        finally:
            slot.callers -= 1
            if slot.callers == 0:
                self._keys.pop(slot_key, None)
