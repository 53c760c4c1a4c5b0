"""Canonical ids: an entity prefix plus a ULID-like, time-sortable, 26-character Crockford base32 body.

Ids come from an injectable `IdSource` (clock + randomness), so seeded runs mint the same ids in the same
order, while the default source (wall clock + OS randomness) is safe across processes sharing one store.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NewType

CanonicalId = NewType("CanonicalId", str)

# One prefix per canonical entity. Deliberately unlike any vendor prefix (Stripe's `sub_`, `in_`, ...),
# so a canonical id is never mistaken for a native one in logs or metadata.
PREFIXES: dict[str, str] = {
    "account": "acc",
    "contact": "con",
    "opportunity": "opp",
    "order": "ord",
    "order_line": "oln",
    "contract": "ctr",
    "subscription": "sbs",
    "subscription_item": "sbi",
    "invoice": "inv",
    "invoice_line": "ivl",
    "payment": "pay",
    "entitlement": "ent",
    "health_score": "hsc",
    "onboarding_milestone": "obm",
}
ENTITY_BY_PREFIX: dict[str, str] = {prefix: entity for entity, prefix in PREFIXES.items()}

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_BODY = r"[0-9A-HJKMNP-TV-Z]{26}"
ID_PATTERN = re.compile(rf"^(?P<prefix>[a-z]{{3}})_(?P<body>{_BODY})$")
_RANDOM_BITS = 80
_MAX_TIME_MS = (1 << 48) - 1


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def id_pattern(entity: str) -> str:
    """Regex (for pydantic `pattern=`) matching canonical ids of one entity."""
    return rf"^{PREFIXES[entity]}_{_BODY}$"


def entity_of(canonical_id: str) -> str:
    """The entity a canonical id belongs to; ValueError when it is not a canonical id at all."""
    match = ID_PATTERN.match(canonical_id)
    if match is None or match["prefix"] not in ENTITY_BY_PREFIX:
        raise ValueError(f"not a canonical id: {canonical_id!r} (expected '<prefix>_<26 base32 chars>')")
    return ENTITY_BY_PREFIX[match["prefix"]]


class IdSource:
    """Mints sortable canonical ids from a clock and a source of random bits.

    Within one millisecond the random part is incremented (ULID "monotonic" mode), so ids minted by one
    source sort in minting order. Thread-safe.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        randbits: Callable[[int], int] | None = None,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._randbits = randbits or secrets.randbits
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    @classmethod
    def seeded(cls, seed: int, start: datetime | None = None) -> IdSource:
        """A deterministic source: a private RNG and a clock that ticks one millisecond per id."""
        rng = random.Random(seed)
        tick = _StepClock(start or datetime(2026, 1, 1, tzinfo=UTC))
        return cls(clock=tick, randbits=rng.getrandbits)

    def new(self, entity: str) -> CanonicalId:
        if entity not in PREFIXES:
            raise ValueError(f"unknown entity {entity!r}; known: {', '.join(sorted(PREFIXES))}")
        with self._lock:
            now_ms = int(self._clock().timestamp() * 1000)
            if not 0 <= now_ms <= _MAX_TIME_MS:
                raise ValueError(f"clock value out of ULID range: {now_ms} ms")
            if now_ms <= self._last_ms:
                # Same (or a backwards) millisecond: keep order by counting up from the last random part.
                now_ms = self._last_ms
                self._last_rand = (self._last_rand + 1) % (1 << _RANDOM_BITS)
            else:
                self._last_ms = now_ms
                self._last_rand = self._randbits(_RANDOM_BITS)
            body = _encode(now_ms, 10) + _encode(self._last_rand, 16)
        return CanonicalId(f"{PREFIXES[entity]}_{body}")


class _StepClock:
    """A clock for seeded sources: each reading is one millisecond after the previous one."""

    def __init__(self, start: datetime) -> None:
        self._next = start

    def __call__(self) -> datetime:
        current = self._next
        self._next = current + timedelta(milliseconds=1)
        return current
