"""What the CS mock emits: signed JSON webhooks through the kernel's outbox (tenant.webhooks).

Event body (one per endpoint; objects inside are rendered in the endpoint's API version, else the
tenant's):

    {"eventId": "evt_0000000001", "eventType": "company.health.changed", "occurredAt": "2026-01-01T00:00:00Z",
     "apiVersion": "v1", "data": {...}}

Event types:
- company.created / company.updated   data: {"company": {...}, "changedFields": [...]} (updated only)
- company.health.changed              data: {"companyId", "externalId", "oldScore", "newScore", "trend",
                                             "oldColor", "color"}
- cta.created / cta.closed            data: {"cta": {...}}
- milestone.completed / milestone.overdue
                                      data: {"planId", "companyId", "milestone": {...}}
- successplan.completed               data: {"plan": {...}}

Signature header (HMAC-SHA256 with the endpoint secret, hex):

    X-Gainsight-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

Receivers recompute the HMAC over the raw body bytes and should refuse timestamps older than 300 s.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mocks.kernel import signing

if TYPE_CHECKING:
    from mocks.kernel.webhooks import WebhookEndpoint

__all__ = ["SIGNATURE_HEADER", "EventSink", "sign", "verify"]

SIGNATURE_HEADER = "X-Gainsight-Signature"
TOLERANCE_S = 300


sign = signing.signer(SIGNATURE_HEADER)


def verify(body: bytes, header: str, secret: str, now: float, tolerance: float = TOLERANCE_S) -> bool:
    """What a receiver does; used by tests and handy for users' own receivers."""
    return signing.verify(body, header, secret, now=now, tolerance=tolerance)


class EventSink:
    """Builds event bodies and hands them to the tenant's webhook outbox (no-op when muted)."""

    def __init__(self, tenant: Any) -> None:
        self.tenant = tenant
        self.seq = 0
        self.muted = False

    def emit(self, event_type: str, data: dict[str, Any], *, objects: dict[str, tuple[str, dict[str, Any]]]
             | None = None, occurred_at: str) -> str | None:
        """`objects` are {key in data: (object type, internal record)}, rendered per endpoint version."""
        if self.muted:
            return None
        self.seq += 1
        event_id = f"evt_{self.seq:010d}"
        tenant = self.tenant
        if not tenant.webhooks.endpoints():
            return event_id
        versions = tenant.system.versions
        cache: dict[str, bytes] = {}

        def body(ep: WebhookEndpoint) -> bytes:
            version = ep.api_version if ep.api_version in versions else tenant.api_version
            if version not in cache:
                payload = dict(data)
                for key, (obj, record) in (objects or {}).items():
                    payload[key] = versions.render(obj, record, version)
                cache[version] = json.dumps({"eventId": event_id, "eventType": event_type,
                                             "occurredAt": occurred_at, "apiVersion": version,
                                             "data": payload}, separators=(",", ":")).encode()
            return cache[version]

        tenant.webhooks.enqueue(event_id, event_type, body)
        return event_id
