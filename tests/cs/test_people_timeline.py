"""Person API (upsert by Email) and timeline activities (ExternalId dedupe)."""

from __future__ import annotations

import httpx

from tests.cs.conftest import A, assert_error, insert, query, where


async def test_person_upsert_by_email_is_case_insensitive(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    r = await client.put("/v1.0/api/people", headers=A,
                         json={"Email": "Ada@Acme.com", "FirstName": "Ada", "LastName": "Lovelace", "CompanyId": gsid,
                               "Role": "Champion"})
    assert r.status_code == 200, r.text
    person = r.json()["data"]
    assert person["Gsid"].startswith("1C01") and person["Name"] == "Ada Lovelace"
    r = await client.put("/v1.0/api/people", headers=A, json={"Email": "ada@acme.com", "Role": "Admin"})
    again = r.json()["data"]
    assert again["Gsid"] == person["Gsid"] and again["Role"] == "Admin" and again["FirstName"] == "Ada"
    rows = await query(client, {"where": where(("CompanyId", "EQ", gsid))}, obj="Person")
    assert [p["Role"] for p in rows] == ["Admin"]


async def test_person_validation(client: httpx.AsyncClient) -> None:
    assert_error(await client.put("/v1.0/api/people", headers=A, json={"Email": "not-an-email"}), 400, "GSOBJ_1008")
    assert_error(await client.put("/v1.0/api/people", headers=A, json={"FirstName": "x"}), 400, "GSOBJ_1002")
    assert_error(await client.put("/v1.0/api/people", headers=A, json={"Email": "a@b.co", "CompanyId": "1P02X"}),
                 400, "GSOBJ_1008")
    assert_error(await client.put("/v1.0/api/people", headers=A, json={"Email": "a@b.co", "Shoe": 9}),
                 400, "GSOBJ_1002")


async def test_person_delete(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1.0/api/people", headers=A, json={"Email": "a@b.co"})
    gsid = r.json()["data"]["Gsid"]
    assert (await client.delete(f"/v1.0/api/people/{gsid}", headers=A)).status_code == 200
    assert await query(client, {}, obj="Person") == []
    assert_error(await client.delete(f"/v1.0/api/people/{gsid}", headers=A), 404, "GS_3004")
    # The email can be used again.
    assert (await client.put("/v1.0/api/people", headers=A, json={"Email": "a@b.co"})).status_code == 200


async def test_activity_external_id_dedupes(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    body = {"ExternalId": "call-1", "Subject": "QBR", "TypeName": "Meeting", "CompanyId": gsid,
            "ActivityDate": "2026-01-05T10:00:00Z", "Notes": "went well"}
    first = (await client.post("/v1/ant/timeline/activity", json=body, headers=A)).json()["data"]
    assert first["created"] is True and first["activity"]["ActivityDate"] == "2026-01-05T10:00:00Z"
    r = await client.post("/v1/ant/timeline/activity", json={**body, "Notes": "edited"}, headers=A)
    second = r.json()["data"]
    assert second["created"] is False and second["activityId"] == first["activityId"]
    assert second["activity"]["Notes"] == "edited"
    r = await client.get("/v1/ant/timeline/activity", params={"companyId": gsid}, headers=A)
    assert [a["Gsid"] for a in r.json()["data"]["records"]] == [first["activityId"]]
    r = await client.get(f"/v1/ant/timeline/activity/{first['activityId']}", headers=A)
    assert r.json()["data"]["activity"]["Notes"] == "edited"


async def test_timeline_is_newest_first_and_paged(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    for day in (3, 1, 2):
        await client.post("/v1/ant/timeline/activity", headers=A,
                          json={"Subject": f"d{day}", "TypeName": "Call", "CompanyId": gsid,
                                "ActivityDate": f"2026-01-0{day}"})
    r = await client.get("/v1/ant/timeline/activity", params={"companyId": gsid, "limit": 2}, headers=A)
    assert [a["Subject"] for a in r.json()["data"]["records"]] == ["d3", "d2"]
    r = await client.get("/v1/ant/timeline/activity", params={"companyId": gsid, "offset": 2}, headers=A)
    assert [a["Subject"] for a in r.json()["data"]["records"]] == ["d1"]


async def test_activity_validation(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    ok = {"Subject": "x", "TypeName": "Call", "CompanyId": gsid}
    assert_error(await client.post("/v1/ant/timeline/activity", json={**ok, "TypeName": "Fax"}, headers=A),
                 400, "GSOBJ_1008")
    assert_error(await client.post("/v1/ant/timeline/activity", json={**ok, "CompanyId": "nope"}, headers=A),
                 400, "GSOBJ_1008")
    assert_error(await client.post("/v1/ant/timeline/activity", json={"Subject": "x", "CompanyId": gsid}, headers=A),
                 400, "GSOBJ_1007")
    assert_error(await client.post("/v1/ant/timeline/activity", json={**ok, "ActivityDate": "yesterday"},
                                   headers=A), 400, "GSOBJ_1006")
    assert_error(await client.get("/v1/ant/timeline/activity/1I00NOPE", headers=A), 404, "GS_3004")
    assert_error(await client.get("/v1/ant/timeline/activity", params={"companyId": "nope"}, headers=A),
                 404, "GS_3004")
