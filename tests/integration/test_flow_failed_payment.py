"""Flow 3, failed payment: dunning retries with pm_card_chargeCustomerFail -> CRM at-risk, one CS risk CTA,
ERP credit hold after N (3) failures; a new card and a successful retry clear all three."""

from __future__ import annotations

from typing import Any

from lockstep.sandbox import Sandbox
from tests.integration.test_flow_invoice_sync import (
    Acct,
    advance_clock,
    crm_account,
    flows_for,
    invoices_of,
    ok,
    set_card,
    setup_account,
)

RECORD = "/services/rest/record/v1"


async def _risk_ctas(sandbox: Sandbox, acct: Acct) -> list[dict[str, Any]]:
    rows = ok(await sandbox.clients["cs"].get("/v2/cockpit/cta", params={"companyId": acct.cs, "limit": 50}))
    return [c for c in rows["data"]["records"] if c["TypeName"] == "Risk"]


async def _hold(sandbox: Sandbox, acct: Acct) -> tuple[str, bool]:
    customer = ok(await sandbox.clients["erp"].get(f"{RECORD}/customer/{acct.erp}"))
    return customer["creditHoldOverride"], customer["isOnCreditHold"]


async def test_failed_payment_dunning_then_recovery(sandbox: Sandbox) -> None:
    acct = await setup_account(sandbox, unit_amount=1000, quantity=10)
    assert (await crm_account(sandbox, acct))["At_Risk__c"] is False
    await set_card(sandbox, acct.billing, "pm_card_chargeCustomerFail")

    await advance_clock(sandbox, acct, 32)  # renewal invoice (finalized after 1 h), first attempt fails
    renewal = (await invoices_of(sandbox, acct))[0]
    assert renewal["status"] == "open" and renewal["attempt_count"] == 1
    account = await crm_account(sandbox, acct)
    assert account["At_Risk__c"] is True
    assert account["AR_Balance__c"] == 100.0
    ctas = await _risk_ctas(sandbox, acct)
    assert len(ctas) == 1 and not ctas[0]["IsClosed"]
    assert await _hold(sandbox, acct) == ("AUTO", False)

    await advance_clock(sandbox, acct, 3)  # retry 1 fails (2 failures)
    assert (await invoices_of(sandbox, acct))[0]["attempt_count"] == 2
    assert len(await _risk_ctas(sandbox, acct)) == 1
    assert await _hold(sandbox, acct) == ("AUTO", False)

    await advance_clock(sandbox, acct, 5)  # retry 2 fails (3 failures = N): credit hold
    assert (await invoices_of(sandbox, acct))[0]["attempt_count"] == 3
    assert len(await _risk_ctas(sandbox, acct)) == 1, "a second risk CTA for the same episode"
    assert await _hold(sandbox, acct) == ("ON", True)
    keys = {f["workflow_id"] for f in await flows_for(sandbox, f"failed-payment:{renewal['id']}:")}
    assert keys == {f"failed-payment:{renewal['id']}:attempt-{n}" for n in (1, 2, 3)}

    # The customer updates the card; the retry succeeds.
    pm = await set_card(sandbox, acct.billing, "pm_card_visa")
    ok(await sandbox.clients["billing"].post(f"/v1/invoices/{renewal['id']}/pay", data={"payment_method": pm}))
    await sandbox.quiesce()
    assert (await invoices_of(sandbox, acct))[0]["status"] == "paid"
    account = await crm_account(sandbox, acct)
    assert account["At_Risk__c"] is False and account["AR_Balance__c"] == 0.0
    [cta] = await _risk_ctas(sandbox, acct)
    assert cta["IsClosed"] and cta["StatusName"] == "Closed Success"
    assert await _hold(sandbox, acct) == ("AUTO", False)
    flows = await flows_for(sandbox, "failed-payment:")
    mine = [f for f in flows if f["workflow_id"].startswith(f"failed-payment:{renewal['id']}:")]
    assert all(f["status"] == "SUCCESS" for f in mine), mine
    assert not [d for d in await sandbox.dlq(status="parked") if renewal["id"] in d["business_key"]]


async def test_failed_payment_stale_failure_after_paid_changes_nothing(sandbox: Sandbox) -> None:
    """A payment_failed flow that runs after the invoice was paid reads billing now: nothing is flagged."""
    from tests.integration.test_flow_invoice_sync import Interceptor

    acct = await setup_account(sandbox)
    await set_card(sandbox, acct.billing, "pm_card_chargeCustomerFail")
    with Interceptor(sandbox, lambda e: e["type"] == "invoice.payment_failed"
                     and e["data"]["object"].get("customer") == acct.billing) as net:
        await advance_clock(sandbox, acct, 32)
        renewal = (await invoices_of(sandbox, acct))[0]
        pm = await set_card(sandbox, acct.billing, "pm_card_visa")
        ok(await sandbox.clients["billing"].post(f"/v1/invoices/{renewal['id']}/pay", data={"payment_method": pm}))
        await sandbox.quiesce()
        assert (await net.deliver("invoice.payment_failed")).status_code < 300
        await sandbox.quiesce()
    flow = await sandbox.wait_flow(f"failed-payment:{renewal['id']}:attempt-1")
    assert flow["status"] == "SUCCESS"
    assert (await crm_account(sandbox, acct))["At_Risk__c"] is False
    assert await _risk_ctas(sandbox, acct) == []
    assert await _hold(sandbox, acct) == ("AUTO", False)
