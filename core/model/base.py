"""What every canonical record shares: a canonical id, refs to native records, a version, UTC timestamps.

Records are immutable (frozen). Changes go through `with_ref` / `with_changes`, which validate again and
return a new record with `version + 1`, so a stale copy can never be mutated into a newer one by accident.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from core.model.ids import PREFIXES, IdSource, id_pattern

System = Literal["crm", "erp", "billing", "cs"]
SYSTEMS: tuple[str, ...] = get_args(System)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Aware datetimes only (a naive one is an error, not "probably UTC"), normalized to UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
NonEmptyStr = Annotated[str, Field(min_length=1, max_length=255)]
# Fields every record carries and the core manages itself; no system of record owns them.
BOOKKEEPING_FIELDS: frozenset[str] = frozenset({"id", "source_refs", "version", "created_at", "updated_at"})


# Fields pointing at another canonical record (e.g. `account_id`) accept only that entity's ids.
AccountRef = Annotated[str, Field(pattern=id_pattern("account"))]
OpportunityRef = Annotated[str, Field(pattern=id_pattern("opportunity"))]
OrderRef = Annotated[str, Field(pattern=id_pattern("order"))]
ContractRef = Annotated[str, Field(pattern=id_pattern("contract"))]
SubscriptionRef = Annotated[str, Field(pattern=id_pattern("subscription"))]
InvoiceRef = Annotated[str, Field(pattern=id_pattern("invoice"))]


class Frozen(BaseModel):
    """Base for value objects (Money, lines, refs): immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceRef(Frozen):
    """Where a canonical record lives in one system of record."""

    system: System
    native_id: NonEmptyStr
    # The vendor's own change marker, whatever it is: an ETag, Salesforce SystemModstamp, NetSuite
    # lastModifiedDate, or a Stripe event id. Opaque to the core; compared only for equality.
    version_tag: str | None = None
    last_seen: UtcDatetime


class CanonicalModel(Frozen):
    """A canonical record. Subclasses set `entity` (the crosswalk / ownership key) and its id pattern."""

    entity: ClassVar[str]

    id: str
    source_refs: list[SourceRef] = Field(default_factory=list)
    version: int = Field(default=1, ge=1)
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        # Each entity accepts only its own prefix: an Account can't carry an "inv_..." id.
        if not re.match(id_pattern(cls.entity), value):
            raise ValueError(f"{value!r} is not a canonical {cls.entity} id ('{PREFIXES[cls.entity]}_' + 26 base32)")
        return value

    @model_validator(mode="after")
    def _check_common(self) -> Self:
        if self.updated_at < self.created_at:
            raise ValueError("updated_at is before created_at")
        systems = [ref.system for ref in self.source_refs]
        duplicates = sorted({s for s in systems if systems.count(s) > 1})
        if duplicates:
            # One native record per system; extra native ids after a merge live in the crosswalk as aliases.
            raise ValueError(f"more than one source ref for system(s): {', '.join(duplicates)}")
        return self

    @classmethod
    def new_id(cls, ids: IdSource) -> str:
        return ids.new(cls.entity)

    def ref_for(self, system: System) -> SourceRef | None:
        return next((ref for ref in self.source_refs if ref.system == system), None)

    def with_ref(self, ref: SourceRef, *, at: datetime | None = None, replace: bool = False) -> Self:
        """A new version carrying `ref` (refreshing the one already held for its system).

        Re-pointing a system to a different native id needs `replace=True`: silently swapping the record
        a canonical id stands for is how duplicates and orphans are born.
        """
        current = self.ref_for(ref.system)
        if current is not None and current.native_id != ref.native_id and not replace:
            raise ValueError(
                f"{self.id} already refers to {ref.system} {current.native_id!r}, not {ref.native_id!r}; "
                "pass replace=True to re-point it"
            )
        refs = [r for r in self.source_refs if r.system != ref.system] + [ref]
        return self._bump({"source_refs": refs}, at or ref.last_seen)

    def with_changes(self, changes: Mapping[str, Any], *, at: datetime) -> Self:
        """A new, re-validated version with `changes` applied (e.g. the accepted part of an ownership filter)."""
        managed = sorted(BOOKKEEPING_FIELDS & changes.keys())
        if managed:
            raise ValueError(f"fields managed by the core can't be changed directly: {', '.join(managed)}")
        unknown = sorted(changes.keys() - type(self).model_fields.keys())
        if unknown:
            raise ValueError(f"{type(self).__name__} has no field(s): {', '.join(unknown)}")
        return self._bump(dict(changes), at)

    def _bump(self, changes: dict[str, Any], at: datetime) -> Self:
        # model_validate (not model_copy) so the new version passes every validator again.
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(changes)
        data["version"] = self.version + 1
        data["updated_at"] = max(_to_utc(at), self.updated_at)
        return type(self).model_validate(data)
