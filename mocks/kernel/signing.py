"""The webhook signature scheme the mocks share: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.

Stripe signs this way (`Stripe-Signature`); the other mocks reuse it under their own header names, so one
receiver-side check covers them all. Timestamps are wall-clock seconds (receivers judge freshness with
their own clocks), passed in by the dispatcher.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

DEFAULT_TOLERANCE_S = 300


def digest(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signer(header: str) -> Callable[[bytes, str, int], dict[str, str]]:
    """A `MockSystem.sign` that puts the signature under `header`."""

    def sign(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
        return {header: f"t={timestamp},v1={digest(body, secret, timestamp)}"}

    return sign


def verify(body: bytes, header_value: str, secret: str, *, now: float | None = None,
           tolerance: float = DEFAULT_TOLERANCE_S) -> bool:
    """What a receiver does: the signature matches `body` and its timestamp is within `tolerance` seconds."""
    try:
        parts = dict(item.split("=", 1) for item in header_value.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(digest(body, secret, timestamp), parts.get("v1", ""))
