"""The sandbox clock: simulated time per tenant, with a scheduler of named jobs.

Business rules never read the wall clock. They read `clock.now()` and schedule work with
`clock.schedule(at, kind, payload)`; `advance(to)` runs whatever became due, in time order, with the
clock set to each job's due time while it runs. Jobs are data (kind + JSON payload), not closures, so
a tenant's pending work survives snapshot / restore.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JobRunner = Callable[[str, dict[str, Any]], None]

# 2026-01-01T00:00:00Z: a fixed default start keeps seeded runs reproducible.
DEFAULT_START = 1_767_225_600


class ClockError(ValueError):
    """Moving a clock backwards, or another misuse of simulated time."""


@dataclass(order=True)
class Job:
    at: float
    seq: int
    kind: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False, default_factory=dict)
    key: str | None = field(compare=False, default=None)
    cancelled: bool = field(compare=False, default=False)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "payload": self.payload, "key": self.key}


class SandboxClock:
    """Simulated time plus a priority queue of jobs due at simulated instants.

    `runner` executes a job by kind; the system that owns the clock supplies it. A job may schedule
    further jobs; those that fall due before the advance target run in the same advance.
    """

    def __init__(self, start: float = DEFAULT_START, runner: JobRunner | None = None) -> None:
        self._now = float(start)
        self._queue: list[Job] = []
        self._keys: dict[str, Job] = {}
        self._seq = itertools.count()
        self.runner: JobRunner | None = runner
        self.advancing = False

    def now(self) -> float:
        return self._now

    def now_int(self) -> int:
        return int(self._now)

    def schedule(self, at: float, kind: str, payload: dict[str, Any] | None = None, key: str | None = None) -> Job:
        """Queue a job. A `key` makes it replaceable: scheduling the same key again cancels the old job."""
        if key is not None:
            self.cancel(key)
        job = Job(at=float(at), seq=next(self._seq), kind=kind, payload=dict(payload or {}), key=key)
        heapq.heappush(self._queue, job)
        if key is not None:
            self._keys[key] = job
        return job

    def cancel(self, key: str) -> bool:
        job = self._keys.pop(key, None)
        if job is None:
            return False
        job.cancelled = True
        return True

    def pending(self) -> list[Job]:
        return sorted(j for j in self._queue if not j.cancelled)

    def next_due(self) -> float | None:
        for job in sorted(self._queue):
            if not job.cancelled:
                return job.at
        return None

    def advance(self, to: float) -> list[Job]:
        """Move time forward to `to`, running due jobs in (time, schedule order). Returns the jobs run."""
        to = float(to)
        if to < self._now:
            raise ClockError(f"cannot move the clock backwards from {self._now} to {to}")
        ran: list[Job] = []
        self.advancing = True
        try:
            while self._queue and self._queue[0].at <= to:
                job = heapq.heappop(self._queue)
                if job.cancelled:
                    continue
                if job.key is not None and self._keys.get(job.key) is job:
                    del self._keys[job.key]
                self._now = max(self._now, job.at)
                if self.runner is not None:
                    self.runner(job.kind, job.payload)
                ran.append(job)
            self._now = to
        finally:
            self.advancing = False
        return ran

    def advance_by(self, seconds: float) -> list[Job]:
        return self.advance(self._now + float(seconds))

    def dump(self) -> dict[str, Any]:
        return {"now": self._now, "jobs": [j.to_dict() for j in self.pending()]}

    def load(self, data: dict[str, Any]) -> None:
        self._now = float(data["now"])
        self._queue = []
        self._keys = {}
        for job in data.get("jobs", []):
            self.schedule(job["at"], job["kind"], job.get("payload") or {}, job.get("key"))
