"""Intake as one service function: verify -> parse -> inbox -> ordering -> router. No HTTP here.

`receive(...)` answers an `IntakeResult` for every outcome the sender may see; it raises only
`SignatureError` (rejected: 400 / 401) and `EnvelopeError` (malformed: 400). Rejections are logged with
the system, the reason and the sender's address; they never reach the inbox, so an unverified event id
can't poison the dedupe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from core.intake import signatures
from core.intake.envelopes import IntakeEvent, parse_event
from core.intake.inbox import IGNORED, ROUTED, STALE
from core.intake.router import FlowStart

if TYPE_CHECKING:
    from core.runtime import Runtime

__all__ = ["IntakeResult", "receive"]

_log = logging.getLogger("lockstep.core.intake")


@dataclass(frozen=True)
class IntakeResult:
    status: Literal["accepted", "duplicate", "stale", "ignored"]
    system: str
    event_id: str
    event_type: str
    flows: list[FlowStart] = field(default_factory=list)
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "system": self.system, "event_id": self.event_id,
                "event_type": self.event_type, "flows": [f.to_dict() for f in self.flows], "detail": self.detail}


def receive(runtime: Runtime, system: str, headers: Mapping[str, str], body: bytes, *,
            now: float | None = None, peer: str | None = None) -> IntakeResult:
    settings = runtime.settings
    try:
        signatures.verify(system, headers, body, settings.webhook_secrets(system),
                          now=time.time() if now is None else now, tolerance_s=settings.signature_tolerance_s)
    except signatures.SignatureError as exc:
        _log.warning("webhook rejected: system=%s reason=%s peer=%s: %s", system, exc.reason, peer or "-", exc,
                     extra={"lockstep_system": system, "lockstep_reason": exc.reason})
        runtime.trace.add(system=system, action="webhook rejected", status=exc.reason, detail=str(exc))
        raise
    event = parse_event(system, body)
    return process(runtime, event)


def process(runtime: Runtime, event: IntakeEvent) -> IntakeResult:
    """Everything after verification (also what a redelivery sweep of unfinished events would call)."""
    # Claim and order in one transaction: one write-lock round instead of two (SQLite serializes writers).
    with runtime.engine.begin() as conn:
        claim = runtime.inbox.claim(event, conn=conn)
        if not claim.process:
            return IntakeResult("duplicate", event.system, event.event_id, event.event_type,
                                detail=f"already {claim.status}")
        decision = runtime.ordering.advance(event, conn=conn)
        if not decision.current:
            detail = (f"stale: {event.aggregate_key} version {event.aggregate_version} < "
                      f"{decision.stored_version} (event {decision.stored_event_id})")
            runtime.inbox.finish(event.system, event.event_id, STALE, detail=detail, conn=conn)
    if not decision.current:
        runtime.trace.add(system=event.system, action=f"webhook {event.event_type}", status="stale", detail=detail)
        _log.info("stale event ignored: %s %s", event.system, detail)
        return IntakeResult("stale", event.system, event.event_id, event.event_type, detail=detail)
    starts = runtime.router.start(event)  # an error here leaves the inbox row `received`: a redelivery retries
    status = ROUTED if starts else IGNORED
    absorbed = [f"{s.business_key} coalesced into {s.workflow_id}" for s in starts if s.coalesced]
    runtime.inbox.finish(event.system, event.event_id, status, flow_ids=[s.workflow_id for s in starts],
                         detail="; ".join(absorbed) or None)
    if not starts:
        return IntakeResult("ignored", event.system, event.event_id, event.event_type, detail="no flow wants it")
    return IntakeResult("accepted", event.system, event.event_id, event.event_type, flows=starts)
