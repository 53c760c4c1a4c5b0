"""Stripe's `Idempotency-Key`: the first result of a POST is stored and replayed for the same key.

Per tenant, bounded (oldest keys go first) and kept 24 hours on the tenant's sandbox clock. The stored
result is the status and the response body exactly as first sent (errors included), so a replay is
byte-identical and carries `Idempotent-Replayed: true`. The same key with different parameters (or on
another endpoint) is a 400 `idempotency_error`. Requests refused before the endpoint ran (bad parameters)
store nothing, as on Stripe. The table is part of the tenant's state dump.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from mocks.billing.errors import IDEMPOTENCY_ERROR, BillingError

__all__ = ["KEY_TTL_S", "MAX_KEY_LENGTH", "IdempotencyStore", "Stored", "fingerprint"]

KEY_TTL_S = 24 * 3600
MAX_KEY_LENGTH = 255
MAX_KEYS = 10_000


def fingerprint(method: str, path: str, raw_body: bytes) -> str:
    """Order-insensitive digest of the request: the same parameters in another order are the same request."""
    try:
        pairs = sorted(parse_qsl(raw_body.decode("utf-8", "replace"), keep_blank_values=True))
    except ValueError:
        pairs = [("", raw_body.hex())]
    digest = hashlib.sha256(f"{method.upper()} {path}\n".encode())
    for key, value in pairs:
        digest.update(key.encode())
        digest.update(b"\x00")
        digest.update(value.encode())
        digest.update(b"\x01")
    return digest.hexdigest()


@dataclass
class Stored:
    fingerprint: str
    status: int
    body: bytes
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "status": self.status, "body": self.body.decode("utf-8"),
                "at": self.at}


class IdempotencyStore:
    def __init__(self, now: Callable[[], float], *, max_keys: int = MAX_KEYS, ttl_s: float = KEY_TTL_S) -> None:
        self.now = now
        self.max_keys = max_keys
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, Stored] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def check_key(key: str) -> None:
        if len(key) > MAX_KEY_LENGTH:
            raise BillingError(f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters long.",
                               status=400, type="invalid_request_error")

    def lookup(self, key: str, fp: str) -> Stored | None:
        """The stored result for `key`, None if there is none; raises idempotency_error on a mismatch."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.now() - entry.at >= self.ttl_s:
            del self._entries[key]
            return None
        if entry.fingerprint != fp:
            raise BillingError(
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                status=400, type=IDEMPOTENCY_ERROR)
        return entry

    def store(self, key: str, fp: str, status: int, body: bytes) -> None:
        self._entries[key] = Stored(fp, status, body, self.now())
        self._entries.move_to_end(key)
        self._prune()

    def _prune(self) -> None:
        cutoff = self.now() - self.ttl_s
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if len(self._entries) > self.max_keys or oldest.at <= cutoff:
                del self._entries[oldest_key]
            else:
                break

    def dump(self) -> dict[str, Any]:
        return {key: entry.to_dict() for key, entry in self._entries.items()}

    def load(self, data: dict[str, Any]) -> None:
        self._entries = OrderedDict(
            (key, Stored(e["fingerprint"], int(e["status"]), e["body"].encode("utf-8"), float(e["at"])))
            for key, e in (data or {}).items()
        )
