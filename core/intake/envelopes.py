"""Reading a verified webhook body into one vendor-neutral `IntakeEvent`: identity, type, aggregate, version.

Per system (the wire formats are documented in FIDELITY.md and each vendor's docs):
- billing (Stripe event): id `evt_...`, `type`; aggregate = `<object type>:<object id>` of `data.object`;
  version = `created` (unix seconds; Stripe gives no finer order, so equal times are never called stale).
- crm (Change Data Capture): id = `<transactionKey>:<sequenceNumber>` (unique across orgs; replayId is not);
  type `<Entity>ChangeEvent`; aggregate = `<Entity>:<first record id>`; version = commitNumber * 1000 +
  sequenceNumber (the commit's system change number grows with every commit).
- erp: `eventId`, `eventType`; aggregate = `<recordType>:<recordId>`; version = `timestamp` in ms.
- cs: `eventId`, `eventType`; aggregate = the company / CTA / plan it is about; version = the event's
  sequence number when the id carries one (`evt_0000000042`), else `occurredAt` in ms.
A body that lacks what its system always sends is malformed (EnvelopeError, 400).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["EnvelopeError", "IntakeEvent", "parse_event"]


class EnvelopeError(ValueError):
    pass


@dataclass(frozen=True)
class IntakeEvent:
    system: str
    event_id: str
    event_type: str
    aggregate_key: str | None
    aggregate_version: int | None
    occurred_at: datetime | None
    payload: dict[str, Any]

    @property
    def qualified_type(self) -> str:
        """`<system>:<event type>`: what flows subscribe to (event type names repeat across systems)."""
        return f"{self.system}:{self.event_type}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["occurred_at"] = self.occurred_at.isoformat() if self.occurred_at else None
        return out


def parse_event(system: str, body: bytes) -> IntakeEvent:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError("body must be a JSON object")
    parser = _PARSERS.get(system)
    if parser is None:
        raise EnvelopeError(f"unknown system {system!r}")
    try:
        event = parser(data)
    except EnvelopeError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, OSError) as exc:
        # OverflowError / OSError: a timestamp no clock can hold (`created: 1e30`).
        raise EnvelopeError(f"{system} event is missing or has a bad field: {exc!r}") from None
    _check_bounds(event)
    return event


# What the inbox and the ordering table can store: a signed body beyond these is malformed (a 400), not a
# database error for the sender to retry forever.
MAX_ID_CHARS, MAX_TYPE_CHARS, MAX_VERSION = 255, 128, 2**63 - 1


def _check_bounds(event: IntakeEvent) -> None:
    if len(event.event_id) > MAX_ID_CHARS:
        raise EnvelopeError(f"event id is longer than {MAX_ID_CHARS} characters")
    if len(event.event_type) > MAX_TYPE_CHARS:
        raise EnvelopeError(f"event type is longer than {MAX_TYPE_CHARS} characters")
    if event.aggregate_key is not None and len(event.aggregate_key) > MAX_ID_CHARS:
        raise EnvelopeError(f"the record the event is about has an id longer than {MAX_ID_CHARS} characters")
    if event.aggregate_version is not None and not -MAX_VERSION <= event.aggregate_version <= MAX_VERSION:
        raise EnvelopeError(f"event version {event.aggregate_version} is out of range (64-bit)")


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"{what} must be a non-empty string")
    return value


def _iso_ms(value: Any) -> tuple[int, datetime] | tuple[None, None]:
    if not isinstance(value, str) or not value:
        return None, None
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return int(at.timestamp() * 1000), at


def _billing(data: dict[str, Any]) -> IntakeEvent:
    obj = data["data"]["object"]
    if not isinstance(obj, dict):
        raise EnvelopeError("data.object must be an object")
    created = data.get("created")
    version = int(created) if isinstance(created, int | float) else None
    aggregate = f"{obj.get('object', 'object')}:{obj['id']}" if obj.get("id") else None
    return IntakeEvent("billing", _str(data.get("id"), "id"), _str(data.get("type"), "type"), aggregate, version,
                       datetime.fromtimestamp(version, UTC) if version is not None else None, data)


def _crm(data: dict[str, Any]) -> IntakeEvent:
    header = data["payload"]["ChangeEventHeader"]
    entity = _str(header.get("entityName"), "ChangeEventHeader.entityName")
    records = header.get("recordIds") or []
    tx_key, seq = header.get("transactionKey"), header.get("sequenceNumber")
    replay = (data.get("event") or {}).get("replayId")
    if tx_key and seq is not None:
        event_id = f"{tx_key}:{seq}"
    elif replay is not None:
        event_id = f"{entity}ChangeEvent-{replay}"
    else:
        raise EnvelopeError("change event has neither transactionKey+sequenceNumber nor replayId")
    commit = header.get("commitNumber")
    version = int(commit) * 1000 + int(seq or 0) if commit is not None else None
    ts = header.get("commitTimestamp")
    at = datetime.fromtimestamp(ts / 1000, UTC) if isinstance(ts, int | float) else None
    aggregate = f"{entity}:{records[0]}" if records else None
    return IntakeEvent("crm", event_id, f"{entity}ChangeEvent", aggregate, version, at, data)


def _erp(data: dict[str, Any]) -> IntakeEvent:
    ms, at = _iso_ms(data.get("timestamp"))
    record_type, record_id = data.get("recordType"), data.get("recordId")
    aggregate = f"{record_type}:{record_id}" if record_type and record_id else None
    return IntakeEvent("erp", _str(data.get("eventId"), "eventId"), _str(data.get("eventType"), "eventType"),
                       aggregate, ms, at, data)


_CS_SEQ = re.compile(r"^evt_(\d+)$")


def _cs(data: dict[str, Any]) -> IntakeEvent:
    event_id = _str(data.get("eventId"), "eventId")
    payload = data.get("data") or {}
    if not isinstance(payload, dict):
        raise EnvelopeError("data must be an object")
    aggregate = None
    for key, kind in (("company", "company"), ("cta", "cta"), ("plan", "successplan")):
        if isinstance(payload.get(key), dict) and payload[key].get("Gsid"):
            aggregate = f"{kind}:{payload[key]['Gsid']}"
            break
    else:
        if payload.get("planId"):
            aggregate = f"successplan:{payload['planId']}"
        elif payload.get("companyId"):
            aggregate = f"company:{payload['companyId']}"
    ms, at = _iso_ms(data.get("occurredAt"))
    seq = _CS_SEQ.match(event_id)
    return IntakeEvent("cs", event_id, _str(data.get("eventType"), "eventType"), aggregate,
                       int(seq.group(1)) if seq else ms, at, data)


_PARSERS: dict[str, Callable[[dict[str, Any]], IntakeEvent]] = {
    "billing": _billing, "crm": _crm, "erp": _erp, "cs": _cs,
}
