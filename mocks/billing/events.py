"""The event log: every state change becomes a Stripe `event`, published and kept for GET /v1/events.

Events are stamped with the tenant clock (Stripe stamps test-clock events with real time, so pollers
using `created[gte]=<now>` see them) and carry a deep copy of the object at that moment.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from mocks.billing.errors import missing
from mocks.billing.ids import new_id
from mocks.kernel.data import clone


class EventLog:
    def __init__(self, rng: random.Random, now: Callable[[], int],
                 publish: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._rng = rng
        self._now = now
        self.publish = publish
        self.events: list[dict[str, Any]] = []
        self._by_id: dict[str, dict[str, Any]] = {}

    def emit(self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"object": clone(obj)}
        if previous is not None:
            data["previous_attributes"] = clone(previous)
        event = {
            "id": new_id(self._rng, "event"),
            "object": "event",
            "api_version": None,
            "created": self._now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.events.append(event)
        self._by_id[event["id"]] = event
        if self.publish is not None:
            self.publish(clone(event))
        return event

    def get(self, event_id: str) -> dict[str, Any]:
        event = self._by_id.get(event_id)
        if event is None:
            raise missing("event", event_id)
        return clone(event)

    def list(
        self,
        type: str | None = None,
        types: list[str] | None = None,
        created_gte: int | None = None,
        created_gt: int | None = None,
        created_lte: int | None = None,
        created_lt: int | None = None,
        *,
        copy: bool = True,
    ) -> list[dict[str, Any]]:
        """Newest first; `type` may end in `.*` (Stripe's wildcard, e.g. `invoice.*`). `copy=False`: the
        stored events themselves, for a caller that only reads them (the API pages, then renders: copying a
        month-end's tens of thousands of events for each page of 100 made paging through them quadratic)."""
        out = []
        for event in reversed(self.events):
            if type is not None and not _type_matches(event["type"], type):
                continue
            if types and not any(_type_matches(event["type"], t) for t in types):
                continue
            created = event["created"]
            if created_gte is not None and created < created_gte:
                continue
            if created_gt is not None and created <= created_gt:
                continue
            if created_lte is not None and created > created_lte:
                continue
            if created_lt is not None and created >= created_lt:
                continue
            out.append(clone(event) if copy else event)
        return out

    def dump(self) -> list[dict[str, Any]]:
        return clone(self.events)

    def load(self, events: list[dict[str, Any]]) -> None:
        self.events = clone(events)
        self._by_id = {e["id"]: e for e in self.events}


def _type_matches(actual: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return actual.startswith(pattern[:-1])
    return actual == pattern
