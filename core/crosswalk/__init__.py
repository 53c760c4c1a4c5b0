"""The crosswalk: canonical ids <-> native ids per system, merge aliases and history, field ownership."""

from core.crosswalk.errors import (
    CorruptCrosswalkError,
    CrosswalkError,
    LinkConflictError,
    MergeCycleError,
    MergeError,
    UnknownCanonicalIdError,
)
from core.crosswalk.ownership import IgnoredWrite, Ownership, OwnershipConfigError, UnknownFieldError, WriteDecision
from core.crosswalk.records import MergeRecord, NativeRef, Problem
from core.crosswalk.store import Crosswalk

__all__ = [
    "CorruptCrosswalkError",
    "Crosswalk",
    "CrosswalkError",
    "IgnoredWrite",
    "LinkConflictError",
    "MergeCycleError",
    "MergeError",
    "MergeRecord",
    "NativeRef",
    "Ownership",
    "OwnershipConfigError",
    "Problem",
    "UnknownCanonicalIdError",
    "UnknownFieldError",
    "WriteDecision",
]
