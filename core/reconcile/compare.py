"""Pure comparison: what each system says about one canonical account -> findings. No I/O.

Inputs are `Snapshot`s: per system, the canonical account fields that system can speak to, already mapped
to canonical values (gather.py does the reading and mapping). A field a system does not carry is absent from
its snapshot; a field it carries but leaves empty is None, and None never conflicts (the copy has not been
filled yet, which the flows that fill it are responsible for). A system whose vocabulary cannot tell some
canonical values apart reports `OneOf(...)` (the ERP knows "inactive" but not "at risk"); it agrees with any
value in the set.

Rules:
- Existence: a linked native id that is gone -> `missing` in that system. Systems without a link are
  `missing` when the account should be there: always the CRM (it owns the account's identity), and every
  system of `PROVISIONED` once the account is linked in any of them (closed-won provisions all three).
- Fields: for each field, the owner (core/ownership.yaml) is asked first; its value is `expected`, and
  every other system that says something else is a `conflict` owned by the owner. When the owner cannot
  be read, or says nothing definite, the field is not compared (there is no expected value to hold others to).
- Equality is by kind of value: Money by (currency, minor units) — never floats; strings with whitespace
  collapsed (emails also case-folded); dates by day; enums by value.
- Orphans: a native record that claims a canonical account id (an external id, Stripe metadata) but is not
  linked in the crosswalk is an `orphan` in its system; one linked to another account than it claims is a
  `conflict` on `external_id`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any

from core.crosswalk import Ownership
from core.model import Money
from core.reconcile.model import Finding

__all__ = [
    "ALWAYS",
    "ENTITY",
    "PROVISIONED",
    "Claim",
    "OneOf",
    "Snapshot",
    "compare_account",
    "expected_systems",
    "jsonable",
    "orphan_findings",
    "same",
]

ENTITY = "account"
ALWAYS: tuple[str, ...] = ("crm",)
PROVISIONED: tuple[str, ...] = ("erp", "billing", "cs")
SYSTEM_ORDER: tuple[str, ...] = ("crm", "erp", "billing", "cs")
_SPACES = re.compile(r"\s+")
_CASE_INSENSITIVE = frozenset({"billing_email", "domain"})


@dataclass(frozen=True)
class OneOf:
    """A value a system's vocabulary can only narrow down to a set (agrees with any member)."""

    values: frozenset[Any]

    @classmethod
    def of(cls, *values: Any) -> OneOf:
        return cls(frozenset(values))


@dataclass(frozen=True)
class Snapshot:
    """What one system says about one account: canonical field -> value (absent: the system has no such field)."""

    system: str
    native_id: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """A native record that says it belongs to a canonical account.

    `claimed`: the canonical id it carries. `linked`: the canonical id the crosswalk resolves its native id to
    (None: not linked). `claimed_resolved`: `claimed` after merges (None: the crosswalk does not know it).
    `expected_native`: the native id the crosswalk holds for the claimed account in this system, if any."""

    system: str
    native_id: str
    claimed: str
    linked: str | None
    claimed_resolved: str | None = None
    expected_native: str | None = None
    name: str | None = None


def jsonable(value: Any) -> Any:
    """A value as it appears in the JSON report."""
    if isinstance(value, Money):
        return {"amount_minor": value.amount_minor, "currency": value.currency}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, OneOf):
        return {"one_of": sorted(jsonable(v) for v in value.values)}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _norm(name: str, value: Any) -> Any:
    if isinstance(value, Money):
        return ("money", value.currency, value.amount_minor)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        text = _SPACES.sub(" ", value).strip()
        return text.casefold() if name in _CASE_INSENSITIVE else text
    return value


def same(name: str, expected: Any, actual: Any) -> bool:
    """Does `actual` agree with the owner's `expected` value of field `name`?"""
    if isinstance(actual, OneOf):
        target = _norm(name, expected)
        return any(_norm(name, v) == target for v in actual.values)
    return bool(_norm(name, expected) == _norm(name, actual))


def expected_systems(linked: Collection[str], *, always: Iterable[str] = ALWAYS,
                     provisioned: Iterable[str] = PROVISIONED) -> list[str]:
    """The systems an account with links in `linked` should exist in."""
    want = set(always) | set(linked)
    group = set(provisioned)
    if group & set(linked):
        want |= group
    return [s for s in SYSTEM_ORDER if s in want] + sorted(want - set(SYSTEM_ORDER))


def _describe(value: Any) -> str:
    if isinstance(value, Money):
        return f"{value.amount_minor} {value.currency} minor units"
    if isinstance(value, OneOf):
        return "one of " + ", ".join(sorted(str(jsonable(v)) for v in value.values))
    return repr(jsonable(value))


def compare_account(
    account: str,
    snapshots: Mapping[str, Snapshot],
    *,
    ownership: Ownership,
    linked: Mapping[str, str] | None = None,
    gone: Mapping[str, str] | None = None,
    why: Mapping[str, str] | None = None,
    unreadable: Collection[str] = (),
    fields: Collection[str] | None = None,
    always: Iterable[str] = ALWAYS,
    provisioned: Iterable[str] = PROVISIONED,
) -> list[Finding]:
    """Findings for one account.

    `snapshots`: system -> what it says (systems read successfully). `linked`: system -> native id from the
    crosswalk (defaults to the snapshots' ids). `gone`: system -> linked native id that no longer exists
    (`why`: system -> how the system said so). `unreadable`: systems that could not be read (no finding
    about them). `fields`: compare only these."""
    gone = dict(gone or {})
    linked = dict(linked) if linked is not None else {s: snap.native_id for s, snap in snapshots.items()}
    linked.update({s: n for s, n in gone.items() if s not in linked})
    findings: list[Finding] = []

    for system in expected_systems(linked, always=always, provisioned=provisioned):
        if system in snapshots or system in unreadable:
            continue
        if system in gone:
            findings.append(Finding(account=account, system=system, kind="missing", expected=gone[system],
                                    owner=system, native_id=gone[system],
                                    detail=(why or {}).get(system) or f"the crosswalk links {system} "
                                           f"{gone[system]!r}, which {system} no longer has"))
        elif system not in linked:
            there = ", ".join(s for s in SYSTEM_ORDER if s in linked) or "no system"
            findings.append(Finding(account=account, system=system, kind="missing", owner=system,
                                    detail=f"no {system} record is linked; the account is in {there}"))

    names = sorted({name for snap in snapshots.values() for name in snap.fields})
    for name in names:
        if fields is not None and name not in fields:
            continue
        owner = ownership.owner(ENTITY, name)
        owner_snap = snapshots.get(owner)
        if owner_snap is None or name not in owner_snap.fields:
            continue
        expected = owner_snap.fields[name]
        if expected is None or isinstance(expected, OneOf):
            continue
        for system in SYSTEM_ORDER:
            snap = snapshots.get(system)
            if system == owner or snap is None or name not in snap.fields:
                continue
            actual = snap.fields[name]
            if actual is None or same(name, expected, actual):
                continue
            findings.append(Finding(
                account=account, system=system, kind="conflict", field=name, expected=jsonable(expected),
                actual=jsonable(actual), owner=owner, native_id=snap.native_id,
                detail=f"{system} says {name} is {_describe(actual)}; {owner} owns it and says {_describe(expected)}",
            ))
    return sorted(findings, key=Finding.sort_key)


def orphan_findings(claims: Iterable[Claim], *, accounts: Collection[str] | None = None) -> list[Finding]:
    """Orphans (claim a canonical account, not linked) and mislinks (linked to another account than claimed).

    `accounts`: report only claims about these (survivor) canonical ids; None reports all."""
    findings: list[Finding] = []
    for c in claims:
        about = c.claimed_resolved or c.claimed
        if accounts is not None and about not in accounts and c.claimed not in accounts \
                and (c.linked is None or c.linked not in accounts):
            continue
        if c.linked is None:
            if c.claimed_resolved is None:
                why = f"it claims {c.claimed}, which the crosswalk does not know"
            elif c.expected_native is not None:
                why = (f"it claims {c.claimed}, whose {c.system} record is {c.expected_native!r}: "
                       "a duplicate")
            else:
                why = f"it claims {c.claimed}, which has no {c.system} link"
            label = f" ({c.name})" if c.name else ""
            findings.append(Finding(account=about, system=c.system, kind="orphan", expected=c.expected_native,
                                    actual=c.native_id, owner=c.system, native_id=c.native_id,
                                    detail=f"{c.system} record {c.native_id!r}{label} is not in the crosswalk; {why}"))
        elif c.claimed_resolved != c.linked:
            findings.append(Finding(account=c.linked, system=c.system, kind="conflict", field="external_id",
                                    expected=c.linked, actual=c.claimed, owner="core", native_id=c.native_id,
                                    detail=f"{c.system} record {c.native_id!r} is linked to {c.linked} but its "
                                           f"external id says {c.claimed}"))
    return sorted(findings, key=Finding.sort_key)
