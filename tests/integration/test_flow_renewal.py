"""Flow 6, renewal prep: when the renewal window opens (CS Renewal CTA 90 days before an annual term ends, or a
monthly period roll), usage, health and open invoices land in the CRM account's renewal fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lockstep.sandbox import Sandbox
from tests.integration.test_flow_invoice_sync import (
    Acct,
    advance_clock,
    crm_account,
    flows_for,
    ok,
    setup_account,
)

EXTENDED = {"Renewal_ARR__c": "currency", "Renewal_Open_Invoices__c": "double", "Renewal_Usage__c": "double"}


async def _declare_renewal_fields(sandbox: Sandbox) -> None:
    """What the deployment does once per org: the extended renewal fields."""
    for name, kind in EXTENDED.items():
        r = await sandbox.control("crm").post("/actions", json={"action": "declare_field", "object": "Account",
                                                               "field": {"name": name, "type": kind}})
        assert r.status_code < 400 or "already" in r.text.lower() or "exists" in r.text.lower(), r.text


async def _subscription(sandbox: Sandbox, acct: Acct) -> dict:
    return ok(await sandbox.clients["billing"].get(f"/v1/subscriptions/{acct.subscription}"))


async def test_renewal_prep_when_the_cs_renewal_window_opens(sandbox: Sandbox) -> None:
    await _declare_renewal_fields(sandbox)
    acct = await setup_account(sandbox, unit_amount=120_000, quantity=2, interval="year")
    cs = sandbox.clients["cs"]
    sub = await _subscription(sandbox, acct)
    renewal = datetime.fromtimestamp(sub["current_period_end"], UTC).date()
    # lead-to-cash keeps CS's RenewalDate = billing's period end; health measures from the CSM
    ok(await cs.put("/v1/data/objects/Company", params={"keys": "ExternalId"},
                    json={"records": [{"ExternalId": acct.canonical, "RenewalDate": renewal.isoformat()}]}))
    ok(await cs.put(f"/v1/scorecard/company/{acct.cs}/measures",
                    json={"measures": [{"name": "Product Adoption", "score": 80}, {"name": "Support", "score": 60}]}))
    await sandbox.quiesce()
    before = await crm_account(sandbox, acct)
    assert before["Renewal_Date__c"] is None and before.get("Renewal_ARR__c") is None
    assert not await flows_for(sandbox, f"renewal-prep:{acct.canonical}:")

    cs_now = datetime.fromtimestamp(ok(await sandbox.control("cs").get("/clock"))["now"], UTC).date()
    days_to_window = (renewal - cs_now).days - 90
    await sandbox.advance("cs", f"{days_to_window - 2}d")  # not open yet
    assert not await flows_for(sandbox, f"renewal-prep:{acct.canonical}:")
    await sandbox.advance("cs", "3d")  # the window opens: CS opens a Renewal CTA

    [flow] = await flows_for(sandbox, f"renewal-prep:{acct.canonical}:")
    assert flow["workflow_id"] == f"renewal-prep:{acct.canonical}:{renewal.isoformat()}"
    assert flow["status"] == "SUCCESS", flow
    account = await crm_account(sandbox, acct)
    assert account["Renewal_Date__c"] == renewal.isoformat()
    assert account["Health_Score__c"] == pytest.approx(72.0)  # (80*30 + 60*20) / 50
    assert account["AR_Balance__c"] == 0.0
    assert account["Renewal_ARR__c"] == pytest.approx(2400.0)
    assert account["Renewal_Open_Invoices__c"] == 0
    assert account["Renewal_Usage__c"] == 80


async def test_renewal_prep_on_a_monthly_period_roll(sandbox: Sandbox) -> None:
    """A monthly term is inside the window from its start: billing's period roll opens it, once per term."""
    await _declare_renewal_fields(sandbox)
    acct = await setup_account(sandbox, unit_amount=1000, quantity=3)
    assert not await flows_for(sandbox, f"renewal-prep:{acct.canonical}:")
    await advance_clock(sandbox, acct, 32)
    sub = await _subscription(sandbox, acct)
    renewal = datetime.fromtimestamp(sub["current_period_end"], UTC).date().isoformat()
    flows = await flows_for(sandbox, f"renewal-prep:{acct.canonical}:")
    assert [f["workflow_id"] for f in flows] == [f"renewal-prep:{acct.canonical}:{renewal}"]
    assert flows[0]["status"] == "SUCCESS"
    account = await crm_account(sandbox, acct)
    assert account["Renewal_Date__c"] == renewal
    assert account["Renewal_ARR__c"] == pytest.approx(360.0)
