"""API drift: 2024.2 vs 2025.1 differ exactly as versions.py declares, in responses, requests and OpenAPI."""

from __future__ import annotations

import httpx

from mocks.erp.versions import V2024_2, V2025_1, erp_versions
from tests.erp.conftest import ADMIN, ROOT, TOKEN_A, create, error_of, get, make_customer, make_item, make_order

NEW = {"X-NetSuite-Version": V2025_1}
OLD = {"X-NetSuite-Version": V2024_2}


async def test_same_request_differs_only_in_the_declared_fields(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    so = await make_order(client, cid, item)
    inv = await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    declared = {"salesOrder": {"status"}, "invoice": {"status"}, "customer": {"creditHoldOverride"}}
    for rtype, rid in (("customer", cid), ("salesOrder", so), ("invoice", inv)):
        old = await get(client, rtype, rid, **OLD)
        new = await get(client, rtype, rid, **NEW)
        assert set(old) == set(new)
        assert {k for k in old if old[k] != new[k]} == declared[rtype]
    old_so, new_so = await get(client, "salesOrder", so, **OLD), await get(client, "salesOrder", so, **NEW)
    assert old_so["status"] == "Billed"
    assert new_so["status"] == {"id": "G", "refName": "Billed"}
    new_customer = await get(client, "customer", cid, **NEW)
    assert new_customer["creditHoldOverride"] == {"id": "AUTO", "refName": "Auto"}
    # The tenant default is 2024.2 when nothing is asked for.
    assert (await get(client, "customer", cid))["creditHoldOverride"] == "AUTO"


async def test_requests_are_parsed_per_version(client: httpx.AsyncClient) -> None:
    cid = await make_customer(client)
    plain = await client.patch(f"{ROOT}/customer/{cid}", json={"creditHoldOverride": "ON"}, headers=NEW)
    assert plain.status_code == 400
    detail = error_of(plain)
    assert detail["o:errorCode"] == "INVALID_VALUE" and detail["o:errorPath"] == "creditHoldOverride"
    select = await client.patch(f"{ROOT}/customer/{cid}", json={"creditHoldOverride": {"id": "ON"}}, headers=NEW)
    assert select.status_code == 204
    assert (await get(client, "customer", cid))["creditHoldOverride"] == "ON"
    assert (await client.patch(f"{ROOT}/customer/{cid}", json={"creditHoldOverride": "OFF"},
                               headers=OLD)).status_code == 204
    # A 2025.1 client can echo a record it read back (read-only select status is accepted and ignored).
    item = await make_item(client)
    so = await make_order(client, cid, item)
    echoed = await get(client, "salesOrder", so, **NEW)
    again = await client.patch(f"{ROOT}/salesOrder/{so}", json={"memo": "m", "status": echoed["status"]}, headers=NEW)
    assert again.status_code == 204


async def test_etags_differ_per_version(client: httpx.AsyncClient) -> None:
    cid = await make_customer(client)
    old = (await client.get(f"{ROOT}/customer/{cid}", headers=OLD)).headers["etag"]
    new = (await client.get(f"{ROOT}/customer/{cid}", headers=NEW)).headers["etag"]
    assert old != new
    assert (await client.patch(f"{ROOT}/customer/{cid}", json={"comments": "x"},
                               headers={**NEW, "If-Match": old})).status_code == 412


async def test_unknown_version_is_refused_and_tenant_default_switches(client: httpx.AsyncClient) -> None:
    cid = await make_customer(client)
    bad = await client.get(f"{ROOT}/customer/{cid}", headers={"X-NetSuite-Version": "2019.1"})
    assert bad.status_code == 400 and error_of(bad)["o:errorCode"] == "INVALID_PARAMETER"
    switched = await client.put(f"/_sandbox/tenants/{TOKEN_A}/version", json={"api_version": V2025_1}, headers=ADMIN)
    assert switched.status_code == 200
    assert (await get(client, "customer", cid))["creditHoldOverride"] == {"id": "AUTO", "refName": "Auto"}


async def test_openapi_per_version_shows_the_drift(client: httpx.AsyncClient) -> None:
    old = (await client.get(f"/openapi/{V2024_2}.json")).json()
    new = (await client.get(f"/openapi/{V2025_1}.json")).json()
    assert old["info"]["version"] == V2024_2 and new["info"]["version"] == V2025_1
    old_schemas, new_schemas = old["components"]["schemas"], new["components"]["schemas"]
    for name, field in (("SalesOrder", "status"), ("Invoice", "status"), ("CreditMemo", "status"),
                        ("Customer", "creditHoldOverride")):
        assert "enum" in str(old_schemas[name]["properties"][field])
        assert new_schemas[name]["properties"][field]["type"] == "object"
        assert set(new_schemas[name]["properties"][field]["properties"]) == {"id", "refName"}
    changed = {(c["obj"], c["field"]) for c in new["x-lockstep-changes"]}
    assert changed == {("salesOrder", "status"), ("invoice", "status"), ("creditMemo", "status"),
                       ("customer", "creditHoldOverride")}
    assert old["x-lockstep-changes"] == []
    assert set(old["paths"]) == set(new["paths"])
    assert all(c["breaking"] for c in erp_versions().diff(V2024_2, V2025_1))
