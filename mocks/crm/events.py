"""Change events in the shape of Salesforce Change Data Capture, delivered as signed webhooks.

Body: {"schema": <schema id>, "payload": {"ChangeEventHeader": {...}, <changed field values>},
       "event": {"replayId": N}}
Event type (the webhook endpoint filter): "<Object>ChangeEvent", e.g. "AccountChangeEvent" (the CDC channel
name). Signature header (a sandbox convention; Salesforce itself pushes CDC over the Pub/Sub API):

    X-Lockstep-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mocks.kernel import signing

if TYPE_CHECKING:
    from mocks.kernel.tenants import Tenant
    from mocks.kernel.webhooks import WebhookEndpoint

__all__ = ["SIGNATURE_HEADER", "ChangeEvents", "Transaction", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-Lockstep-Signature"
API_ORIGIN = "com/salesforce/api/rest/{version}"
UI_ORIGIN = ""  # changes made by a person in the UI carry no changeOrigin in CDC
FIRST_REPLAY_ID = 1


sign = signing.signer(SIGNATURE_HEADER)


def verify_signature(body: bytes, header: str, secret: str, *, tolerance: float = 300,
                     now: float | None = None) -> bool:
    """True when `header` signs `body` with `secret` and its timestamp is within `tolerance` seconds."""
    return signing.verify(body, header, secret, now=now, tolerance=tolerance)


class Transaction:
    """One commit: its events share a transactionKey and commitNumber and count sequenceNumber up."""

    def __init__(self, key: str, commit_number: int, origin: str) -> None:
        self.key = key
        self.commit_number = commit_number
        self.origin = origin
        self.sequence = 0


class ChangeEvents:
    def __init__(self, tenant: Tenant, render: Callable[[str, dict[str, Any], str], dict[str, Any]]) -> None:
        self.tenant = tenant
        self.render = render  # (object, field values, api version) -> wire field values
        self.replay_id = FIRST_REPLAY_ID - 1
        self.commit_number = 10_000_000_000
        self.enabled = True

    def begin(self, origin: str) -> Transaction:
        self.commit_number += 1
        digest = hashlib.sha1(f"{self.tenant.key}:{self.commit_number}".encode()).hexdigest()
        key = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        return Transaction(key, self.commit_number, origin)

    def emit(self, tx: Transaction, obj: str, change_type: str, record_ids: list[str],
             values: dict[str, Any], changed_fields: list[str] | None = None) -> int | None:
        """Queue one change event on the tenant's webhooks; returns its replayId (None when switched off)."""
        if not self.enabled:
            return None
        self.replay_id += 1
        tx.sequence += 1
        replay_id = self.replay_id
        if not self.tenant.webhooks.endpoints():
            return replay_id  # nobody listens: the event still takes its replayId, nothing to build
        header = {
            "entityName": obj,
            "recordIds": list(record_ids),
            "changeType": change_type,
            "changeOrigin": tx.origin,
            "transactionKey": tx.key,
            "sequenceNumber": tx.sequence,
            "commitTimestamp": int(self.tenant.clock.now() * 1000),
            "commitNumber": tx.commit_number,
            "commitUser": values.get("LastModifiedById") or "",
            "changedFields": list(changed_fields or []),
            "diffFields": [],
            "nulledFields": [k for k in (changed_fields or []) if values.get(k) is None],
        }
        default_version = self.tenant.api_version
        event_type = f"{obj}ChangeEvent"
        snapshot = dict(values)

        def body(endpoint: WebhookEndpoint) -> bytes:
            version = endpoint.api_version or default_version
            payload = {"ChangeEventHeader": header, **self.render(obj, snapshot, version)}
            return json.dumps({"schema": f"lockstep-{event_type}-v{version}", "payload": payload,
                               "event": {"replayId": replay_id}}).encode()

        self.tenant.webhooks.enqueue(f"{event_type}-{replay_id}", event_type, body)
        return replay_id

    def dump(self) -> dict[str, Any]:
        return {"replay_id": self.replay_id, "commit_number": self.commit_number}

    def load(self, data: dict[str, Any]) -> None:
        self.replay_id = int(data.get("replay_id", self.replay_id))
        self.commit_number = int(data.get("commit_number", self.commit_number))
