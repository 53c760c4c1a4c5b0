"""What reconciliation reports: findings (missing / orphan / conflict) and a report with summary counts.

A `Finding` is one disagreement between the crosswalk and a system of record, or between two systems:

- `missing`:  the account should exist in `system` and does not (its linked native id 404s or is deleted,
              or the crosswalk has no link for a system the account should be in). `expected` is the native
              id the crosswalk holds (None when there is no link), `actual` is None.
- `orphan`:   a record in `system` says it belongs to the core (an external id / metadata holding a canonical
              account id) but the crosswalk does not link it. `account` is the id the record claims;
              `expected` is the native id the crosswalk holds for that account in `system` (None if none),
              `actual` is the orphan's native id.
- `conflict`: `system` says something else than the field's owner about `field`. `expected` is the owner's
              value, `actual` is `system`'s. Money is `{"amount_minor", "currency"}`, dates ISO strings.

`owner` is the system whose word decides the finding: for a conflict the field's owner (the ownership
matrix); for missing and orphan findings the system that holds (or should hold) the record. A system that
could not be read (drift, 5xx, rate limit) yields a `ReadError`, never a finding: an unreadable record is not
evidence that it is missing. Reports carry no timestamps, so one seed gives one identical JSON document.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

__all__ = ["KINDS", "Finding", "FindingKind", "ReadError", "ReconcileRequest", "Report", "Summary"]

FindingKind = Literal["missing", "orphan", "conflict"]
KINDS: tuple[str, ...] = ("missing", "orphan", "conflict")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Finding(_Frozen):
    account: str = Field(description="canonical account id (for an orphan: the id its record claims)")
    system: str = Field(description="the system the finding is about: crm | erp | billing | cs")
    kind: FindingKind
    field: str | None = Field(default=None, description="canonical field (conflicts only)")
    expected: Any = Field(default=None, description="the owner's value / the crosswalk's native id")
    actual: Any = Field(default=None, description="what `system` says / the orphan's native id")
    owner: str | None = Field(default=None, description="the system whose word decides this finding")
    native_id: str | None = Field(default=None, description="the native record in `system`, when there is one")
    detail: str = ""

    def sort_key(self) -> tuple[str, str, int, str, str]:
        return (self.account, self.system, KINDS.index(self.kind), self.field or "", self.native_id or "")


class ReadError(_Frozen):
    """A system that could not be read for an account (or scanned for orphans: `account` None)."""

    account: str | None
    system: str
    native_id: str | None = None
    error: str = Field(description="error class, e.g. SchemaDriftError, VendorError")
    message: str


class Summary(_Frozen):
    accounts: int = Field(description="canonical accounts compared")
    findings: int
    by_kind: dict[str, int]
    by_system: dict[str, int]
    errors: int


class Report(_Frozen):
    accounts: list[str] = Field(description="the canonical accounts compared, in order")
    findings: list[Finding]
    errors: list[ReadError] = Field(default_factory=list)
    # Orphan scans stop at a bound per system; True here means records past the bound were not looked at.
    scan_truncated: dict[str, bool] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> Summary:
        kinds = Counter(f.kind for f in self.findings)
        systems = Counter(f.system for f in self.findings)
        return Summary(accounts=len(self.accounts), findings=len(self.findings),
                       by_kind={k: kinds.get(k, 0) for k in KINDS}, by_system=dict(sorted(systems.items())),
                       errors=len(self.errors))

    @property
    def ok(self) -> bool:
        """No findings and every system readable."""
        return not self.findings and not self.errors

    def for_account(self, account: str) -> list[Finding]:
        return [f for f in self.findings if f.account == account]

    def to_json(self, **kwargs: Any) -> str:
        return self.model_dump_json(**kwargs)


class ReconcileRequest(_Frozen):
    """Body of `POST /reconcile` (the same selection as GET's query, for long lists of accounts)."""

    accounts: list[str] | None = Field(default=None, max_length=100_000, description="canonical account ids")
    limit: int | None = Field(default=None, ge=1, le=100_000, description="compare the first N accounts")
    orphans: bool = Field(default=True, description="scan each system for unlinked records")
