"""Pure comparison (core.reconcile.compare): missing, orphan, conflict on name / currency / ARR / status,
ownership decides the expected value, money in minor units, no finding when everything agrees."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from core.crosswalk import Ownership
from core.model import AccountStatus, Money
from core.reconcile import Claim, OneOf, Report, Snapshot, compare_account, orphan_findings
from core.reconcile.compare import expected_systems, same

ACC = "acc_01J0000000000000000000000A"
OTHER = "acc_01J0000000000000000000000B"
OWNERSHIP = Ownership.load()
EUR = "EUR"


def eur(minor: int) -> Money:
    return Money(amount_minor=minor, currency=EUR)


def estate(**changes: dict[str, Any]) -> dict[str, Snapshot]:
    """Four systems agreeing about one account; `changes` overrides fields per system (None deletes)."""
    base: dict[str, dict[str, Any]] = {
        "crm": {"name": "Acme GmbH", "country": "DE", "status": AccountStatus.ACTIVE, "health_score": 80,
                "renewal_date": date(2027, 1, 31)},
        "erp": {"name": "Acme GmbH", "country": "DE", "currency": EUR, "billing_email": "ap@acme.example",
                "credit_hold": False, "status": OneOf.of(AccountStatus.ACTIVE, AccountStatus.AT_RISK)},
        "billing": {"name": "Acme GmbH", "currency": EUR, "billing_email": "ap@acme.example", "arr": eur(1_200_050),
                    "renewal_date": date(2027, 1, 31)},
        "cs": {"name": "Acme GmbH", "arr": eur(1_200_050), "renewal_date": date(2027, 1, 31), "health_score": 80},
    }
    for system, fields in changes.items():
        base[system] = {**base[system], **fields}
    return {s: Snapshot(s, f"{s}-1", f) for s, f in base.items()}


def compare(snapshots: dict[str, Snapshot], **kwargs: Any) -> list[tuple[str, str, str | None, Any, Any, str | None]]:
    found = compare_account(ACC, snapshots, ownership=OWNERSHIP, **kwargs)
    return [(f.system, f.kind, f.field, f.expected, f.actual, f.owner) for f in found]


def test_no_finding_when_everything_agrees() -> None:
    assert compare(estate()) == []


def test_whitespace_and_email_case_are_not_conflicts() -> None:
    snaps = estate(erp={"name": " Acme  GmbH ", "billing_email": "AP@Acme.example"})
    assert compare(snaps) == []


def test_name_conflict_expects_the_crm_value() -> None:
    assert compare(estate(cs={"name": "ACME"})) == [("cs", "conflict", "name", "Acme GmbH", "ACME", "crm")]


def test_ownership_decides_expected_even_when_the_owner_is_the_odd_one_out() -> None:
    # Billing owns billing_email: when billing changes it, the ERP's (majority) copy is the stale one.
    found = compare(estate(billing={"billing_email": "new@acme.example"}))
    assert found == [("erp", "conflict", "billing_email", "new@acme.example", "ap@acme.example", "billing")]
    # ... and the ERP owns credit_hold; nobody else speaks to it, so nothing to compare.
    assert compare(estate(erp={"credit_hold": True})) == []


def test_another_ownership_matrix_moves_the_expected_value() -> None:
    data = {e: {"*": "crm"} for e in ("account", "contact", "opportunity", "order", "contract", "subscription",
                                      "invoice", "payment", "entitlement", "health_score", "onboarding_milestone")}
    data["account"] = {"*": "crm", "billing_email": "erp"}
    swapped = Ownership.from_mapping(data)
    found = compare_account(ACC, estate(billing={"billing_email": "new@acme.example"}), ownership=swapped)
    assert [(f.system, f.expected, f.actual, f.owner) for f in found] == [
        ("billing", "ap@acme.example", "new@acme.example", "erp")]


def test_currency_conflict() -> None:
    assert compare(estate(erp={"currency": "USD"})) == [("erp", "conflict", "currency", "EUR", "USD", "billing")]


def test_arr_is_compared_in_minor_units() -> None:
    found = compare(estate(cs={"arr": eur(1_200_049)}))
    assert found == [("cs", "conflict", "arr", {"amount_minor": 1_200_050, "currency": EUR},
                      {"amount_minor": 1_200_049, "currency": EUR}, "billing")]
    # Same amount from a major-unit vendor (12000.50 EUR) is equal; the same digits in another currency are not.
    assert compare(estate(cs={"arr": Money.from_major("12000.50", EUR)})) == []
    other = compare(estate(cs={"arr": Money(amount_minor=1_200_050, currency="USD")}))
    assert [(s, f, a) for s, _, f, _, a, _ in other] == [("cs", "arr", {"amount_minor": 1_200_050, "currency": "USD"})]


def test_status_conflict_and_vocabularies_that_cannot_tell_values_apart() -> None:
    churned = compare(estate(erp={"status": AccountStatus.CHURNED}))
    assert churned == [("erp", "conflict", "status", "active", "churned", "crm")]
    # The ERP can't tell active from at risk: "one of" agrees with either, not with churned.
    at_risk = estate(crm={"status": AccountStatus.AT_RISK}, billing={"status": AccountStatus.AT_RISK})
    assert compare(at_risk) == []
    crm_churned = compare(estate(crm={"status": AccountStatus.CHURNED}))
    assert crm_churned == [("erp", "conflict", "status", "churned", {"one_of": ["active", "at_risk"]}, "crm")]


def test_nothing_is_compared_without_an_owner_value() -> None:
    # Billing (owner of currency / ARR / renewal date) unreadable: no expected value, no conflicts on those.
    snaps = estate(cs={"arr": eur(1)}, erp={"currency": "USD"})
    del snaps["billing"]
    assert compare(snaps, unreadable={"billing"}) == []
    # Owner says nothing (None): the copies are not held to anything. A copy left empty is no conflict either.
    assert compare(estate(billing={"arr": None}, cs={"arr": eur(5)})) == []
    assert compare(estate(cs={"arr": None, "health_score": None})) == []


def test_fields_selection() -> None:
    snaps = estate(cs={"name": "ACME", "arr": eur(1)})
    assert [f for _, _, f, *_ in compare(snaps, fields={"arr"})] == ["arr"]


def test_missing_when_a_linked_record_is_gone() -> None:
    snaps = estate()
    del snaps["erp"]
    found = compare_account(ACC, snaps, ownership=OWNERSHIP, gone={"erp": "erp-1"}, why={"erp": "erp says 404"})
    assert [(f.system, f.kind, f.expected, f.native_id, f.owner, f.detail) for f in found] == [
        ("erp", "missing", "erp-1", "erp-1", "erp", "erp says 404")]


def test_missing_when_a_provisioned_account_lacks_a_link() -> None:
    snaps = estate()
    del snaps["cs"]
    found = compare_account(ACC, snaps, ownership=OWNERSHIP)
    assert [(f.system, f.kind, f.expected) for f in found] == [("cs", "missing", None)]
    assert "no cs record is linked" in found[0].detail
    # A prospect only in the CRM is complete; an account with no CRM link is not.
    assert compare({"crm": estate()["crm"]}) == []
    assert [(s, k) for s, k, *_ in compare({"billing": estate()["billing"]})] == [
        ("crm", "missing"), ("cs", "missing"), ("erp", "missing")]
    # An unreadable system is not missing.
    del snaps["erp"]
    assert [f.system for f in compare_account(ACC, snaps, ownership=OWNERSHIP, linked={"crm": "c", "erp": "e",
                                                                                       "billing": "b"},
                                              unreadable={"erp"})] == ["cs"]


def test_expected_systems_policy() -> None:
    assert expected_systems({"crm"}) == ["crm"]
    assert expected_systems({"crm", "erp"}) == ["crm", "erp", "billing", "cs"]
    assert expected_systems({"crm", "erp"}, provisioned=()) == ["crm", "erp"]


def test_orphans_and_mislinks() -> None:
    claims = [
        Claim("cs", "gs-9", claimed=OTHER, linked=None, claimed_resolved=None, name="Stray Corp"),
        Claim("billing", "cus_2", claimed=ACC, linked=None, claimed_resolved=ACC, expected_native="cus_1"),
        Claim("erp", "77", claimed=ACC, linked=None, claimed_resolved=ACC, expected_native=None),
        Claim("crm", "001B", claimed=ACC, linked=OTHER, claimed_resolved=ACC),
    ]
    found = orphan_findings(claims)
    assert [(f.account, f.system, f.kind, f.field, f.expected, f.actual, f.owner) for f in found] == [
        (ACC, "billing", "orphan", None, "cus_1", "cus_2", "billing"),
        (ACC, "erp", "orphan", None, None, "77", "erp"),
        (OTHER, "crm", "conflict", "external_id", OTHER, ACC, "core"),
        (OTHER, "cs", "orphan", None, None, "gs-9", "cs"),
    ]
    assert "duplicate" in found[0].detail and "Stray Corp" in found[3].detail
    # A selection reports only the claims about its accounts.
    assert {f.system for f in orphan_findings(claims, accounts={OTHER})} == {"cs", "crm"}
    assert orphan_findings([]) == []


@pytest.mark.parametrize(("name", "a", "b", "equal"), [
    ("name", "Acme", "acme", False),
    ("billing_email", "A@x.io", "a@x.io", True),
    ("renewal_date", date(2027, 1, 31), date(2027, 2, 1), False),
    ("status", AccountStatus.ACTIVE, "active", True),
    ("arr", Money(amount_minor=100, currency="JPY"), Money.from_major("100", "JPY"), True),
])
def test_same(name: str, a: Any, b: Any, equal: bool) -> None:
    assert same(name, a, b) is equal


def test_report_summary_counts() -> None:
    snaps = estate(cs={"name": "ACME"}, erp={"currency": "USD"})
    del snaps["billing"]
    findings = compare_account(ACC, snaps, ownership=OWNERSHIP, gone={"billing": "cus_1"})
    findings += orphan_findings([Claim("cs", "gs-9", OTHER, None)])
    report = Report(accounts=[ACC], findings=findings)
    assert report.summary.by_kind == {"missing": 1, "orphan": 1, "conflict": 1}
    assert report.summary.by_system == {"billing": 1, "cs": 2} and report.summary.findings == 3
    assert not report.ok and Report(accounts=[ACC], findings=[]).ok
