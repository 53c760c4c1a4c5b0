"""The record service: create/get/patch/delete, lists, external ids, ETags, bad input, auth, isolation."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.erp.conftest import (
    ADMIN,
    ROOT,
    TOKEN_A,
    client_for,
    create,
    error_of,
    get,
    make_app,
    make_customer,
    make_item,
    new_id,
)


async def test_create_answers_204_with_location_and_get_returns_links(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{ROOT}/customer", json={"companyName": "Globex", "subsidiary": {"id": "1"}})
    assert response.status_code == 204
    assert response.content == b""
    location = response.headers["location"]
    assert location.startswith(f"http://erp.test{ROOT}/customer/")
    rec = (await client.get(location)).json()
    assert rec["companyName"] == "Globex"
    assert rec["links"] == [{"rel": "self", "href": location}]
    assert rec["id"] == location.rsplit("/", 1)[1]
    # Defaults follow the subsidiary; references carry id + refName.
    assert rec["subsidiary"]["id"] == "1" and rec["subsidiary"]["refName"] == "Parent Company"
    assert rec["currency"]["id"] == "1" and rec["currency"]["refName"] == "USD"
    assert rec["creditHoldOverride"] == "AUTO" and rec["isOnCreditHold"] is False
    assert "email" not in rec  # empty fields are left out, like NetSuite


async def test_patch_and_delete_answer_204(client: httpx.AsyncClient) -> None:
    cid = await make_customer(client)
    patched = await client.patch(f"{ROOT}/customer/{cid}", json={"email": "billing@acme.example", "phone": None})
    assert patched.status_code == 204 and patched.content == b""
    assert (await get(client, "customer", cid))["email"] == "billing@acme.example"
    deleted = await client.delete(f"{ROOT}/customer/{cid}")
    assert deleted.status_code == 204
    missing = await client.get(f"{ROOT}/customer/{cid}")
    assert missing.status_code == 404
    assert error_of(missing)["o:errorCode"] == "NONEXISTENT_ID"


async def test_sublists_collapse_unless_expanded(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    so = await create(client, "salesOrder", {"entity": {"id": cid}, "item": {"items": [
        {"item": {"id": item}, "quantity": 3}]}})
    collapsed = (await client.get(f"{ROOT}/salesOrder/{so}")).json()
    assert collapsed["item"] == {"links": [{"rel": "self", "href": f"http://erp.test{ROOT}/salesOrder/{so}/item"}]}
    expanded = await get(client, "salesOrder", so)
    line = expanded["item"]["items"][0]
    assert line["item"]["id"] == item and line["quantity"] == 3 and line["rate"] == 100 and line["amount"] == 300
    sub = (await client.get(f"{ROOT}/salesOrder/{so}/item")).json()
    assert sub["totalResults"] == 1 and sub["items"][0]["amount"] == 300


async def test_list_paginates_with_netsuite_envelope(client: httpx.AsyncClient) -> None:
    ids = [await make_customer(client, companyName=f"Company {n}") for n in range(5)]
    page = (await client.get(f"{ROOT}/customer", params={"limit": 2, "offset": 2})).json()
    assert set(page) == {"links", "count", "hasMore", "items", "offset", "totalResults"}
    assert page["count"] == 2 and page["totalResults"] == 5 and page["hasMore"] is True and page["offset"] == 2
    assert [i["id"] for i in page["items"]] == ids[2:4]
    assert page["items"][0]["links"][0]["href"].endswith(f"/customer/{ids[2]}")
    rels = {link["rel"] for link in page["links"]}
    assert {"self", "next", "previous", "first", "last"} <= rels
    last = (await client.get(f"{ROOT}/customer", params={"limit": 2, "offset": 4})).json()
    assert last["hasMore"] is False and last["count"] == 1
    bad = await client.get(f"{ROOT}/customer", params={"limit": 0})
    assert bad.status_code == 400 and error_of(bad)["o:errorQueryParam"] == "limit"


async def test_list_q_filters_by_netsuite_operators(client: httpx.AsyncClient) -> None:
    acme = await make_customer(client, companyName="Acme Corp", creditLimit=1000)
    await make_customer(client, companyName="Globex", creditLimit=5000)
    inactive = await make_customer(client, companyName="Acme Old", isInactive=True)

    async def ids(q: str) -> list[str]:
        response = await client.get(f"{ROOT}/customer", params={"q": q})
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    assert await ids('companyName START_WITH "Acme"') == [acme, inactive]
    assert await ids('companyName START_WITH "Acme" AND isInactive IS false') == [acme]
    assert await ids("creditLimit LESS 2000") == [acme]
    assert len(await ids('companyName IS "Globex" OR companyName CONTAIN "old"')) == 2
    assert await ids('subsidiary ANY_OF [1, 3]') == []
    bad = await client.get(f"{ROOT}/customer", params={"q": "companyName FROBNICATE 1"})
    assert bad.status_code == 400
    detail = error_of(bad)
    assert detail["o:errorCode"] == "INVALID_PARAMETER" and "Invalid search query" in detail["detail"]


async def test_external_id_read_and_upsert(client: httpx.AsyncClient) -> None:
    created = await client.put(f"{ROOT}/customer/eid:CRM-001", json={"companyName": "Initech"})
    cid = new_id(created)
    rec = (await client.get(f"{ROOT}/customer/eid:CRM-001")).json()
    assert rec["id"] == cid and rec["externalId"] == "CRM-001" and rec["companyName"] == "Initech"
    updated = await client.put(f"{ROOT}/customer/eid:CRM-001", json={"companyName": "Initech Inc"})
    assert updated.status_code == 204 and "location" not in updated.headers
    assert (await get(client, "customer", cid))["companyName"] == "Initech Inc"
    assert (await client.get(f"{ROOT}/customer")).json()["totalResults"] == 1
    # Another record may not take the same external id.
    dup = await client.post(f"{ROOT}/customer", json={"companyName": "Other", "externalId": "CRM-001"})
    assert dup.status_code == 400 and error_of(dup)["o:errorPath"] == "externalId"
    missing = await client.get(f"{ROOT}/customer/eid:NOPE")
    assert missing.status_code == 404 and error_of(missing)["o:errorCode"] == "NONEXISTENT_ID"
    plain_put = await client.put(f"{ROOT}/customer/{cid}", json={"companyName": "x"})
    assert plain_put.status_code == 405
    mismatch = await client.put(f"{ROOT}/customer/eid:CRM-001", json={"externalId": "CRM-002"})
    assert mismatch.status_code == 400


async def test_etag_changes_on_update_and_if_match_guards_writes(client: httpx.AsyncClient) -> None:
    cid = await make_customer(client)
    first = await client.get(f"{ROOT}/customer/{cid}")
    etag = first.headers["etag"]
    ok = await client.patch(f"{ROOT}/customer/{cid}", json={"comments": "v2"}, headers={"If-Match": etag})
    assert ok.status_code == 204
    second = (await client.get(f"{ROOT}/customer/{cid}")).headers["etag"]
    assert second != etag and ok.headers["etag"] == second
    stale = await client.patch(f"{ROOT}/customer/{cid}", json={"comments": "v3"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert error_of(stale)["o:errorCode"] == "PRECONDITION_FAILED"
    assert (await get(client, "customer", cid))["comments"] == "v2"
    assert (await client.delete(f"{ROOT}/customer/{cid}", headers={"If-Match": etag})).status_code == 412
    assert (await client.put(f"{ROOT}/customer/eid:none", json={"companyName": "x"},
                             headers={"If-Match": "*"})).status_code == 412
    assert (await client.patch(f"{ROOT}/customer/{cid}", json={"comments": "v3"},
                               headers={"If-Match": f"W/{second}"})).status_code == 204
    assert (await client.delete(f"{ROOT}/customer/{cid}", headers={"If-Match": "*"})).status_code == 204


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "INVALID_CONTENT"),
        (b"[1, 2]", "INVALID_CONTENT"),
        (b"", "INVALID_CONTENT"),
        (b"[" * 5000 + b"]" * 5000, "INVALID_CONTENT"),
    ],
)
async def test_malformed_bodies_get_netsuite_errors(client: httpx.AsyncClient, content: bytes, code: str) -> None:
    response = await client.post(f"{ROOT}/customer", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["o:errorCode"] == code


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"companyName": 42}, "companyName"),
        ({"companyName": "A", "creditLimit": "lots"}, "creditLimit"),
        ({"companyName": "A", "creditLimit": -5}, "creditLimit"),
        ({"companyName": "A", "isInactive": "yes"}, "isInactive"),
        ({"companyName": "A", "subsidiary": "2"}, "subsidiary"),
        ({"companyName": "A", "subsidiary": {"id": "99"}}, "subsidiary"),
        ({"companyName": "A", "email": "not-an-email"}, "email"),
        ({"companyName": "A", "creditHoldOverride": "MAYBE"}, "creditHoldOverride"),
        ({"companyName": "A", "shoeSize": 44}, "shoeSize"),
        ({"companyName": "A", "addressBook": {"items": [{"addressBookAddress": {"city": "Paris"}}]}},
         "addressBook.items[0].addressBookAddress.country"),
        ({"companyName": "A", "addressBook": {"items": [{"addressBookAddress": {"country": "ZZ"}}]}},
         "addressBook.items[0].addressBookAddress.country"),
        ({"email": "a@b.example"}, "companyName"),
        ({"companyName": "   "}, "companyName"),
    ],
)
async def test_wrong_types_and_values_point_at_the_field(client: httpx.AsyncClient, body: dict, path: str) -> None:
    response = await client.post(f"{ROOT}/customer", json=body)
    assert response.status_code == 400, response.text
    detail = error_of(response)
    assert detail["o:errorPath"] == path
    assert detail["o:errorCode"] in ("INVALID_VALUE", "USER_ERROR", "INVALID_ID")
    assert (await client.get(f"{ROOT}/customer")).json()["totalResults"] == 0


async def test_oversized_body_is_refused_in_the_netsuite_shape() -> None:
    async with client_for(make_app(max_body_bytes=2048)) as c:
        response = await c.post(f"{ROOT}/customer", json={"companyName": "A", "comments": "x" * 5000})
        assert response.status_code == 413
        assert error_of(response)["o:errorCode"] == "INVALID_CONTENT"


async def test_bad_ids_and_unknown_routes(client: httpx.AsyncClient) -> None:
    bad = await client.get(f"{ROOT}/customer/abc")
    assert bad.status_code == 400 and error_of(bad)["o:errorCode"] == "INVALID_ID"
    assert (await client.get(f"{ROOT}/customer/999999")).status_code == 404
    unknown = await client.get(f"{ROOT}/vendorBill/1")
    assert unknown.status_code == 404 and error_of(unknown)["o:errorCode"]
    wrong_method = await client.post(f"{ROOT}/customer/1")
    assert wrong_method.status_code == 405 and error_of(wrong_method)["o:errorCode"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("auth", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer bad token!"])
async def test_missing_or_bad_credentials_get_invalid_login(app: FastAPI, auth: str | None) -> None:
    headers = {} if auth is None else {"Authorization": auth}
    async with client_for(app, None, **headers) as c:
        response = await c.get(f"{ROOT}/customer")
    assert response.status_code == 401
    detail = error_of(response)
    assert detail["o:errorCode"] == "INVALID_LOGIN" and "Login Audit Trail" in detail["detail"]
    assert response.json()["title"] == "Unauthorized"


async def test_unknown_tokens_are_refused_when_provisioning_is_off() -> None:
    app = make_app(auto_provision=False)
    async with client_for(app) as c:
        assert (await c.get(f"{ROOT}/customer")).status_code == 401
        made = await c.post("/_sandbox/tenants", json={"key": TOKEN_A}, headers=ADMIN)
        assert made.status_code == 201
        assert (await c.get(f"{ROOT}/customer")).status_code == 200


async def test_tenants_are_isolated(client: httpx.AsyncClient, client_b: httpx.AsyncClient) -> None:
    cid = await make_customer(client, externalId="SHARED-1")
    assert (await client_b.get(f"{ROOT}/customer/{cid}")).status_code == 404
    assert (await client_b.get(f"{ROOT}/customer/eid:SHARED-1")).status_code == 404
    assert (await client_b.get(f"{ROOT}/customer")).json()["totalResults"] == 0
    # B may use the same external id for its own record.
    other = new_id(await client_b.put(f"{ROOT}/customer/eid:SHARED-1", json={"companyName": "B's"}))
    assert (await get(client, "customer", cid))["companyName"] == "Acme Ltd"
    assert (await get(client_b, "customer", other))["companyName"] == "B's"


async def test_control_api_refuses_without_the_admin_token(client: httpx.AsyncClient) -> None:
    await make_customer(client)
    for headers in ({}, {"Lockstep-Admin-Token": "wrong"}, {"Authorization": f"Bearer {TOKEN_A}"}):
        assert (await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", json={}, headers=headers)).status_code == 401
        assert (await client.post(f"/_sandbox/tenants/{TOKEN_A}/actions", json={}, headers=headers)).status_code == 401
        assert (await client.get(f"/_sandbox/tenants/{TOKEN_A}/snapshot", headers=headers)).status_code == 401
    assert (await client.get(f"/_sandbox/tenants/{TOKEN_A}/snapshot", headers=ADMIN)).status_code == 200


async def test_seed_is_deterministic_and_snapshot_restores(app: FastAPI) -> None:
    async def seeded_names(application: FastAPI) -> list[str]:
        async with client_for(application) as c:
            await c.get(f"{ROOT}/customer")
            seeded = await c.post(f"/_sandbox/tenants/{TOKEN_A}/seed", json={"customers": 5}, headers=ADMIN)
            assert seeded.status_code == 200, seeded.text
            assert len(seeded.json()["created"]["customer"]) == 5
            items = (await c.get(f"{ROOT}/customer")).json()["items"]
            return [(await get(c, "customer", i["id"]))["companyName"] for i in items]

    first = await seeded_names(app)
    assert first == await seeded_names(make_app())
    async with client_for(app) as c:
        snap = (await c.get(f"/_sandbox/tenants/{TOKEN_A}/snapshot", headers=ADMIN)).json()
        await c.post(f"/_sandbox/tenants/{TOKEN_A}/reset", headers=ADMIN)
        assert (await c.get(f"{ROOT}/customer")).json()["totalResults"] == 0
        assert (await c.post(f"/_sandbox/tenants/{TOKEN_A}/restore", json=snap, headers=ADMIN)).status_code == 200
        assert (await c.get(f"{ROOT}/customer")).json()["totalResults"] == 5
        assert (await c.get(f"{ROOT}/customer/eid:DEMO-0001")).status_code == 200
        # Ids keep counting after a restore: no reuse.
        cid = await make_customer(c)
        assert int(cid) > max(int(i["id"]) for i in (await c.get(f"{ROOT}/customer")).json()["items"][:-1])
