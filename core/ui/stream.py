"""The dashboard's live feed: the core's trace log, intake inbox, flows and DLQ as server-sent events.

One poll loop per connected page reads only what is new since its cursors (the trace log's `seq`, the
inbox's `received_at`), plus the newest flows and DLQ entries, whose changes it diffs against what it
already sent. Reads run on a worker thread (the stores are synchronous). The event id is the trace cursor,
so a reconnecting EventSource (`Last-Event-ID`) resumes without gaps or repeats in the timeline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.requests import Request

from core.intake.receivers import RuntimeDep
from core.intake.router import WORKFLOW_PREFIX, flow_specs
from core.runtime import Runtime
from core.settings import CoreSettings

__all__ = ["FeedCursor", "poll_once", "stream_router"]

BACKLOG = 300  # trace steps a fresh page gets, so the timeline is not empty on load
FLOW_WINDOW = 100  # newest flows watched for status changes
HEARTBEAT_S = 15.0  # an SSE comment keeps proxies from closing an idle stream
TRACE_BATCH = 2000  # trace steps per poll at most (a burst is sent over a few polls)


@dataclass
class FeedCursor:
    """What one page has been sent so far."""

    trace_seq: int = 0
    inbox_since: datetime | None = None
    inbox_seen: dict[tuple[str, str], str] = field(default_factory=dict)
    flows_seen: dict[str, tuple[str, Any]] = field(default_factory=dict)
    dlq_seen: dict[int, tuple[str, int]] = field(default_factory=dict)


def _flow_view(status: Any) -> dict[str, Any]:
    from core.api import flow_summary  # the same shape as GET /flows

    return flow_summary(status)


def poll_once(runtime: Runtime, cursor: FeedCursor) -> list[tuple[str, dict[str, Any]]]:
    """Everything new since `cursor` as (event name, data), advancing the cursor. Blocking: call off-loop."""
    from dbos import DBOS

    out: list[tuple[str, dict[str, Any]]] = []
    # Webhooks first: in the timeline an event comes before the flow it starts.
    inbox = runtime.tables.inbox
    query = select(inbox.c.system, inbox.c.event_id, inbox.c.event_type, inbox.c.aggregate_key,
                   inbox.c.received_at, inbox.c.status, inbox.c.flow_ids, inbox.c.detail)
    if cursor.inbox_since is not None:
        query = query.where(inbox.c.received_at >= cursor.inbox_since)
    with runtime.engine.connect() as conn:  # type: ignore[union-attr]
        rows = conn.execute(query.order_by(inbox.c.received_at.desc()).limit(200)).mappings().all()
    for row in reversed(rows):
        key = (row["system"], row["event_id"])
        if cursor.inbox_seen.get(key) == row["status"]:
            continue
        cursor.inbox_seen[key] = row["status"]
        out.append(("event", {"system": row["system"], "event_id": row["event_id"], "type": row["event_type"],
                              "key": row["aggregate_key"], "status": row["status"],
                              "flow_ids": json.loads(row["flow_ids"] or "[]"), "detail": row["detail"],
                              "at": row["received_at"].isoformat()}))
    if rows:
        cursor.inbox_since = max(cursor.inbox_since or rows[0]["received_at"], rows[0]["received_at"])
    if len(cursor.inbox_seen) > 5000:  # keep the dedupe memory bounded; the since-cursor does the rest
        cursor.inbox_seen = dict(list(cursor.inbox_seen.items())[-1000:])

    # Flows are read before the trace but sent after it: every call a finished flow made was logged before it
    # finished, so the trace read that follows has them all, and a page never sees a flow's SUCCESS before
    # the calls that led to it.
    names = [WORKFLOW_PREFIX + n for n in sorted(flow_specs())]
    changed: list[tuple[str, dict[str, Any]]] = []
    if names:
        for status in reversed(DBOS.list_workflows(name=names, sort_desc=True, limit=FLOW_WINDOW,
                                                   load_input=False, load_output=False)):
            mark = (status.status, status.updated_at)
            if cursor.flows_seen.get(status.workflow_id) != mark:
                cursor.flows_seen[status.workflow_id] = mark
                changed.append(("flow", _flow_view(status)))

    steps = runtime.trace.since(cursor.trace_seq, limit=TRACE_BATCH)
    for step in steps:
        cursor.trace_seq = step.seq
        out.append(("trace", step.to_dict()))
    if len(steps) == TRACE_BATCH:  # more trace to come: those flow changes go out after it, next poll
        for _, flow in changed:
            cursor.flows_seen.pop(flow["workflow_id"], None)
        changed = []
    out.extend(changed)

    for entry in runtime.dlq.list(limit=100):
        mark = (entry.status, entry.attempts)
        if cursor.dlq_seen.get(entry.id) != mark:
            cursor.dlq_seen[entry.id] = mark
            out.append(("dlq", entry.to_dict()))
    return out


def _sse(event: str, data: dict[str, Any], event_id: int) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def stream_router(settings: CoreSettings) -> APIRouter:
    router = APIRouter()

    @router.get("/stream", summary="Live feed (server-sent events): trace, event, flow, dlq",
                response_class=StreamingResponse)
    async def stream(
        request: Request,
        runtime: RuntimeDep,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        backlog: Annotated[int, Query(ge=0, le=5000, description="trace steps to replay on connect")] = BACKLOG,
    ) -> StreamingResponse:
        cursor = FeedCursor()
        if last_event_id is not None and last_event_id.isdigit():
            cursor.trace_seq = int(last_event_id)
        else:
            cursor.trace_seq = max(0, await asyncio.to_thread(runtime.trace.last_seq) - backlog)

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            idle = 0.0
            while not await request.is_disconnected():
                batch = await asyncio.to_thread(poll_once, runtime, cursor)
                for name, data in batch:
                    yield _sse(name, data, cursor.trace_seq)
                idle = 0.0 if batch else idle + settings.ui_poll_interval_s
                if idle >= HEARTBEAT_S:
                    idle = 0.0
                    yield b": keep-alive\n\n"
                await asyncio.sleep(settings.ui_poll_interval_s)  # the feed's poll interval

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router
