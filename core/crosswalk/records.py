"""Plain result types returned by the crosswalk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class NativeRef:
    """One native record and the canonical id it was linked to (a merged-away id for merged-in refs)."""

    entity: str
    system: str
    native_id: str
    canonical_id: str
    primary: bool  # the one `native()` / `refs()` return for its system


@dataclass(frozen=True)
class MergeRecord:
    action: Literal["merge", "unmerge"]
    winner: str
    loser: str
    source: str
    at: datetime


@dataclass(frozen=True)
class Problem:
    """A broken invariant found by `check_integrity()`."""

    kind: Literal["dangling_alias", "dangling_ref", "alias_cycle", "entity_mismatch"]
    canonical_id: str
    detail: str
