"""Webhook signature checks, the way each vendor signs (see FIDELITY.md and the vendors' docs).

Every system here signs the same scheme, under its own header:

    <header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>[,v1=<another>...]

billing `Stripe-Signature` (Stripe's own scheme), CRM `X-Lockstep-Signature` (the sandbox's CDC-over-webhook
convention), ERP `X-NetSuite-Signature`, CS `X-Gainsight-Signature`. Checks, in order: the header is present
(else `missing`), parses (`malformed`), its timestamp is within the tolerance of now in either direction
(`stale`), and one of its v1 signatures matches one of the accepted secrets (`mismatch`), compared in
constant time. The HMAC covers the raw bytes, so the body must not be re-serialized before the check.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["SIGNATURE_HEADERS", "SignatureError", "VerifiedSignature", "sign", "verify"]

SIGNATURE_HEADERS: dict[str, str] = {
    "billing": "Stripe-Signature",
    "crm": "X-Lockstep-Signature",
    "erp": "X-NetSuite-Signature",
    "cs": "X-Gainsight-Signature",
}
DEFAULT_TOLERANCE_S = 300


class SignatureError(Exception):
    """A refused delivery. `reason`: missing | malformed | stale | mismatch; `status`: the HTTP answer."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        # Unsigned or unparseable: the request is malformed (400). Signed but wrong or old: unauthorized (401).
        self.status = 400 if reason in ("missing", "malformed") else 401


@dataclass(frozen=True)
class VerifiedSignature:
    header: str
    timestamp: int


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(system: str, body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The header a sender would attach (for tests and tools; the core itself only verifies)."""
    return {SIGNATURE_HEADERS[system]: f"t={timestamp},v1={_mac(secret, timestamp, body)}"}


def verify(system: str, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], *, now: float,
           tolerance_s: int = DEFAULT_TOLERANCE_S) -> VerifiedSignature:
    """Raise SignatureError unless `body` carries a valid, fresh signature for `system`."""
    header = SIGNATURE_HEADERS[system]
    raw = _get(headers, header)
    if raw is None or not raw.strip():
        raise SignatureError("missing", f"unsigned delivery: no {header} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in raw.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed", f"{header}: {item.strip()!r} is not key=value")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed", f"{header}: timestamp {value!r} is not an integer") from None
        elif key == "v1":
            candidates.append(value.strip().lower())
        # other schemes (Stripe's v0 test signatures) are ignored, as Stripe's libraries do
    if timestamp is None or not candidates:
        raise SignatureError("malformed", f"{header} needs t=<unix seconds> and at least one v1=<hex>")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("stale", f"{header} timestamp {timestamp} is {int(now - timestamp)} s from now "
                                      f"(tolerance {tolerance_s} s)")
    if not secrets:
        raise SignatureError("mismatch", f"no webhook secret configured for {system}")
    expected = [_mac(secret, timestamp, body) for secret in secrets]
    # Every pair compared, no early exit: the time taken says nothing about which one matched.
    matched = False
    for want in expected:
        for got in candidates:
            matched |= hmac.compare_digest(want, got)
    if not matched:
        raise SignatureError("mismatch", f"{header} does not match the body (forged, or signed with another secret)")
    return VerifiedSignature(header=header, timestamp=timestamp)


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; Starlette / httpx headers are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value
