"""sObject CRUD, upsert, describe, ids and the business rules of each write, over the in-process app."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from mocks.crm.ids import normalize_id, to18
from tests.crm.conftest import ADMIN, TOKEN_A, A, V, create, soql

ID_RE = re.compile(r"^[A-Za-z0-9]{15}[A-Z0-5]{3}$")


async def test_create_then_read_returns_every_field_with_attributes_ids_and_clock_stamps(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(f"{V}/sobjects/Account", json={"Name": "Acme", "Industry": "Banking",
                                                                "AnnualRevenue": 5e6}, headers=A)
    assert created.status_code == 201
    body = created.json()
    assert body["success"] is True and body["errors"] == []
    account_id = body["id"]
    assert ID_RE.match(account_id) and account_id.startswith("001") and to18(account_id[:15]) == account_id
    record = (await client.get(f"{V}/sobjects/Account/{account_id}", headers=A)).json()
    assert record["attributes"] == {"type": "Account", "url": f"{V}/sobjects/Account/{account_id}"}
    assert record["Name"] == "Acme" and record["AnnualRevenue"] == 5e6 and record["Website"] is None
    assert record["CreatedDate"] == "2026-01-01T00:00:00.000+0000" == record["LastModifiedDate"]
    assert record["IsDeleted"] is False and record["At_Risk__c"] is False and record["OwnerId"].startswith("005")
    # The 15-character form of the id addresses the same record.
    assert (await client.get(f"{V}/sobjects/Account/{account_id[:15]}", headers=A)).json()["Id"] == account_id


async def test_id_prefixes_per_object(client: httpx.AsyncClient) -> None:
    account = await create(client, "Account", {"Name": "A"})
    contact = await create(client, "Contact", {"LastName": "L", "AccountId": account})
    opp = await create(client, "Opportunity", {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-02-01"})
    lead = await create(client, "Lead", {"LastName": "L", "Company": "C"})
    assert [i[:3] for i in (account, contact, opp, lead)] == ["001", "003", "006", "00Q"]
    assert normalize_id(account) == account and normalize_id("nope") is None


async def test_fields_parameter_selects_fields(client: httpx.AsyncClient) -> None:
    account = await create(client, "Account", {"Name": "Acme", "Phone": "123"})
    got = (await client.get(f"{V}/sobjects/Account/{account}", params={"fields": "Name,phone"}, headers=A)).json()
    assert set(got) == {"attributes", "Name", "Phone"}
    bad = await client.get(f"{V}/sobjects/Account/{account}", params={"fields": "Nope"}, headers=A)
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"


async def test_update_and_delete_return_204_and_move_the_clock_stamps(client: httpx.AsyncClient) -> None:
    account = await create(client, "Account", {"Name": "Acme"})
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/clock/advance", json={"by": "1h"}, headers=ADMIN)
    updated = await client.patch(f"{V}/sobjects/Account/{account}", json={"Name": "Acme 2"}, headers=A)
    assert updated.status_code == 204 and updated.content == b""
    record = (await client.get(f"{V}/sobjects/Account/{account}", headers=A)).json()
    assert record["Name"] == "Acme 2" and record["LastModifiedDate"] == "2026-01-01T01:00:00.000+0000"
    assert record["CreatedDate"] == "2026-01-01T00:00:00.000+0000"
    deleted = await client.delete(f"{V}/sobjects/Account/{account}", headers=A)
    assert deleted.status_code == 204
    gone = await client.get(f"{V}/sobjects/Account/{account}", headers=A)
    assert gone.status_code == 404 and gone.json() == [{"message": "The requested resource does not exist",
                                                        "errorCode": "NOT_FOUND"}]
    again = await client.patch(f"{V}/sobjects/Account/{account}", json={"Name": "x"}, headers=A)
    assert again.status_code == 404 and again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"


async def test_deleting_an_account_deletes_its_contacts_and_opportunities(client: httpx.AsyncClient) -> None:
    account = await create(client, "Account", {"Name": "Acme"})
    contact = await create(client, "Contact", {"LastName": "L", "AccountId": account})
    opp = await create(client, "Opportunity", {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-02-01",
                                               "AccountId": account})
    await client.delete(f"{V}/sobjects/Account/{account}", headers=A)
    assert (await client.get(f"{V}/sobjects/Contact/{contact}", headers=A)).status_code == 404
    assert (await client.get(f"{V}/sobjects/Opportunity/{opp}", headers=A)).status_code == 404
    rows = (await soql(client, "SELECT Id, IsDeleted FROM Contact", all_rows=True)).json()["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(contact, True)]


async def test_required_fields_are_reported_together(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{V}/sobjects/Opportunity", json={"Amount": 5}, headers=A)
    assert response.status_code == 400
    assert response.json() == [{"message": "Required fields are missing: [Name, StageName, CloseDate]",
                                "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name", "StageName", "CloseDate"]}]
    contact = await client.post(f"{V}/sobjects/Contact", json={"FirstName": "Ada"}, headers=A)
    assert contact.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING" and contact.json()[0]["fields"] == ["LastName"]
    account = await create(client, "Account", {"Name": "Acme"})
    nulled = await client.patch(f"{V}/sobjects/Account/{account}", json={"Name": None}, headers=A)
    assert nulled.status_code == 400 and nulled.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


async def test_unknown_and_read_only_fields_are_refused(client: httpx.AsyncClient) -> None:
    unknown = await client.post(f"{V}/sobjects/Account", json={"Name": "A", "Tier__c": "Gold"}, headers=A)
    assert unknown.status_code == 400
    assert unknown.json()[0] == {"message": "No such column 'Tier__c' on sobject of type Account",
                                 "errorCode": "INVALID_FIELD", "fields": ["Tier__c"]}
    read_only = await client.post(f"{V}/sobjects/Opportunity", json={
        "Name": "O", "StageName": "Prospecting", "CloseDate": "2026-01-01", "IsWon": True}, headers=A)
    assert read_only.status_code == 400 and read_only.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


async def test_custom_fields_declared_by_seed_become_writable_and_describable(client: httpx.AsyncClient) -> None:
    await client.get(f"{V}/limits", headers=A)  # provisions the tenant
    seeded = await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", headers=ADMIN, json={
        "demo": False, "custom_fields": {"Account": [{"name": "Tier__c", "type": "picklist",
                                                      "picklist": ["Gold", "Silver"], "restricted": True}]}})
    assert seeded.status_code == 200 and seeded.json()["custom_fields"] == ["Account.Tier__c"]
    account = await create(client, "Account", {"Name": "A", "Tier__c": "Gold"})
    assert (await client.get(f"{V}/sobjects/Account/{account}", headers=A)).json()["Tier__c"] == "Gold"
    bad = await client.patch(f"{V}/sobjects/Account/{account}", json={"Tier__c": "Bronze"}, headers=A)
    assert bad.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    describe = (await client.get(f"{V}/sobjects/Account/describe", headers=A)).json()
    tier = next(f for f in describe["fields"] if f["name"] == "Tier__c")
    assert tier["custom"] is True and [p["value"] for p in tier["picklistValues"]] == ["Gold", "Silver"]
    ext = next(f for f in describe["fields"] if f["name"] == "External_Id__c")
    assert ext["externalId"] is True and ext["type"] == "string" and ext["nillable"] is True
    name = next(f for f in describe["fields"] if f["name"] == "Name")
    assert name["nillable"] is False and name["updateable"] is True and name["custom"] is False


async def test_restricted_picklist_and_derived_opportunity_fields(client: httpx.AsyncClient) -> None:
    bad = await client.post(f"{V}/sobjects/Opportunity", json={"Name": "O", "StageName": "Dreaming",
                                                               "CloseDate": "2026-01-01"}, headers=A)
    assert bad.status_code == 400
    assert bad.json() == [{"message": "StageName: bad value for restricted picklist field: Dreaming",
                           "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["StageName"]}]
    opp = await create(client, "Opportunity", {"Name": "O", "StageName": "Closed Won", "CloseDate": "2026-01-01",
                                               "Amount": 1000})
    got = (await client.get(f"{V}/sobjects/Opportunity/{opp}", headers=A)).json()
    assert (got["IsClosed"], got["IsWon"], got["Probability"], got["ExpectedRevenue"]) == (True, True, 100, 1000)
    await client.patch(f"{V}/sobjects/Opportunity/{opp}", json={"StageName": "Closed Lost"}, headers=A)
    got = (await client.get(f"{V}/sobjects/Opportunity/{opp}", headers=A)).json()
    assert (got["IsClosed"], got["IsWon"], got["Probability"]) == (True, False, 0)


async def test_bad_json_and_bad_types_are_json_parser_errors(client: httpx.AsyncClient) -> None:
    for content in (b"{not json", b"[1, 2]", b"", b"\xff\xfe"):
        response = await client.post(f"{V}/sobjects/Account", content=content, headers=A)
        assert response.status_code == 400 and response.json()[0]["errorCode"] == "JSON_PARSER_ERROR", content
    for field, value in (("AnnualRevenue", "lots"), ("NumberOfEmployees", 1.5), ("At_Risk__c", "maybe"),
                         ("Renewal_Date__c", "tomorrow"), ("Name", {"a": 1})):
        response = await client.post(f"{V}/sobjects/Account", json={"Name": "A", field: value}, headers=A)
        assert response.status_code == 400 and response.json()[0]["errorCode"] == "JSON_PARSER_ERROR", field
    email = await client.post(f"{V}/sobjects/Contact", json={"LastName": "L", "Email": "nope"}, headers=A)
    assert email.json()[0]["errorCode"] == "INVALID_EMAIL_ADDRESS"


async def test_lookups_must_point_at_live_records_of_the_right_type(client: httpx.AsyncClient) -> None:
    contact = await create(client, "Contact", {"LastName": "L"})
    wrong_type = await client.post(f"{V}/sobjects/Contact", json={"LastName": "L", "AccountId": contact}, headers=A)
    assert wrong_type.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    malformed = await client.post(f"{V}/sobjects/Contact", json={"LastName": "L", "AccountId": "xyz"}, headers=A)
    assert malformed.json()[0]["errorCode"] == "MALFORMED_ID"
    account = await create(client, "Account", {"Name": "A"})
    await client.delete(f"{V}/sobjects/Account/{account}", headers=A)
    dead = await client.post(f"{V}/sobjects/Contact", json={"LastName": "L", "AccountId": account}, headers=A)
    assert dead.json()[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


async def test_upsert_by_external_id_creates_then_updates_then_reports_duplicates(
    client: httpx.AsyncClient,
) -> None:
    url = f"{V}/sobjects/Account/External_Id__c/EXT-1"
    first = await client.patch(url, json={"Name": "Acme"}, headers=A)
    assert first.status_code == 201
    assert first.json() == {"id": first.json()["id"], "success": True, "errors": [], "created": True}
    second = await client.patch(url, json={"Name": "Acme Renamed"}, headers=A)
    assert second.status_code == 204
    by_ext = (await client.get(f"{V}/sobjects/Account/External_Id__c/ext-1", headers=A)).json()
    assert by_ext["Id"] == first.json()["id"] and by_ext["Name"] == "Acme Renamed"
    await create(client, "Account", {"Name": "Twin", "External_Id__c": "EXT-1"})
    dup = await client.patch(url, json={"Name": "x"}, headers=A)
    assert dup.status_code == 300
    assert len(dup.json()) == 2 and all(u.startswith(f"{V}/sobjects/Account/001") for u in dup.json())
    not_ext = await client.patch(f"{V}/sobjects/Account/Name/Acme", json={"Name": "x"}, headers=A)
    assert not_ext.status_code == 404 and not_ext.json()[0]["errorCode"] == "NOT_FOUND"
    missing = await client.patch(f"{V}/sobjects/Account/External_Id__c/EXT-2", json={"Phone": "1"}, headers=A)
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


async def test_unknown_object_record_and_route_are_not_found(client: httpx.AsyncClient) -> None:
    for path in (f"{V}/sobjects/Widget/describe", f"{V}/sobjects/Account/001000000000000AAA",
                 f"{V}/sobjects/Account/garbage", "/services/data/v12.0/sobjects", "/services/data/v60.0/nope"):
        response = await client.get(path, headers=A)
        assert response.status_code == 404 and response.json()[0]["errorCode"] == "NOT_FOUND", path
        assert response.headers["sforce-limit-info"].startswith("api-usage="), path


async def test_discovery_endpoints(client: httpx.AsyncClient) -> None:
    versions = (await client.get("/services/data", headers=A)).json()
    assert [v["version"] for v in versions] == ["59.0", "60.0"]
    assert versions[1]["url"] == "/services/data/v60.0"
    resources = (await client.get(V, headers=A)).json()
    assert resources["query"] == f"{V}/query" and resources["sobjects"] == f"{V}/sobjects"
    glob = (await client.get(f"{V}/sobjects", headers=A)).json()
    assert {o["name"]: o["keyPrefix"] for o in glob["sobjects"]} == {
        "Account": "001", "Contact": "003", "Opportunity": "006", "Lead": "00Q"}
    info = (await client.get(f"{V}/sobjects/account", headers=A)).json()
    assert info["objectDescribe"]["name"] == "Account"


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    from tests.crm.conftest import B

    account = await create(client, "Account", {"Name": "Mine"})
    assert (await client.get(f"{V}/sobjects/Account/{account}", headers=B)).status_code == 404
    rows = (await soql(client, "SELECT Id FROM Account", headers=B)).json()
    assert rows["totalSize"] == 0
    assert (await soql(client, "SELECT Id FROM Account")).json()["totalSize"] == 1


async def test_same_seed_gives_the_same_ids_in_a_fresh_app() -> None:
    from tests.crm.conftest import make_app

    ids = []
    for _ in range(2):
        app: FastAPI = make_app(seed=7)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://crm.test") as c:
            ids.append(await create(c, "Account", {"Name": "A"}))
    assert ids[0] == ids[1]
