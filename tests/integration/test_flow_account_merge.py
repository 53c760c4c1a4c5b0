"""Flow 5, account merge, end to end: a CRM merge (2-way and 3-way) re-points ERP, billing and CS to the
surviving account: one active customer / company per system, nothing orphaned, crosswalk aliases resolve."""

from __future__ import annotations

from typing import Any

from core.flows._common import crosswalk
from lockstep.sandbox import Sandbox
from tests.integration.test_flow_lead_to_cash import (
    ERP,
    assert_one_of_everything,
    billing_subscriptions,
    cs_call,
    run_deal,
)


async def _booked(sandbox: Sandbox, n: int) -> list[dict[str, Any]]:
    """n accounts, each through lead to cash (so each has an ERP customer + order, billing customer +
    subscription + open invoice, CS company + plan)."""
    out = []
    for _ in range(n):
        deal, flow = await run_deal(sandbox)
        assert flow["status"] == "SUCCESS", flow
        ids = await assert_one_of_everything(sandbox, deal)
        # A second, unbilled order entered in the ERP by hand: must follow the account in a merge.
        r = await sandbox.clients["erp"].post(f"{ERP}/salesOrder", json={
            "entity": {"id": ids["erp"]}, "item": {"items": [{"item": {"externalId": "ITEM-SEAT"}, "quantity": 2}]}})
        assert r.status_code == 204, r.text
        out.append({**deal, **ids, "spare_order": r.headers["location"].rsplit("/", 1)[1]})
    return out


async def _merge(sandbox: Sandbox, master: dict[str, Any], losers: list[dict[str, Any]]) -> dict[str, Any]:
    before = {f["workflow_id"] for f in await sandbox.flows(flow="account_merge", limit=500)}
    r = await sandbox.control("crm").post("/actions", json={
        "action": "merge", "object": "Account", "master": master["account"],
        "losers": [loser["account"] for loser in losers]})
    assert r.status_code == 200, r.text
    await sandbox.quiesce()
    started = [f for f in await sandbox.flows(flow="account_merge", limit=500) if f["workflow_id"] not in before]
    assert len(started) == 1, started  # one merge transaction -> one flow, however many DELETE events
    return await sandbox.wait_flow(started[0]["workflow_id"])


async def _assert_repointed(sandbox: Sandbox, winner: dict[str, Any], losers: list[dict[str, Any]]) -> None:
    erp, billing = sandbox.clients["erp"], sandbox.clients["billing"]
    xw = crosswalk()
    # Crosswalk: every loser resolves to the winner; its native ids stay reachable as aliases.
    assert xw.resolve(winner["canonical"]) == winner["canonical"]
    aliases = {(a.system, a.native_id) for a in xw.aliases(winner["canonical"])}
    for loser in losers:
        assert xw.resolve(loser["canonical"]) == winner["canonical"]
        assert xw.lookup("account", "crm", loser["account"]) == winner["canonical"]
        assert {("erp", loser["erp"]), ("billing", loser["billing"]), ("cs", loser["cs"])} <= aliases
    assert [r.loser for r in xw.history(winner["canonical"])] == [loser["canonical"] for loser in losers] or \
        {r.loser for r in xw.history(winner["canonical"])} == {loser["canonical"] for loser in losers}
    # ERP: one active customer; the losers' unbilled orders now belong to the winner's customer, billed ones
    # (invoiced by the invoice sync) keep theirs, on the inactive customer the crosswalk resolves to the winner.
    customers = [(await erp.get(f"{ERP}/customer/{x['erp']}")).json() for x in [winner, *losers]]
    assert [c["isInactive"] for c in customers] == [False] + [True] * len(losers), customers
    for loser in losers:
        spare = (await erp.get(f"{ERP}/salesOrder/{loser['spare_order']}")).json()
        assert spare["entity"]["id"] == winner["erp"], spare
        order = (await erp.get(f"{ERP}/salesOrder/{loser['order']}")).json()
        status = order["status"] if isinstance(order["status"], str) else order["status"]["refName"]
        assert order["entity"]["id"] == winner["erp"] or (status == "Billed" and order["entity"]["id"] == loser["erp"])
    # Billing: one customer not marked merged; every live subscription points at the winner's account.
    states = [(await billing.get(f"/v1/customers/{x['billing']}")).json() for x in [winner, *losers]]
    assert [c["metadata"].get("lockstep_status") for c in states] == ["active"] + ["merged"] * len(losers)
    for x in [winner, *losers]:
        live = [s for s in await billing_subscriptions(sandbox, x["billing"]) if s["status"] != "canceled"]
        assert len(live) == 1 and live[0]["metadata"]["lockstep_account"] == winner["canonical"], live
        assert live[0]["metadata"]["lockstep_billing_customer"] == winner["billing"]
    for loser in losers:  # the loser's invoices stay on its customer, reachable through the crosswalk alias
        invoices = (await billing.get("/v1/invoices", params={"customer": loser["billing"]})).json()["data"]
        assert invoices, "the loser's subscription should have invoiced"
    # CS: one active company (the winner's) with the summed ARR; the losers' are inactive.
    query = {"select": ["Gsid", "Status", "ARR"], "limit": 50, "offset": 0, "where": {"conditions": [
        {"name": "Gsid", "operator": "IN", "value": [x["cs"] for x in [winner, *losers]]}]}}
    found = (await cs_call(sandbox, "POST", "/v1/data/objects/query/Company", json=query))["records"]
    rows = {r["Gsid"]: r for r in found}
    assert rows[winner["cs"]]["Status"] == "Active"
    assert rows[winner["cs"]]["ARR"] == 24000.0 * (1 + len(losers))
    assert [rows[x["cs"]]["Status"] for x in losers] == ["Inactive"] * len(losers)


async def test_two_way_merge_repoints_everything_to_the_survivor(sandbox: Sandbox) -> None:
    winner, loser = await _booked(sandbox, 2)
    flow = await _merge(sandbox, winner, [loser])
    assert flow["status"] == "SUCCESS", flow
    await _assert_repointed(sandbox, winner, [loser])


async def test_three_way_merge_is_one_flow_and_repoints_everything(sandbox: Sandbox) -> None:
    winner, *losers = await _booked(sandbox, 3)
    flow = await _merge(sandbox, winner, losers)
    assert flow["status"] == "SUCCESS", flow
    await _assert_repointed(sandbox, winner, losers)


async def test_merge_of_accounts_never_synced_only_aliases_the_crosswalk(sandbox: Sandbox) -> None:
    from tests.integration.test_flow_lead_to_cash import new_deal

    a, b = await new_deal(sandbox), await new_deal(sandbox)
    flow = await _merge(sandbox, a, [b])
    assert flow["status"] == "SUCCESS", flow
    xw = crosswalk()
    assert xw.lookup("account", "crm", b["account"]) == xw.lookup("account", "crm", a["account"])
    assert set(xw.refs(xw.lookup("account", "crm", a["account"]))) == {"crm"}
