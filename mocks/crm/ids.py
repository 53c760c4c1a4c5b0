"""Salesforce record ids: 15 case-sensitive characters (3-character key prefix, pod, reserved, unique part)
plus the 3-character case-safe checksum that makes the 18-character form."""

from __future__ import annotations

import random
import re

__all__ = ["new_id", "normalize_id", "to18"]

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Z0-5]{3})?$")
POD = "5j0"  # characters 4-6: the instance ("pod") and a reserved character


def to18(id15: str) -> str:
    suffix = ""
    for start in (0, 5, 10):
        flags = 0
        for bit, ch in enumerate(id15[start:start + 5]):
            if "A" <= ch <= "Z":
                flags |= 1 << bit
        suffix += _CHECK[flags]
    return id15 + suffix


def new_id(prefix: str, rng: random.Random) -> str:
    return to18(prefix + POD + "".join(rng.choices(BASE62, k=9)))


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id; None when it is not a well-formed id."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        return None
    full = to18(value[:15])
    if len(value) == 18 and value.upper() != full.upper():
        return None
    return full
