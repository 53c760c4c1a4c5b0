"""Who got the 429s: polls each mock's request journal (core-wired tenant) during a run and classes every 429.

The journal keeps the newest 5,000 requests per tenant, so it is read as a stream: each poll takes the newest
sequence number, then every entry after the last one seen (counted per identity; the 429s kept apart). A
poll that finds more than 5,000 new requests may have missed some (counted in `gaps`, so a figure never
looks cleaner than it was).

Identity: the core sends its correlation id and a W3C `traceparent` on every call; the load's users send
`X-Correlation-Id: load-...` and no traceparent; anything else (the runner's own set-up and checks) is `other`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.plan import LOAD_CORRELATION_PREFIX

JOURNAL_CAP = 5000
# Record ids in a path (Stripe `in_...`, Salesforce 15/18 chars, NetSuite numbers, Gainsight ids) -> [id],
# so findings group by endpoint.
_ID_SEGMENT = re.compile(r"^(?:[a-z]{2,6}_[A-Za-z0-9]{6,}|\d+|[A-Za-z0-9]{15}|[A-Za-z0-9]{18}|[0-9a-f-]{20,}|eid:.+)$")


def endpoint_of(path: str) -> str:
    return "/".join("[id]" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


def identity(entry: dict[str, Any]) -> str:
    corr = entry.get("correlation_id") or ""
    if corr.startswith(LOAD_CORRELATION_PREFIX):
        return "load"
    if entry.get("traceparent"):
        return "core"
    return "other"


@dataclass
class ThrottleTally:
    by_system: dict[str, Counter[str]] = field(default_factory=dict)  # system -> identity -> 429s
    requests: dict[str, Counter[str]] = field(default_factory=dict)  # system -> identity -> requests
    core_paths: Counter[str] = field(default_factory=Counter)  # "system METHOD path" of the core's 429s
    core_examples: list[dict[str, Any]] = field(default_factory=list)
    gaps: int = 0

    def total(self, who: str) -> int:
        return sum(c[who] for c in self.by_system.values())

    def calls(self, who: str) -> int:
        return sum(c[who] for c in self.requests.values())

    def core_429_ratio(self) -> float:
        return round(self.total("core") / self.calls("core"), 5) if self.calls("core") else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"by_system": {s: dict(c) for s, c in self.by_system.items()},
                "requests_by_system": {s: dict(c) for s, c in self.requests.items()},
                "core_requests": self.calls("core"), "core_429_ratio": self.core_429_ratio(),
                "core_429s": self.total("core"), "load_429s_in_journal": self.total("load"),
                "other_429s": self.total("other"), "core_paths": dict(self.core_paths.most_common(10)),
                "core_examples": self.core_examples[:5], "journal_gaps": self.gaps}


class JournalWatch:
    def __init__(self, controls: dict[str, httpx.AsyncClient], interval_s: float = 0.5) -> None:
        self.controls = controls  # system -> control client based at /_sandbox/tenants/<key>
        self.interval_s = interval_s
        self.tally = ThrottleTally(by_system={s: Counter() for s in controls},
                                   requests={s: Counter() for s in controls})
        self.cursor: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for system in self.controls:  # only what happens from now on
            self.cursor[system] = await self._newest(system)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> ThrottleTally:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.poll()
        return self.tally

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self.poll()
            await asyncio.sleep(self.interval_s)

    async def _newest(self, system: str) -> int:
        rows = (await self.controls[system].get("/journal", params={"limit": 1})).raise_for_status().json()
        return int(rows[-1]["seq"]) if rows else 0

    async def poll(self) -> None:
        for system, control in self.controls.items():
            newest = await self._newest(system)
            last = self.cursor[system]
            if newest - last > JOURNAL_CAP:
                self.tally.gaps += newest - last - JOURNAL_CAP
            rows = (await control.get("/journal", params={"since_seq": last, "limit": JOURNAL_CAP})
                    ).raise_for_status().json()
            for row in rows:
                if row["seq"] > newest:
                    continue
                who = identity(row)
                self.tally.requests[system][who] += 1
                if row.get("status") != 429:
                    continue
                self.tally.by_system[system][who] += 1
                if who == "core":
                    self.tally.core_paths[f"{system} {row['method']} {endpoint_of(row['path'])}"] += 1
                    if len(self.tally.core_examples) < 5:
                        self.tally.core_examples.append({
                            "system": system, "method": row["method"], "path": row["path"],
                            "correlation_id": row.get("correlation_id"), "body": str(row.get("response_body"))[:200]})
            self.cursor[system] = newest
