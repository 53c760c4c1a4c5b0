"""CTAs (create / update / close rules), success plans, milestones and the clock jobs behind them."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.cs.conftest import ADMIN, KEY_A, A, assert_error, insert, query, tenant_of, where


async def new_cta(client: httpx.AsyncClient, company: str, **extra: Any) -> dict[str, Any]:
    body = {"requests": [{"Name": "Usage dropped", "CompanyId": company, "TypeName": "Risk", **extra}]}
    r = await client.post("/v2/cockpit/cta", json=body, headers=A)
    assert r.status_code == 200, r.text
    return r.json()["data"]["records"][0]


async def advance(client: httpx.AsyncClient, by: str) -> None:
    r = await client.post(f"/_sandbox/tenants/{KEY_A}/clock/advance", json={"by": by}, headers=ADMIN)
    assert r.status_code == 200, r.text


async def test_cta_defaults_and_close(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    cta = await new_cta(client, gsid, OwnerId="csm@example.com")
    assert cta["Gsid"].startswith("1S01")
    assert (cta["StatusName"], cta["PriorityName"], cta["IsClosed"]) == ("Open", "Medium", False)
    assert cta["DueDate"] == "2026-01-08"  # seven days after the sandbox clock's start
    r = await client.post(f"/v2/cockpit/cta/{cta['Gsid']}/close", json={}, headers=A)
    closed = r.json()["data"]
    assert closed["StatusName"] == "Closed Success" and closed["IsClosed"] is True
    assert closed["ClosedDate"] == "2026-01-01T00:00:00Z"
    assert_error(await client.post(f"/v2/cockpit/cta/{cta['Gsid']}/close", json={}, headers=A), 400, "GS_2010")
    r = await client.get("/v2/cockpit/cta", params={"companyId": gsid, "status": "Closed Success"}, headers=A)
    assert r.json()["data"]["count"] == 1


async def test_closed_lost_needs_a_reason_and_closed_ctas_only_reopen(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    cta = await new_cta(client, gsid)
    url = f"/v2/cockpit/cta/{cta['Gsid']}/close"
    assert_error(await client.post(url, json={"StatusName": "Closed Lost"}, headers=A), 400, "GSOBJ_1007")
    assert_error(await client.post(url, json={"StatusName": "Open"}, headers=A), 400, "GSOBJ_1008")
    r = await client.post(url, json={"StatusName": "Closed Lost", "ReasonName": "Churned to rival"}, headers=A)
    assert r.json()["data"]["ReasonName"] == "Churned to rival"
    update = {"requests": [{"Gsid": cta["Gsid"], "PriorityName": "High"}]}
    assert_error(await client.put("/v2/cockpit/cta", json=update, headers=A), 400, "GS_2010")
    bad_move = {"requests": [{"Gsid": cta["Gsid"], "StatusName": "Work In Progress"}]}
    assert_error(await client.put("/v2/cockpit/cta", json=bad_move, headers=A), 400, "GS_2010")
    reopen = {"requests": [{"Gsid": cta["Gsid"], "StatusName": "Open", "PriorityName": "High"}]}
    reopened = (await client.put("/v2/cockpit/cta", json=reopen, headers=A)).json()["data"]["records"][0]
    assert (reopened["StatusName"], reopened["IsClosed"], reopened["ClosedDate"]) == ("Open", False, None)
    assert reopened["PriorityName"] == "High"


async def test_cta_validation(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    base = {"Name": "x", "CompanyId": gsid, "TypeName": "Risk"}
    for row, code in [({**base, "TypeName": "Party"}, "GSOBJ_1008"), ({**base, "CompanyId": "nope"}, "GSOBJ_1008"),
                      ({"Name": "x", "CompanyId": gsid}, "GSOBJ_1007"), ({**base, "DueDate": "soon"}, "GSOBJ_1006"),
                      ({**base, "StatusName": "Closed Success"}, "GS_2010")]:
        assert_error(await client.post("/v2/cockpit/cta", json={"requests": [row]}, headers=A), 400, code)
    assert_error(await client.post("/v2/cockpit/cta", json={"requests": [base] * 51}, headers=A), 400, "GS_2003")
    assert_error(await client.get("/v2/cockpit/cta/1S01NOPE", headers=A), 404, "GS_3004")
    missing = {"requests": [{"Gsid": "1S01NOPE", "Name": "y"}]}
    assert_error(await client.put("/v2/cockpit/cta", json=missing, headers=A), 404, "GS_3004")


async def test_plan_from_template_schedules_milestones(app: FastAPI, client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "Stage": "Onboarding"})
    r = await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName": "Standard Onboarding",
                                                          "StartDate": "2026-01-10"}, headers=A)
    plan = r.json()["data"]
    assert plan["Status"] == "Active" and plan["StartDate"] == "2026-01-10"
    assert [(m["Name"], m["DueDate"], m["Status"]) for m in plan["Milestones"][:2]] == [
        ("Kickoff call", "2026-01-13", "Open"), ("Technical setup", "2026-01-24", "Open")]
    assert plan["DueDate"] == "2026-02-24"
    assert len(tenant_of(app).clock.pending()) == 5
    again = await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName":
                                                               "Standard Onboarding"}, headers=A)
    assert_error(again, 400, "GSOBJ_1009")
    assert_error(await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName": "Yoga"},
                                   headers=A), 400, "GSOBJ_1008")
    r = await client.get("/v2/cockpit/successplan/templates", headers=A)
    assert [t["Name"] for t in r.json()["data"]["records"]] == ["Standard Onboarding", "Enterprise Onboarding",
                                                                 "Renewal Readiness"]


async def test_milestones_become_overdue_by_clock(app: FastAPI, client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    plan = (await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName":
                                                               "Renewal Readiness"}, headers=A)).json()["data"]
    first, second, _ = (m["Gsid"] for m in plan["Milestones"])
    # Due 2026-01-08: still open on the due date itself, overdue once that day is over.
    await advance(client, "7d")
    status = {m["Gsid"]: m["Status"] for m in (await client.get(f"/v2/cockpit/successplan/{plan['Gsid']}",
                                                                headers=A)).json()["data"]["Milestones"]}
    assert status[first] == "Open"
    r = await client.post(f"/v2/cockpit/successplan/milestone/{second}/complete", headers=A)
    assert r.status_code == 200
    await advance(client, "30d")
    status = {m["Gsid"]: m["Status"] for m in (await client.get(f"/v2/cockpit/successplan/{plan['Gsid']}",
                                                                headers=A)).json()["data"]["Milestones"]}
    assert status[first] == "Overdue" and status[second] == "Completed"
    # An overdue milestone can still be completed; a completed one cannot be completed twice.
    assert (await client.post(f"/v2/cockpit/successplan/milestone/{first}/complete", headers=A)).status_code == 200
    assert_error(await client.post(f"/v2/cockpit/successplan/milestone/{first}/complete", headers=A),
                 400, "GS_2010")
    assert_error(await client.post("/v2/cockpit/successplan/milestone/1S03NOPE/complete", headers=A),
                 404, "GS_3004")


async def test_completing_an_onboarding_plan_moves_the_company_to_adopting(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "Stage": "Kick Off"})
    plan = (await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName":
                                                               "Standard Onboarding"}, headers=A)).json()["data"]
    for milestone in plan["Milestones"][:-1]:
        await client.post(f"/v2/cockpit/successplan/milestone/{milestone['Gsid']}/complete", headers=A)
        assert (await query(client, {}))[0]["Stage"] == "Kick Off"
    r = await client.post(f"/v2/cockpit/successplan/milestone/{plan['Milestones'][-1]['Gsid']}/complete", headers=A)
    done = r.json()["data"]
    assert done["Status"] == "Completed" and done["CompletedDate"]
    assert (await query(client, {}))[0]["Stage"] == "Adopting"
    # A new plan from the same template is allowed once the first is completed.
    again = await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName":
                                                               "Standard Onboarding"}, headers=A)
    assert again.status_code == 200


async def test_renewal_reminder_opens_one_renewal_cta(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "RenewalDate": "2026-06-30", "CSM": "csm@example.com"})
    await advance(client, "60d")  # 2026-03-02: reminder due 2026-04-01
    r = await client.get("/v2/cockpit/cta", params={"companyId": gsid}, headers=A)
    assert r.json()["data"]["count"] == 0
    await advance(client, "31d")
    ctas = (await client.get("/v2/cockpit/cta", params={"companyId": gsid}, headers=A)).json()["data"]["records"]
    assert [(c["TypeName"], c["DueDate"], c["OwnerId"]) for c in ctas] == [("Renewal", "2026-06-30",
                                                                            "csm@example.com")]
    # Moving the renewal date reschedules; an open renewal CTA is not duplicated.
    await insert(client, {"Name": "Acme", "RenewalDate": "2026-07-15"}, keys="Name")
    await advance(client, "30d")
    r = await client.get("/v2/cockpit/cta", params={"companyId": gsid, "status": "Open"}, headers=A)
    assert r.json()["data"]["count"] == 1


async def test_company_filter_on_ctas_by_query(client: httpx.AsyncClient) -> None:
    [a, b] = await insert(client, {"Name": "A"}, {"Name": "B"})
    await new_cta(client, a)
    await new_cta(client, b)
    r = await client.get("/v2/cockpit/cta", params={"companyId": b}, headers=A)
    assert [c["CompanyId"] for c in r.json()["data"]["records"]] == [b]
    assert len(await query(client, {"where": where(("Name", "EQ", "A"))})) == 1
