"""Webhook intake: signature check, inbox dedupe, per-aggregate ordering, flows started by business key."""

from core.intake.envelopes import EnvelopeError, IntakeEvent, parse_event
from core.intake.router import FlowSpec, FlowStart, register_flow
from core.intake.signatures import SIGNATURE_HEADERS, SignatureError

__all__ = [
    "SIGNATURE_HEADERS",
    "EnvelopeError",
    "FlowSpec",
    "FlowStart",
    "IntakeEvent",
    "SignatureError",
    "parse_event",
    "register_flow",
]
