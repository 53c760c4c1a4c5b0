"""The request journal: every request and response of a tenant, bounded, queryable.

Entries are plain dicts so the control API can return them as they are. Bodies are kept up to a cap
so a burst of large payloads cannot grow memory without bound.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from typing import Any

BODY_CAP = 4096


def clip(body: bytes) -> str:
    text = body[:BODY_CAP].decode("utf-8", errors="replace")
    return text + "...(truncated)" if len(body) > BODY_CAP else text


class Journal:
    def __init__(self, maxlen: int = 5000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry["seq"] = next(self._seq)
        self._entries.append(entry)
        return entry

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def query(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        correlation_id: str | None = None,
        fault: bool | None = None,
        since_seq: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest last; `path` matches as a prefix."""
        found: Iterable[dict[str, Any]] = (e for e in self._entries if e["seq"] > since_seq)
        if method:
            found = (e for e in found if e["method"] == method.upper())
        if path:
            found = (e for e in found if e["path"].startswith(path))
        if status is not None:
            found = (e for e in found if e.get("status") == status)
        if correlation_id:
            found = (e for e in found if e.get("correlation_id") == correlation_id)
        if fault is not None:
            found = (e for e in found if bool(e.get("fault")) == fault)
        result = list(found)
        return result[-limit:] if limit else result
