"""Sandbox user actions (merge, close, edit, undelete) and the change events they and the API emit,
delivered as signed webhooks to an in-process receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from mocks.crm.events import verify_signature
from mocks.kernel.webhooks import DeliveryRoutes
from tests.crm.conftest import ADMIN, TOKEN_A, A, V, action, create, make_app, soql

SECRET = "whsec_crm_test"


@pytest.fixture
async def wired() -> AsyncIterator[tuple[httpx.AsyncClient, list[tuple[bytes, dict[str, str]]]]]:
    received: list[tuple[bytes, dict[str, str]]] = []
    receiver = FastAPI()

    @receiver.post("/hooks/crm")
    async def hook(request: Request) -> dict[str, bool]:
        received.append((await request.body(), dict(request.headers)))
        return {"ok": True}

    routes = DeliveryRoutes()
    routes.register("http://receiver.test", receiver)
    app = make_app(routes=routes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://crm.test") as c:
        await c.get(f"{V}/limits", headers=A)  # provisions the tenant
        endpoint = await c.post(f"/_sandbox/tenants/{TOKEN_A}/webhooks/endpoints", headers=ADMIN,
                                json={"url": "http://receiver.test/hooks/crm", "secret": SECRET})
        assert endpoint.status_code == 201
        yield c, received


async def drain(client: httpx.AsyncClient) -> None:
    drained = await client.post(f"/_sandbox/tenants/{TOKEN_A}/webhooks/drain", headers=ADMIN)
    assert drained.json()["drained"] is True


def payloads(received: list[tuple[bytes, dict[str, str]]]) -> list[dict[str, Any]]:
    return [json.loads(body) for body, _ in received]


async def test_api_writes_emit_signed_change_events(
    wired: tuple[httpx.AsyncClient, list[tuple[bytes, dict[str, str]]]],
) -> None:
    client, received = wired
    account = await create(client, "Account", {"Name": "Acme", "Industry": "Banking"})
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/clock/advance", json={"by": "1m"}, headers=ADMIN)
    await client.patch(f"{V}/sobjects/Account/{account}", json={"Industry": "Energy"}, headers=A)
    await client.delete(f"{V}/sobjects/Account/{account}", headers=A)
    await action(client, {"action": "undelete", "object": "Account", "id": account})
    await drain(client)
    events = payloads(received)
    headers = [e["payload"]["ChangeEventHeader"] for e in events]
    assert [h["changeType"] for h in headers] == ["CREATE", "UPDATE", "DELETE", "UNDELETE"]
    assert all(h["entityName"] == "Account" and h["recordIds"] == [account] for h in headers)
    assert [e["event"]["replayId"] for e in events] == [1, 2, 3, 4]
    assert events[0]["payload"]["Name"] == "Acme" and headers[0]["commitTimestamp"] == 1_767_225_600_000
    assert headers[1]["changedFields"] == ["Industry", "LastModifiedDate"]
    assert events[1]["payload"]["Industry"] == "Energy" and "Name" not in events[1]["payload"]
    assert headers[1]["commitTimestamp"] == 1_767_225_660_000
    assert headers[0]["changeOrigin"].startswith("com/salesforce/api/rest") and headers[3]["changeOrigin"] == ""
    for body, request_headers in received:
        assert verify_signature(body, request_headers["x-lockstep-signature"], SECRET)
        assert not verify_signature(body, request_headers["x-lockstep-signature"], "wrong-secret")
        assert not verify_signature(body + b" ", request_headers["x-lockstep-signature"], SECRET)


async def test_merge_reparents_children_and_hides_losers_from_query_but_not_query_all(
    wired: tuple[httpx.AsyncClient, list[tuple[bytes, dict[str, str]]]],
) -> None:
    client, received = wired
    master = await create(client, "Account", {"Name": "Acme", "Phone": "111"})
    loser1 = await create(client, "Account", {"Name": "ACME Inc", "Phone": "222", "Website": "https://acme.test"})
    loser2 = await create(client, "Account", {"Name": "Acme GmbH"})
    contact = await create(client, "Contact", {"LastName": "Lovelace", "AccountId": loser1})
    opp = await create(client, "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-03-01",
                                               "AccountId": loser2})
    await drain(client)
    received.clear()
    merged = await action(client, {"action": "merge", "object": "Account", "master": master,
                                   "losers": [loser1, loser2], "take": {"Website": loser1}})
    assert merged.status_code == 200, merged.text
    assert merged.json()["reparented"] == {"Contact": [contact], "Opportunity": [opp]}
    kept = (await client.get(f"{V}/sobjects/Account/{master}", headers=A)).json()
    assert (kept["Name"], kept["Phone"], kept["Website"]) == ("Acme", "111", "https://acme.test")
    moved = (await client.get(f"{V}/sobjects/Contact/{contact}", headers=A)).json()
    assert moved["AccountId"] == master
    live = (await soql(client, "SELECT Id FROM Account")).json()["records"]
    assert [r["Id"] for r in live] == [master]
    every = (await soql(client, "SELECT Id, IsDeleted, MasterRecordId FROM Account ORDER BY CreatedDate",
                        all_rows=True)).json()["records"]
    assert {r["Id"]: (r["IsDeleted"], r["MasterRecordId"]) for r in every} == {
        master: (False, None), loser1: (True, master), loser2: (True, master)}
    await drain(client)
    headers = [e["payload"]["ChangeEventHeader"] for e in payloads(received)]
    assert [(h["entityName"], h["changeType"], h["recordIds"]) for h in headers] == [
        ("Account", "UPDATE", [master]), ("Account", "DELETE", [loser1]), ("Account", "DELETE", [loser2]),
        ("Contact", "UPDATE", [contact]), ("Opportunity", "UPDATE", [opp])]
    assert len({h["transactionKey"] for h in headers}) == 1
    assert [h["sequenceNumber"] for h in headers] == [1, 2, 3, 4, 5]
    assert payloads(received)[1]["payload"]["MasterRecordId"] == master
    assert "Website" in headers[0]["changedFields"]


async def test_merge_rules_are_enforced(client: httpx.AsyncClient) -> None:
    ids = [await create(client, "Account", {"Name": f"A{i}"}) for i in range(4)]
    contact = await create(client, "Contact", {"LastName": "L"})
    opp = await create(client, "Opportunity", {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-01-02"})
    bad_bodies = [
        {"object": "Account", "master": ids[0], "losers": ids[1:4]},  # three losers
        {"object": "Account", "master": ids[0], "losers": []},
        {"object": "Account", "master": ids[0], "losers": [ids[0]]},
        {"object": "Account", "master": ids[0], "losers": [ids[1], ids[1]]},
        {"object": "Opportunity", "master": opp, "losers": [opp]},
        {"object": "Account", "master": ids[0], "losers": [ids[1]], "take": {"Name": ids[2]}},
    ]
    for body in bad_bodies:
        response = await action(client, {"action": "merge", **body})
        assert response.status_code == 400, body
    wrong_object = await action(client, {"action": "merge", "object": "Account", "master": ids[0],
                                         "losers": [contact]})
    assert wrong_object.status_code == 404
    assert (await action(client, {"action": "teleport"})).status_code == 400
    assert len((await soql(client, "SELECT Id FROM Account")).json()["records"]) == 4


async def test_close_opportunity_and_edit_actions(client: httpx.AsyncClient) -> None:
    opp = await create(client, "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-03-01"})
    won = await action(client, {"action": "close_opportunity", "id": opp, "won": True})
    assert won.json() == {"id": opp, "StageName": "Closed Won", "IsClosed": True, "IsWon": True}
    lost = await action(client, {"action": "close_opportunity", "id": opp, "won": False})
    assert (lost.json()["StageName"], lost.json()["IsWon"]) == ("Closed Lost", False)
    assert (await action(client, {"action": "close_opportunity", "id": opp, "won": "yes"})).status_code == 400
    account = await create(client, "Account", {"Name": "Acme"})
    edited = await action(client, {"action": "edit", "object": "Account", "id": account,
                                   "fields": {"At_Risk__c": True, "Health_Score__c": 31}})
    assert edited.status_code == 200 and "At_Risk__c" in edited.json()["changedFields"]
    got = (await client.get(f"{V}/sobjects/Account/{account}", headers=A)).json()
    assert got["At_Risk__c"] is True and got["Health_Score__c"] == 31
    refused = await action(client, {"action": "edit", "object": "Account", "id": account, "fields": {"Nope__c": 1}})
    assert refused.status_code == 400 and "INVALID_FIELD" in refused.json()["error"]["message"]


async def test_seed_demo_is_deterministic_and_explicit_records_resolve_refs(client: httpx.AsyncClient) -> None:
    await client.get(f"{V}/limits", headers=A)
    demo = await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", headers=ADMIN, json={})
    assert demo.json()["demo"] == {"Account": 30, "Contact": 60, "Opportunity": 30, "Lead": 10}
    explicit = await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", headers=ADMIN, json={"records": {
        "Account": [{"@ref": "acme", "Name": "Acme Explicit"}],
        "Contact": [{"LastName": "Ref", "AccountId": "@acme"}]}})
    created = explicit.json()["created"]
    contact = (await client.get(f"{V}/sobjects/Contact/{created['Contact'][0]}", headers=A)).json()
    assert contact["AccountId"] == created["Account"][0]
    other = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="https://crm.test") as c2:
        await c2.get(f"{V}/limits", headers=A)
        await c2.post(f"/_sandbox/tenants/{TOKEN_A}/seed", headers=ADMIN, json={})
        q = "SELECT Id, Name, Industry FROM Account WHERE Name != 'Acme Explicit' ORDER BY Id"
        again = (await soql(c2, q)).json()["records"]
    assert again == (await soql(client, q)).json()["records"] and len(again) == 30
    bad = await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", headers=ADMIN,
                            json={"records": {"Contact": [{"FirstName": "no last name"}]}})
    assert bad.status_code == 400 and "REQUIRED_FIELD_MISSING" in bad.json()["error"]["message"]


async def test_snapshot_restore_keeps_records_and_custom_fields(client: httpx.AsyncClient) -> None:
    await client.get(f"{V}/limits", headers=A)
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", headers=ADMIN, json={
        "custom_fields": {"Account": [{"name": "Tier__c", "type": "string"}]}})
    account = await create(client, "Account", {"Name": "Keep", "Tier__c": "Gold"})
    snap = (await client.get(f"/_sandbox/tenants/{TOKEN_A}/snapshot", headers=ADMIN)).json()
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/reset", headers=ADMIN)
    assert (await client.get(f"{V}/sobjects/Account/{account}", headers=A)).status_code == 404
    restored = await client.post(f"/_sandbox/tenants/{TOKEN_A}/restore", json=snap, headers=ADMIN)
    assert restored.status_code == 200
    assert (await client.get(f"{V}/sobjects/Account/{account}", headers=A)).json()["Tier__c"] == "Gold"
