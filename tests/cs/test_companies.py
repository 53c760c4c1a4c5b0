"""Company API: insert, upsert / update by keys, read with filters and paging, delete, field validation."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.cs.conftest import A, assert_error, insert, query, tenant_of, where


async def test_insert_returns_gainsight_ids_and_envelope(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/data/objects/Company", headers=A,
                          json={"records": [{"Name": "Acme", "ExternalId": "A-1", "ARR": 120000}, {"Name": "Beta"}]})
    assert r.status_code == 200
    body = r.json()
    assert body["result"] is True and body["errorCode"] is None and body["errorDesc"] is None
    assert body["requestId"]
    assert body["data"]["count"] == 2
    gsids = [rec["Gsid"] for rec in body["data"]["records"]]
    assert all(g.startswith("1P02") and len(g) == 36 for g in gsids)
    assert len(set(gsids)) == 2
    [acme] = await query(client, {"where": where(("ExternalId", "EQ", "A-1"))})
    assert acme["Name"] == "Acme" and acme["ARR"] == 120000 and acme["Stage"] == "Kick Off"
    assert acme["Status"] == "Active" and acme["HealthScore"] is None
    assert acme["CreatedDate"] == "2026-01-01T00:00:00Z"


async def test_ids_come_from_the_tenant_seed() -> None:
    from tests.cs.conftest import make_app

    async def first_id(seed: int) -> str:
        app = make_app(seed=seed)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cs") as c:
            return (await insert(c, {"Name": "X"}))[0]

    assert await first_id(1) == await first_id(1)
    assert await first_id(1) != await first_id(2)


async def test_insert_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/data/objects/Company", headers=A,
                          json={"records": [{"Name": "Good"}, {"Name": "Bad", "RenewalDate": "31/12/2026"}]})
    body = assert_error(r, 400, "GSOBJ_1006")
    assert "RenewalDate" in body["errorDesc"]
    assert await query(client, {}) == []


async def test_name_is_required_and_unknown_or_read_only_fields_are_refused(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/v1/data/objects/Company", headers=A, json={"records": [{"ARR": 5}]}),
                 400, "GSOBJ_1007")
    r = await client.post("/v1/data/objects/Company", headers=A, json={"records": [{"Name": "X", "Colour": "red"}]})
    assert "Colour" in assert_error(r, 400, "GSOBJ_1002")["errorDesc"]
    r = await client.post("/v1/data/objects/Company", headers=A, json={"records": [{"Name": "X", "HealthScore": 9}]})
    assert "read-only" in assert_error(r, 400, "GSOBJ_1002")["errorDesc"]
    r = await client.post("/v1/data/objects/Company", headers=A, json={"records": [{"Name": "X", "Stage": "Nope"}]})
    assert_error(r, 400, "GSOBJ_1008")
    r = await client.post("/v1/data/objects/Company", headers=A, json={"records": [{"Name": "X", "ARR": "lots"}]})
    assert_error(r, 400, "GSOBJ_1002")
    r = await client.post("/v1/data/objects/Company", headers=A, json={"records": [{"Name": "X", "ARR": -1}]})
    assert_error(r, 400, "GSOBJ_1002")


async def test_duplicate_external_id_is_refused(client: httpx.AsyncClient) -> None:
    await insert(client, {"Name": "One", "ExternalId": "E1"})
    assert_error(await client.post("/v1/data/objects/Company", headers=A,
                                   json={"records": [{"Name": "Two", "ExternalId": "E1"}]}), 400, "GSOBJ_1009")
    assert_error(await client.post("/v1/data/objects/Company", headers=A,
                                   json={"records": [{"Name": "A", "ExternalId": "E2"},
                                                     {"Name": "B", "ExternalId": "E2"}]}), 400, "GSOBJ_1009")


async def test_batches_over_fifty_records_are_refused(client: httpx.AsyncClient) -> None:
    fifty = [{"Name": f"C{i}"} for i in range(50)]
    assert len(await insert(client, *fifty)) == 50
    r = await client.post("/v1/data/objects/Company", headers=A, json={"records": [*fifty, {"Name": "C50"}]})
    assert "maximum of 50" in assert_error(r, 400, "GS_2003")["errorDesc"]
    assert len(await query(client, {"limit": 50, "offset": 0})) == 50
    assert len(await query(client, {"limit": 50, "offset": 50})) == 0
    assert_error(await client.post("/v1/data/objects/Company", headers=A, json={"records": []}), 400, "GS_2001")


async def test_upsert_by_key_updates_matches_and_inserts_the_rest(app: FastAPI, client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "ExternalId": "A-1", "ARR": 100})
    r = await client.post("/v1/data/objects/Company", params={"keys": "ExternalId"}, headers=A,
                          json={"records": [{"ExternalId": "A-1", "ARR": 250, "Industry": "Retail"},
                                            {"ExternalId": "B-2", "Name": "Beta"}]})
    assert r.status_code == 200, r.text
    recs = r.json()["data"]["records"]
    assert recs[0] == {"Gsid": gsid, "action": "updated"}
    assert recs[1]["action"] == "inserted" and recs[1]["Gsid"] != gsid
    [acme] = await query(client, {"where": where(("ExternalId", "EQ", "A-1"))})
    assert acme["ARR"] == 250 and acme["Industry"] == "Retail" and acme["Name"] == "Acme"
    # The same upsert again changes nothing and creates nothing.
    await client.post("/v1/data/objects/Company", params={"keys": "ExternalId"}, headers=A,
                      json={"records": [{"ExternalId": "B-2", "Name": "Beta"}]})
    assert len(tenant_of(app).state.companies) == 2


async def test_update_by_keys_needs_a_match_and_key_values(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "ExternalId": "A-1"})
    r = await client.put("/v1/data/objects/Company", params={"keys": "Name"}, headers=A,
                         json={"records": [{"Name": "Acme", "CSM": "csm@example.com"}]})
    assert r.json()["data"]["records"] == [{"Gsid": gsid, "action": "updated"}]
    r = await client.put("/v1/data/objects/Company", params={"keys": "Gsid"}, headers=A,
                         json={"records": [{"Gsid": gsid, "Name": "Acme Inc"}]})
    assert r.status_code == 200
    assert (await query(client, {}))[0]["Name"] == "Acme Inc"
    assert_error(await client.put("/v1/data/objects/Company", params={"keys": "ExternalId"}, headers=A,
                                  json={"records": [{"ExternalId": "nope", "ARR": 1}]}), 404, "GS_3004")
    assert_error(await client.put("/v1/data/objects/Company", params={"keys": "ExternalId"}, headers=A,
                                  json={"records": [{"ARR": 1}]}), 400, "GSOBJ_1007")
    assert_error(await client.put("/v1/data/objects/Company", headers=A, json={"records": [{"Name": "x"}]}),
                 400, "GS_2001")
    assert_error(await client.put("/v1/data/objects/Company", params={"keys": "HealthScore"}, headers=A,
                                  json={"records": [{"HealthScore": 1}]}), 400, "GSOBJ_1002")
    assert_error(await client.put("/v1/data/objects/Company", params={"keys": "Gsid"}, headers=A,
                                  json={"records": [{"Gsid": "1P02NOPE"}]}), 400, "GSOBJ_1004")


async def test_churned_stage_makes_the_company_inactive(client: httpx.AsyncClient) -> None:
    await insert(client, {"Name": "Acme", "ExternalId": "A-1"})
    await insert(client, {"ExternalId": "A-1", "Stage": "Churned"}, keys="ExternalId")
    [acme] = await query(client, {})
    assert acme["Stage"] == "Churned" and acme["Status"] == "Inactive"


async def test_read_filters_expression_select_order_and_paging(client: httpx.AsyncClient) -> None:
    await insert(client,
                 {"Name": "Alpha", "ARR": 100, "Industry": "Retail", "Stage": "Onboarding"},
                 {"Name": "Bravo", "ARR": 300, "Industry": "Software", "Stage": "Adopting"},
                 {"Name": "Charlie", "ARR": 200, "Industry": "Retail", "Stage": "Adopting"},
                 {"Name": "Delta", "ARR": 50, "Industry": None, "Stage": "Renewal"})
    names = [r["Name"] for r in await query(client, {"select": ["Name"], "where": where(("ARR", "GTE", 200)),
                                                     "orderBy": {"ARR": "desc"}})]
    assert names == ["Bravo", "Charlie"]
    body = {"select": ["Name", "ARR"], "orderBy": {"Name": "asc"},
            "where": where(("Industry", "EQ", "Retail"), ("Stage", "EQ", "Adopting"), ("ARR", "LT", 60),
                           expression="(A AND B) OR C")}
    rows = await query(client, body)
    assert rows == [{"Name": "Charlie", "ARR": 200}, {"Name": "Delta", "ARR": 50}]
    assert [r["Name"] for r in await query(client, {"where": where(("Stage", "IN", ["Onboarding", "Renewal"]))})] \
        == ["Alpha", "Delta"]
    assert [r["Name"] for r in await query(client, {"where": where(("Name", "CONTAINS", "AR"))})] == ["Charlie"]
    assert [r["Name"] for r in await query(client, {"where": where(("Industry", "IS_NULL", []))})] == ["Delta"]
    page = await query(client, {"select": ["Name"], "orderBy": {"Name": "asc"}, "limit": 2, "offset": 1})
    assert [r["Name"] for r in page] == ["Bravo", "Charlie"]


async def test_bad_queries_get_gainsight_errors(client: httpx.AsyncClient) -> None:
    cases = [
        ({"select": ["Nope"]}, "GSOBJ_1002"),
        ({"where": where(("Nope", "EQ", 1))}, "GSOBJ_1002"),
        ({"where": where(("Name", "EQ", "x"), expression="A AND")}, "GS_2001"),
        ({"where": where(("Name", "EQ", "x"), expression="A OR Z")}, "GS_2001"),
        ({"where": where(("Name", "EQ", []))}, "GS_2001"),
        ({"where": {"conditions": [{"name": "Name", "operator": "LIKE", "value": ["x"]}]}}, "GSOBJ_1002"),
        ({"limit": 51}, "GSOBJ_1002"),
        ({"orderBy": {"Nope": "asc"}}, "GSOBJ_1002"),
    ]
    for body, code in cases:
        assert_error(await client.post("/v1/data/objects/query/Company", json=body, headers=A), 400, code)
    r = await client.post("/v1/data/objects/query/Company", content=b"{not json", headers={**A, "content-type":
                                                                                          "application/json"})
    assert_error(r, 400, "GSOBJ_1002")


async def test_delete_removes_the_company_and_its_records(app: FastAPI, client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "ExternalId": "A-1", "RenewalDate": "2026-06-01"})
    await client.put("/v1.0/api/people", json={"Email": "a@acme.com", "CompanyId": gsid}, headers=A)
    await client.post("/v2/cockpit/successplan", json={"CompanyId": gsid, "TemplateName": "Standard Onboarding"},
                      headers=A)
    tenant = tenant_of(app)
    assert tenant.clock.pending()
    r = await client.delete(f"/v1/data/objects/Company/{gsid}", headers=A)
    assert r.status_code == 200 and r.json()["data"] == {"count": 1, "Gsid": gsid}
    assert await query(client, {}) == []
    assert tenant.state.plans == {} and not tenant.clock.pending()
    [person] = await query(client, {}, obj="Person")
    assert person["CompanyId"] is None
    assert_error(await client.delete(f"/v1/data/objects/Company/{gsid}", headers=A), 404, "GS_3004")
    # The ExternalId is free again.
    await insert(client, {"Name": "Acme again", "ExternalId": "A-1"})


async def test_query_by_gsid_finds_exactly_that_company_and_respects_other_conditions(
    client: httpx.AsyncClient,
) -> None:
    made = await insert(client, {"Name": "Alpha"}, {"Name": "Beta"})
    by_id = {"select": ["Gsid", "Name"], "where": {"conditions": [
        {"name": "Gsid", "alias": "A", "value": [made[1]], "operator": "EQ"}], "expression": "A"}}
    found = await client.post("/v1/data/objects/query/Company", json=by_id, headers=A)
    assert [r["Name"] for r in found.json()["data"]["records"]] == ["Beta"]
    both = {"select": ["Name"], "where": {"conditions": [
        {"name": "Gsid", "alias": "A", "value": made, "operator": "IN"},
        {"name": "Name", "alias": "B", "value": ["Alpha"], "operator": "EQ"}], "expression": "A AND B"}}
    found = await client.post("/v1/data/objects/query/Company", json=both, headers=A)
    assert [r["Name"] for r in found.json()["data"]["records"]] == ["Alpha"]
