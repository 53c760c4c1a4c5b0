"""Flow 4, contract amendment: an upgrade mid-term with proration -> ERP order amended, the prorated invoice
synced to the ERP, CS ARR / MRR / renewal date and an entitlement timeline entry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lockstep.sandbox import Sandbox
from tests.integration.test_flow_invoice_sync import (
    advance_clock,
    erp_invoice,
    flows_for,
    invoices_of,
    ok,
    setup_account,
)

RECORD = "/services/rest/record/v1"


async def test_amendment_upgrade_mid_term(sandbox: Sandbox) -> None:
    acct = await setup_account(sandbox, unit_amount=1000, quantity=10)
    erp, billing, cs = (sandbox.clients[s] for s in ("erp", "billing", "cs"))
    before = ok(await erp.get(f"{RECORD}/salesOrder/{acct.order}"))
    await advance_clock(sandbox, acct, 15)

    sub = ok(await billing.post(f"/v1/subscriptions/{acct.subscription}", data={
        "items[0][id]": acct.items[0]["id"], "items[0][quantity]": 20, "proration_behavior": "always_invoice"}))
    await sandbox.quiesce()

    # ERP: the order amended to the new quantity at the annual rate (a new revision)
    order = ok(await erp.get(f"{RECORD}/salesOrder/{acct.order}", params={"expandSubResources": "true"}))
    assert order["revision"] > before["revision"]
    assert order["total"] == pytest.approx(2400.0)  # 20 x 10.00 x 12 = the new ARR
    [line] = order["item"]["items"]
    assert line["quantity"] == 20 and line["rate"] == pytest.approx(120.0)
    # the prorated invoice, in billing and in the ERP with the same amount
    proration = (await invoices_of(sandbox, acct))[0]
    assert proration["id"] == sub["latest_invoice"] and proration["billing_reason"] == "subscription_update"
    assert 0 < proration["total"] < 10_000
    synced = await erp_invoice(sandbox, proration["id"])
    assert synced is not None and synced["total"] == pytest.approx(proration["total"] / 100)
    assert synced["createdFrom"]["id"] == acct.order
    # CS: ARR / MRR in major units from integer minor units, renewal date = period end
    query = {"select": [], "limit": 1, "offset": 0,
             "where": {"conditions": [{"name": "Gsid", "operator": "EQ", "value": [acct.cs]}]}}
    [company] = ok(await cs.post("/v1/data/objects/query/Company", json=query))["data"]["records"]
    assert company["ARR"] == pytest.approx(2400.0) and company["MRR"] == pytest.approx(200.0)
    period_end = datetime.fromtimestamp(sub["current_period_end"], UTC).date().isoformat()
    assert company["RenewalDate"] == period_end
    flows = await flows_for(sandbox, f"amendment:{acct.subscription}:")
    assert len(flows) == 1 and flows[0]["status"] == "SUCCESS", flows
    activities = ok(await cs.get("/v1/ant/timeline/activity", params={"companyId": acct.cs}))["data"]
    rows = activities["records"] if isinstance(activities, dict) else activities
    assert [a for a in rows if a.get("ExternalId") == f"{flows[0]['workflow_id']}:entitlement"]


async def test_amendment_duplicate_and_stale_event(sandbox: Sandbox) -> None:
    """The same amendment event twice -> one flow; an older amendment delivered after a newer one writes the
    current items (re-read from billing), not the event's copy."""
    from tests.integration.test_flow_invoice_sync import Interceptor

    acct = await setup_account(sandbox, unit_amount=500, quantity=4)
    billing, erp = sandbox.clients["billing"], sandbox.clients["erp"]
    with Interceptor(sandbox, lambda e: e["type"] == "customer.subscription.updated"
                     and e["data"]["object"].get("id") == acct.subscription) as net:
        for quantity in (6, 8):
            ok(await billing.post(f"/v1/subscriptions/{acct.subscription}", data={
                "items[0][id]": acct.items[0]["id"], "items[0][quantity]": quantity,
                "proration_behavior": "none"}))
        await sandbox.quiesce()
        first, second = net.held[0], net.held[1]
        for _event, headers, body in (second, first, first):  # newer first, then the stale one, twice
            r = await sandbox.core.post("/webhooks/billing", content=body, headers=headers)
            assert r.status_code < 300, r.text
        await sandbox.quiesce()
    flows = await flows_for(sandbox, f"amendment:{acct.subscription}:")
    assert sorted(f["workflow_id"] for f in flows) == sorted(
        f"amendment:{acct.subscription}:{e['id']}" for e in (first[0], second[0]))
    order = ok(await erp.get(f"{RECORD}/salesOrder/{acct.order}", params={"expandSubResources": "true"}))
    assert order["item"]["items"][0]["quantity"] == 8  # the current state won, not the stale event's 6
