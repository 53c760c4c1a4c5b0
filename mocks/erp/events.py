"""Change events the ERP mock emits, as signed webhooks through the tenant's kernel dispatcher.

NetSuite itself has no outbound webhooks (customers build them with SuiteScript or an iPaaS); the mock
sends one event per committed change so an integration can react, in this shape::

    {"eventId": "<uuid>", "eventType": "customer.created", "recordType": "customer", "recordId": "107",
     "externalId": "CRM-0061" | null, "timestamp": "2026-01-01T00:00:00Z" (tenant sandbox clock),
     "apiVersion": "2024.2", "changes": {"<field>": {"old": ..., "new": ...}}, "record": {...} | null}

`record` is the record after the change rendered in the endpoint's API version (or the tenant's
default), null for deletions. Event types: `<recordType>.created|updated|deleted` for every record type,
plus `invoice.overdue` (sandbox clock passed the due date with money still owed).

Signature: header `X-NetSuite-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` where the HMAC key is
the endpoint secret and the message is `"<t>." + raw body bytes`. Receivers should recompute it over
the raw body, compare in constant time, and reject timestamps older than 300 s. `verify_signature`
below is the reference check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from mocks.kernel import signing

__all__ = ["SIGNATURE_HEADER", "TOLERANCE_S", "EventSink", "event_id", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-NetSuite-Signature"
TOLERANCE_S = 300
_NAMESPACE = uuid.UUID("6f1c6a52-7a57-4f0e-9c65-4e6574537569")

Json = dict[str, Any]


sign = signing.signer(SIGNATURE_HEADER)


def verify_signature(body: bytes, header: str, secret: str, *, now: float | None = None,
                     tolerance: float = TOLERANCE_S) -> bool:
    return signing.verify(body, header, secret, now=now, tolerance=tolerance)


def event_id(tenant_key: str, seq: int) -> str:
    """Deterministic, and unique across tenants (a receiver may listen to several)."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_key}:{seq}"))


class EventSink:
    """Builds event bodies and hands them to the tenant's webhook dispatcher (the durable outbox)."""

    def __init__(self, tenant: Any, render: Callable[[str, Json, str], Json]) -> None:
        self.tenant = tenant
        self.render = render  # (record type, internal record, version) -> wire record
        self.seq = 0
        self.muted = False

    def emit(self, record_type: str, record_id: str, action: str, changes: Json, record: Json | None,
             timestamp: str, event_type: str | None = None) -> str | None:
        if self.muted:
            return None
        self.seq += 1
        eid = event_id(self.tenant.key, self.seq)
        etype = event_type or f"{record_type}.{action}"
        if not any(ep.matches(etype) for ep in self.tenant.webhooks.endpoints()):
            return eid  # nobody listens: skip building the body (the id is still used up, for determinism)
        # Snapshot now: the body is built per endpoint later, and the record may change meanwhile.
        snapshot = json.loads(json.dumps(record)) if record is not None else None
        base = {
            "eventId": eid,
            "eventType": etype,
            "recordType": record_type,
            "recordId": record_id,
            "externalId": snapshot.get("externalId") if snapshot is not None else _old(changes, "externalId"),
            "timestamp": timestamp,
            "changes": json.loads(json.dumps(changes)),
        }
        default_version = self.tenant.api_version
        render = self.render

        def body_for(endpoint: Any) -> bytes:
            version = endpoint.api_version or default_version
            rendered = render(record_type, snapshot, version) if snapshot is not None else None
            return json.dumps({**base, "apiVersion": version, "record": rendered}).encode()

        self.tenant.webhooks.enqueue(eid, etype, body_for)
        return eid


def _old(changes: Json, name: str) -> Any:
    entry = changes.get(name)
    return entry.get("old") if isinstance(entry, dict) else None
