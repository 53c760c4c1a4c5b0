"""The crosswalk's errors: one base class, one subclass per thing a caller may want to handle."""

from __future__ import annotations


class CrosswalkError(Exception):
    """Base of every crosswalk error."""


class UnknownCanonicalIdError(CrosswalkError, KeyError):
    """A canonical id that the crosswalk never minted."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else "unknown canonical id"


class LinkConflictError(CrosswalkError):
    """A native id already belongs to another canonical id, or the canonical id already has one for the system."""


class MergeError(CrosswalkError):
    """A merge that can't be applied: different entities, a loser already merged elsewhere, unknown alias."""


class MergeCycleError(MergeError):
    """A merge that would make the alias graph cyclic (A -> B -> A)."""


class CorruptCrosswalkError(CrosswalkError):
    """Stored data breaks an invariant (e.g. an alias cycle planted by hand); see `check_integrity()`."""
