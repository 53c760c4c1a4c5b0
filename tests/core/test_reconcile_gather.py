"""Reconcile against the real mock apps, in-process (httpx.ASGITransport, core.wiring connections).

Each test provisions accounts in all four mocks through the connectors, the way lead-to-cash does (the
canonical id as external id / metadata, copies of the owners' values), links them in a crosswalk on SQLite,
checks that a consistent estate reconciles clean, then breaks one system on purpose and expects exactly those
findings. Tests import the mocks to build their apps; the code under test never does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from core.connectors.billing import SubscriptionItemInput
from core.connectors.mapping.crm import AccountUpdate
from core.connectors.mapping.cs import CompanyInput
from core.connectors.mapping.erp import CustomerInput
from core.crosswalk import Crosswalk, UnknownCanonicalIdError
from core.model import Money
from core.model.ids import IdSource
from core.reconcile import Report, run
from core.reconcile.gather import account_ids
from core.settings import CoreSettings
from core.wiring import Connections, SystemEndpoint, build_connections
from mocks.billing.system import billing_system
from mocks.crm.system import crm_system
from mocks.cs.system import cs_system
from mocks.erp.system import erp_system
from tests.core.test_connectors_helpers import FAST, Sandbox, app_of

TENANT = {"crm": "recon-crm-1", "erp": "reconerp1", "billing": "sk_test_recon1", "cs": "recon-cs-key1"}
VERSION = {"crm": "59.0", "erp": "2024.2", "billing": "2023-08-16", "cs": "v1"}
PRICE_MINOR = 10_000  # 100.00 EUR a month


@dataclass
class Estate:
    apps: dict[str, Any]
    sandboxes: dict[str, Sandbox]
    conns: Connections
    xw: Crosswalk
    price: str

    def raw(self, system: str) -> httpx.AsyncClient:
        auth = {"cs": {"accesskey": TENANT["cs"]}}.get(system, {"Authorization": f"Bearer {TENANT[system]}"})
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.apps[system]), base_url=f"http://{system}.test",
                                 headers=auth)

    async def provision(self, name: str, email: str, card: str = "pm_card_visa") -> tuple[str, dict[str, str]]:
        """One customer in every system, consistent, linked in the crosswalk — with the flows' conventions:
        ERP externalId `lockstep-<id>`, Stripe metadata `lockstep_account`, Gainsight ExternalId = the id."""
        acc = self.xw.new("account")
        c = self.conns
        crm = await c.crm.upsert_account(acc, AccountUpdate(name=name, extra={"BillingCountry": "DE",
                                                                              "Website": "https://acme.example"}))
        erp = await c.erp.upsert_customer(f"lockstep-{acc}", CustomerInput(
            company_name=name, email=email, subsidiary_id="3", tax_country="DE", tax_number="DE123456789",
            address={"country": "DE", "city": "Berlin"}))
        cus = await c.billing.create_customer(idempotency_key=f"{acc}:customer", name=name, email=email,
                                              metadata={"lockstep_account": acc})
        await c.billing.attach_payment_method(card, cus.id, idempotency_key=f"{acc}:pm")
        sub = await c.billing.create_subscription(idempotency_key=f"{acc}:sub", customer_id=cus.id,
                                                  items=[SubscriptionItemInput(self.price, 3)])
        renewal = sub.current_period_end.astimezone(UTC).date()
        arr = Money(amount_minor=PRICE_MINOR * 3 * 12 if sub.status.value == "active" else 0, currency="EUR")
        cs = await c.cs.upsert_company(acc, CompanyInput(name=name, arr=arr, renewal_date=renewal, stage="Kick Off"))
        native = {"crm": crm.id, "erp": erp.id, "billing": cus.id, "cs": cs.gsid}
        for system, native_id in native.items():
            self.xw.link(acc, system, native_id)
        return acc, native


@pytest.fixture
async def estate(tmp_path: Path) -> AsyncIterator[Estate]:
    apps = {"crm": app_of(crm_system()), "erp": app_of(erp_system()),
            "billing": app_of(billing_system(rate_limit=None)), "cs": app_of(cs_system())}
    boxes = {s: Sandbox(app, TENANT[s]) for s, app in apps.items()}
    for box in boxes.values():
        await box.create()
    await boxes["erp"].seed({"customers": 0, "items": True})
    conns = build_connections({s: SystemEndpoint(base_url=f"http://{s}.test", credential=TENANT[s],
                                                 api_version=VERSION[s], transport=httpx.ASGITransport(app=apps[s]),
                                                 options={"retry": FAST}) for s in apps})
    xw = Crosswalk(str(tmp_path / "crosswalk.db"), ids=IdSource.seeded(7))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["billing"]), base_url="http://billing.test",
                                 headers={"Authorization": f"Bearer {TENANT['billing']}"}) as raw:
        resp = await raw.post("/v1/prices", data={"currency": "eur", "unit_amount": PRICE_MINOR,
                                                  "lookup_key": "pro_monthly", "recurring[interval]": "month",
                                                  "product_data[name]": "Pro"})
        assert resp.status_code == 200, resp.text
    yield Estate(apps, boxes, conns, xw, resp.json()["id"])
    await conns.aclose()
    for box in boxes.values():
        await box.aclose()
    xw.close()


def brief(report: Report) -> list[tuple[str, str, str, str | None]]:
    return [(f.account, f.system, f.kind, f.field) for f in report.findings]


async def test_a_consistent_estate_reconciles_clean(estate: Estate) -> None:
    a, _ = await estate.provision("Acme GmbH", "ap@acme.example")
    b, _ = await estate.provision("Globex AG", "billing@globex.example")
    report = await run(estate.xw, estate.conns)
    assert report.errors == [] and report.findings == [], report.to_json(indent=2)
    assert report.accounts == sorted([a, b]) and report.ok
    assert report.scan_truncated == {"crm": False, "erp": False, "billing": False, "cs": False}


async def test_broken_systems_give_exactly_those_findings(estate: Estate) -> None:
    a, native_a = await estate.provision("Acme GmbH", "ap@acme.example")
    b, native_b = await estate.provision("Globex AG", "billing@globex.example")
    c, _ = await estate.provision("Initech SE", "ar@initech.example")
    assert (await run(estate.xw, estate.conns)).findings == []

    # 1. The ERP customer of A is deleted behind the core's back.
    async with estate.raw("erp") as erp:
        resp = await erp.delete(f"/services/rest/record/v1/customer/{native_a['erp']}")
        assert resp.status_code == 204, resp.text
    # 2. Someone changes B's email in billing (the owner of billing_email): the ERP copy is now stale.
    await estate.conns.billing.update_customer(native_b["billing"], {"email": "new-ap@globex.example"},
                                               idempotency_key="test:email")
    # 3. A CS company carrying a core-style ExternalId that the crosswalk never linked.
    stray = "acc_01J00000000000000000000ZZZ"
    await estate.conns.cs.upsert_company(stray, CompanyInput(name="Stray Corp", stage="Kick Off"))

    report = await run(estate.xw, estate.conns)
    assert report.errors == [], report.errors
    assert brief(report) == sorted([
        (a, "erp", "missing", None),
        (b, "erp", "conflict", "billing_email"),
        (stray, "cs", "orphan", None),
    ]), report.to_json(indent=2)
    missing, conflict, orphan = (next(f for f in report.findings if f.kind == k)
                                 for k in ("missing", "conflict", "orphan"))
    assert (missing.expected, missing.owner, missing.native_id) == (native_a["erp"], "erp", native_a["erp"])
    assert (conflict.expected, conflict.actual, conflict.owner, conflict.native_id) == (
        "new-ap@globex.example", "billing@globex.example", "billing", native_b["erp"])
    assert orphan.owner == "cs" and orphan.actual == orphan.native_id and orphan.expected is None
    assert "Stray Corp" in orphan.detail and "does not know" in orphan.detail
    assert report.summary.by_kind == {"missing": 1, "orphan": 1, "conflict": 1}
    assert report.summary.by_system == {"cs": 1, "erp": 2} and report.summary.accounts == 3

    # One account at a time: only its findings (orphans claiming other ids are not about it).
    only_b = await run(estate.xw, estate.conns, accounts=[b])
    assert brief(only_b) == [(b, "erp", "conflict", "billing_email")] and only_b.accounts == [b]
    assert (await run(estate.xw, estate.conns, accounts=[c])).findings == []


async def test_money_and_status_conflicts_and_duplicates(estate: Estate) -> None:
    a, native_a = await estate.provision("Acme GmbH", "ap@acme.example")
    # CS ARR one cent off (major units on the wire; compared in minor units), ERP customer made inactive.
    off = Money(amount_minor=PRICE_MINOR * 36 - 1, currency="EUR")
    await estate.conns.cs.update_company(a, CompanyInput(arr=off))
    await estate.conns.erp.update_customer(native_a["erp"], {"isInactive": True})
    # A second billing customer for A (a duplicate a retried flow without idempotency would make).
    dup = await estate.conns.billing.create_customer(idempotency_key="dup", name="Acme GmbH",
                                                     metadata={"lockstep_account": a})
    # ... and one for an account nobody minted, tagged the way the connector tests tag customers.
    ghost = "acc_01J0000000000000000000GHST"
    await estate.conns.billing.create_customer(idempotency_key="ghost", name="Ghost", metadata={"canonical_id": ghost})
    # An ERP customer for an account the crosswalk knows but never linked to the ERP.
    prospect = estate.xw.new("account")
    estate.xw.link(prospect, "crm", "001000000000099AAA")
    stray = await estate.conns.erp.upsert_customer(f"lockstep-{prospect}", CustomerInput(
        company_name="Prospect Ltd", subsidiary_id="3", tax_country="DE", tax_number="DE999999999"))

    everything = await run(estate.xw, estate.conns)
    assert (ghost, "billing", "orphan", None) in brief(everything)
    report = await run(estate.xw, estate.conns, accounts=[a, prospect])
    assert brief(report) == sorted([(a, "billing", "orphan", None), (a, "cs", "conflict", "arr"),
                                    (a, "erp", "conflict", "status"), (prospect, "crm", "missing", None),
                                    (prospect, "erp", "orphan", None)]), report.to_json(indent=2)
    orphan, arr, status = report.findings[:3]
    erp_orphan = report.findings[4]
    assert (erp_orphan.actual, erp_orphan.expected) == (stray.id, None) and "no erp link" in erp_orphan.detail
    assert arr.expected == {"amount_minor": 360_000, "currency": "EUR"}
    assert arr.actual == {"amount_minor": 359_999, "currency": "EUR"} and arr.owner == "billing"
    assert (status.expected, status.actual, status.owner) == ("active", "churned", "crm")
    assert (orphan.actual, orphan.expected) == (dup.id, native_a["billing"]) and "duplicate" in orphan.detail


async def test_billing_delinquency_against_the_crm_at_risk_flag(estate: Estate) -> None:
    _, native_a = await estate.provision("Acme GmbH", "ap@acme.example", card="pm_card_chargeCustomerFail")
    # The first payment failed: billing's customer is delinquent (at risk) and its subscription incomplete
    # (no ARR); CS says 0 like billing, but the CRM (owner of status) was never flagged.
    report = await run(estate.xw, estate.conns)
    assert [(f.system, f.field, f.expected, f.actual, f.owner) for f in report.findings] == [
        ("billing", "status", "active", "at_risk", "crm")], report.to_json(indent=2)
    await estate.conns.crm.update_account(native_a["crm"], AccountUpdate(at_risk=True))
    assert (await run(estate.xw, estate.conns)).findings == []


async def test_a_deleted_stripe_customer_is_missing(estate: Estate) -> None:
    a, native_a = await estate.provision("Acme GmbH", "ap@acme.example")
    async with estate.raw("billing") as billing:
        assert (await billing.delete(f"/v1/customers/{native_a['billing']}")).status_code == 200
    report = await run(estate.xw, estate.conns)
    assert [(f.account, f.system, f.kind, f.native_id) for f in report.findings] == [
        (a, "billing", "missing", native_a["billing"])], report.to_json(indent=2)
    assert "deleted" in report.findings[0].detail and report.errors == []


async def test_json_shape_and_selection(estate: Estate) -> None:
    a, native_a = await estate.provision("Acme GmbH", "ap@acme.example")
    b, _ = await estate.provision("Globex AG", "billing@globex.example")
    await estate.conns.crm.update_account(native_a["crm"], AccountUpdate(name="Acme Holding GmbH"))

    report = await run(estate.xw, estate.conns, limit=1, orphans=False)
    doc = json.loads(report.to_json())
    assert set(doc) == {"accounts", "findings", "errors", "scan_truncated", "summary"}
    assert doc["accounts"] == [a] and doc["scan_truncated"] == {}
    # The CRM owns the name: ERP, billing and CS all disagree with it now.
    assert [(f["system"], f["field"], f["expected"], f["actual"], f["owner"]) for f in doc["findings"]] == [
        (s, "name", "Acme Holding GmbH", "Acme GmbH", "crm") for s in ("billing", "cs", "erp")]
    assert set(doc["findings"][0]) == {"account", "system", "kind", "field", "expected", "actual", "owner",
                                       "native_id", "detail"}
    assert doc["summary"] == {"accounts": 1, "findings": 3, "by_kind": {"missing": 0, "orphan": 0, "conflict": 3},
                              "by_system": {"billing": 1, "cs": 1, "erp": 1}, "errors": 0}
    assert account_ids(estate.xw) == sorted([a, b])
    with pytest.raises(UnknownCanonicalIdError):
        await run(estate.xw, estate.conns, accounts=["acc_01J00000000000000000000ZZZ"])


async def test_unreadable_system_is_an_error_not_a_finding(estate: Estate) -> None:
    a, _ = await estate.provision("Acme GmbH", "ap@acme.example")
    fail = {"method": "GET", "kind": "error", "status": 500}
    await estate.sandboxes["billing"].faults({"route": "/v1/customers/*", **fail}, {"route": "/v1/customers", **fail})
    report = await run(estate.xw, estate.conns)
    assert report.findings == [] and {(e.account, e.system) for e in report.errors} == {(a, "billing"),
                                                                                      (None, "billing")}
    assert not report.ok and report.summary.errors == 2


async def test_api_route_serves_the_report(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import wiring
    from core.api import create_core_app

    a, native_a = await estate.provision("Acme GmbH", "ap@acme.example")
    b, _ = await estate.provision("Globex AG", "billing@globex.example")
    async with estate.raw("erp") as erp:
        assert (await erp.delete(f"/services/rest/record/v1/customer/{native_a['erp']}")).status_code == 204
    runtime = SimpleNamespace(settings=CoreSettings(), crosswalk=estate.xw, launched=True)
    app = create_core_app(runtime=runtime)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://core.test") as core:
        monkeypatch.setattr(wiring, "_installed", None)
        assert (await core.get("/reconcile")).json()["error"]["code"] == "no_connections"
        monkeypatch.setattr(wiring, "_installed", estate.conns)

        everything = await core.get("/reconcile")
        assert everything.status_code == 200, everything.text
        found = [(f["account"], f["system"], f["kind"]) for f in everything.json()["findings"]]
        assert found == [(a, "erp", "missing")]
        one = (await core.get("/reconcile", params={"account": b})).json()
        assert one["accounts"] == [b] and one["findings"] == []
        posted = (await core.post("/reconcile", json={"accounts": [a, b], "orphans": False})).json()
        assert posted["accounts"] == [a, b] and posted["summary"]["by_kind"]["missing"] == 1
        assert (await core.get("/reconcile", params={"limit": 1})).json()["accounts"] == [a]
        bad = await core.get("/reconcile", params={"account": "nope"})
        unknown = await core.get("/reconcile", params={"account": "acc_01J00000000000000000000ZZZ"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_canonical_id")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "canonical_id_not_found")


def test_billing_arr_counts_live_subscriptions_only() -> None:
    from core.model import BillingInterval, SubscriptionStatus
    from core.reconcile.gather import billing_arr

    def sub(status: SubscriptionStatus, amount: int, qty: int, interval: BillingInterval, end: datetime) -> Any:
        item = SimpleNamespace(unit_amount=amount, quantity=qty, interval=interval)
        return SimpleNamespace(status=status, currency="EUR", items=[item], current_period_end=end)

    subs = [sub(SubscriptionStatus.ACTIVE, 1000, 2, BillingInterval.MONTH, datetime(2027, 1, 31, 23, tzinfo=UTC)),
            sub(SubscriptionStatus.PAST_DUE, 50_000, 1, BillingInterval.YEAR, datetime(2026, 6, 1, tzinfo=UTC)),
            sub(SubscriptionStatus.CANCELED, 99_999, 9, BillingInterval.YEAR, datetime(2028, 1, 1, tzinfo=UTC))]
    arr, renewal = billing_arr(subs, "EUR")
    assert arr == Money(amount_minor=1000 * 2 * 12 + 50_000, currency="EUR") and renewal == date(2027, 1, 31)
