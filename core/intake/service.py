"""Intake as service functions: verify -> parse, then inbox -> ordering -> router. No HTTP here.

`verify_and_parse(...)` raises only `SignatureError` (rejected: 400 / 401) and `EnvelopeError` (malformed:
400); rejections are logged with the system, the reason and the sender's address, and never reach the inbox,
so an unverified event id can't poison the dedupe. `process` / `process_batch` answer an `IntakeResult` for
every outcome the sender may see (the receivers hand batches to them through the runtime's IntakeBatcher).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from core.intake import signatures
from core.intake.envelopes import IntakeEvent, parse_event
from core.intake.inbox import IGNORED, ROUTED, STALE
from core.intake.router import FlowStart

if TYPE_CHECKING:
    from core.runtime import Runtime

__all__ = ["IntakeResult", "process", "process_batch", "verify_and_parse"]

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


def verify_and_parse(runtime: Runtime, system: str, headers: Mapping[str, str], body: bytes, *,
                     now: float | None = None, peer: str | None = None) -> IntakeEvent:
    """The signature check, then the envelope: raises SignatureError / EnvelopeError (nothing is stored)."""
    settings = runtime.settings
    try:
        signatures.verify(system, headers, body, settings.webhook_secrets(system),
                          now=time.time() if now is None else now, tolerance_s=settings.signature_tolerance_s)
    except signatures.SignatureError as exc:
        _log.warning("webhook rejected: system=%s reason=%s peer=%s: %s", system, exc.reason, peer or "-", exc,
                     extra={"lockstep_system": system, "lockstep_reason": exc.reason})
        runtime.trace.add(system=system, action="webhook rejected", status=exc.reason, detail=str(exc))
        raise
    return parse_event(system, body)


def process(runtime: Runtime, event: IntakeEvent) -> IntakeResult:
    """Everything after verification (also what a redelivery sweep of unfinished events would call)."""
    outcome = process_batch(runtime, [event])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def process_batch(runtime: Runtime, events: Sequence[IntakeEvent]) -> list[IntakeResult | BaseException]:
    """`process` for several events at once, in their order, with two transactions on the core's database for
    the whole batch (claim + order, then the outcomes) instead of two per event: SQLite serializes writers, so
    under a burst this is what intake's throughput is made of. One outcome per event: its result, or the
    error that stopped it (its inbox row stays `received`, so the sender's redelivery retries it)."""
    try:
        return _process_batch(runtime, events)
    except Exception:
        if len(events) == 1:
            raise
        # One bad event must not fail its neighbours: process them one by one to find it.
        outcomes: list[IntakeResult | BaseException] = []
        for event in events:
            try:
                outcomes.extend(_process_batch(runtime, [event]))
            except Exception as exc:  # handed to that event's sender
                outcomes.append(exc)
        return outcomes


def _process_batch(runtime: Runtime, events: Sequence[IntakeEvent]) -> list[IntakeResult | BaseException]:
    outcomes: list[IntakeResult | BaseException | None] = [None] * len(events)
    current: list[int] = []
    stale: list[tuple[IntakeEvent, str]] = []
    # Claim and order in one transaction: one write-lock round for the batch (SQLite serializes writers).
    seen: set[tuple[str, str]] = set()
    with runtime.engine.begin() as conn:
        for i, event in enumerate(events):
            claim = runtime.inbox.claim(event, conn=conn)  # counts every delivery, repeats included
            if (event.system, event.event_id) in seen:  # delivered twice into one batch: the first one decides
                outcomes[i] = IntakeResult("duplicate", event.system, event.event_id, event.event_type,
                                           detail="delivered again while its first delivery was processed")
                continue
            seen.add((event.system, event.event_id))
            if not claim.process:
                outcomes[i] = IntakeResult("duplicate", event.system, event.event_id, event.event_type,
                                           detail=f"already {claim.status}")
                continue
            decision = runtime.ordering.advance(event, conn=conn)
            if decision.current:
                current.append(i)
                continue
            detail = (f"stale: {event.aggregate_key} version {event.aggregate_version} < "
                      f"{decision.stored_version} (event {decision.stored_event_id})")
            runtime.inbox.finish(event.system, event.event_id, STALE, detail=detail, conn=conn)
            outcomes[i] = IntakeResult("stale", event.system, event.event_id, event.event_type, detail=detail)
            stale.append((event, detail))
    for event, detail in stale:
        runtime.trace.add(system=event.system, action=f"webhook {event.event_type}", status="stale", detail=detail)
        _log.info("stale event ignored: %s %s", event.system, detail)
    routed: list[tuple[IntakeEvent, list[FlowStart]]] = []
    for i in current:
        event = events[i]
        try:
            starts = runtime.router.start(event)
        except Exception as exc:  # the inbox row stays `received`: a redelivery retries
            outcomes[i] = exc
            continue
        routed.append((event, starts))
        if starts:
            outcomes[i] = IntakeResult("accepted", event.system, event.event_id, event.event_type, flows=starts)
        else:
            outcomes[i] = IntakeResult("ignored", event.system, event.event_id, event.event_type,
                                       detail="no flow wants it")
    if routed:
        with runtime.engine.begin() as conn:
            for event, starts in routed:
                absorbed = [f"{s.business_key} coalesced into {s.workflow_id}" for s in starts if s.coalesced]
                runtime.inbox.finish(event.system, event.event_id, ROUTED if starts else IGNORED,
                                     flow_ids=[s.workflow_id for s in starts], detail="; ".join(absorbed) or None,
                                     conn=conn)
    return [o for o in outcomes if o is not None]
