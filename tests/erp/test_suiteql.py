"""SuiteQL subset over POST /services/rest/query/v1/suiteql."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.erp.conftest import SUITEQL, create, error_of, make_customer, make_item, make_order

PREFER = {"Prefer": "transient"}


async def query(client: httpx.AsyncClient, q: str, **params: Any) -> dict[str, Any]:
    response = await client.post(SUITEQL, json={"q": q}, params=params, headers=PREFER)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def data(client: httpx.AsyncClient) -> dict[str, str]:
    item = await make_item(client)
    acme = await make_customer(client, companyName="Acme", creditLimit=5000, externalId="A-1")
    beta = await make_customer(client, companyName="Beta", subsidiary={"id": "1"})
    await make_customer(client, companyName="Gamma", isInactive=True)
    so = await make_order(client, acme, item, quantity=2)
    inv = await create(client, "invoice", {"entity": {"id": acme}, "createdFrom": {"id": so}})
    return {"item": item, "acme": acme, "beta": beta, "so": so, "inv": inv}


async def test_select_where_order_by_returns_lowercase_columns(client: httpx.AsyncClient, data: dict) -> None:
    result = await query(client, "SELECT id, companyName, email FROM customer WHERE isinactive = 'F' "
                                  "ORDER BY companyname DESC")
    assert set(result) == {"links", "count", "hasMore", "items", "offset", "totalResults"}
    assert [r["companyname"] for r in result["items"]] == ["Beta", "Acme"]
    assert result["items"][0]["links"] == []
    assert result["items"][1] == {"links": [], "id": data["acme"], "companyname": "Acme",
                                  "email": "ap@acme.example"}
    assert result["totalResults"] == 2 and result["hasMore"] is False


async def test_nulls_are_left_out_and_booleans_are_t_f(client: httpx.AsyncClient, data: dict) -> None:
    rows = (await query(client, f"SELECT id, creditlimit, externalid, isinactive FROM customer "
                                f"WHERE id IN ({data['acme']}, {data['beta']})"))["items"]
    assert rows[0] == {"links": [], "id": data["acme"], "creditlimit": 5000, "externalid": "A-1", "isinactive": "F"}
    assert rows[1] == {"links": [], "id": data["beta"], "isinactive": "F"}


async def test_transactions_like_builtin_df_and_dates(client: httpx.AsyncClient, data: dict) -> None:
    rows = (await query(client, "SELECT t.id, t.tranid, t.type, BUILTIN.DF(t.entity) AS customer, t.foreigntotal, "
                                "t.trandate, t.status FROM transaction t WHERE t.type = 'CustInvc'"))["items"]
    assert rows == [{"links": [], "id": data["inv"], "tranid": "INV00001", "type": "CustInvc", "customer": "Acme",
                     "foreigntotal": 200, "trandate": "1/1/2026", "status": "A"}]
    like = await query(client, "select companyname from customer where upper(companyname) like 'A%' "
                               "or companyname like '_eta'")
    assert sorted(r["companyname"] for r in like["items"]) == ["Acme", "Beta"]
    dated = await query(client, "SELECT id FROM transaction WHERE trandate >= TO_DATE('2026-01-01', 'YYYY-MM-DD') "
                                "AND duedate BETWEEN '2026-01-15' AND '2026-02-15'")
    assert [r["id"] for r in dated["items"]] == [data["inv"]]
    counted = await query(client, "SELECT COUNT(*) FROM customer WHERE creditlimit IS NULL")
    assert counted["items"] == [{"links": [], "expr1": 2}]


async def test_pagination_with_limit_and_offset(client: httpx.AsyncClient, data: dict) -> None:
    page = await query(client, "SELECT id FROM customer ORDER BY id", limit=2, offset=2)
    assert page["count"] == 1 and page["offset"] == 2 and page["totalResults"] == 3 and page["hasMore"] is False
    first = await query(client, "SELECT id FROM customer ORDER BY id", limit=2)
    assert first["hasMore"] is True and any(link["rel"] == "next" for link in first["links"])


@pytest.mark.parametrize(
    "q",
    [
        "SELECT id FROM vendor",
        "SELECT nosuchcolumn FROM customer",
        "SELECT id FROM customer WHERE",
        "SELECT id customer",
        "DELETE FROM customer",
        "SELECT id FROM customer WHERE companyname = 'unterminated",
        "SELECT id FROM customer ORDER BY 9",
        "SELECT x.id FROM customer c",
        "",
    ],
)
async def test_bad_queries_are_invalid_parameter(client: httpx.AsyncClient, q: str) -> None:
    response = await client.post(SUITEQL, json={"q": q}, headers=PREFER)
    assert response.status_code == 400
    detail = error_of(response)
    assert detail["o:errorCode"] == "INVALID_PARAMETER"
    assert "Invalid search query" in detail["detail"] or "query" in detail["detail"]


async def test_prefer_transient_and_body_shape_are_required(client: httpx.AsyncClient) -> None:
    missing = await client.post(SUITEQL, json={"q": "SELECT id FROM customer"})
    assert missing.status_code == 400 and "Prefer" in error_of(missing)["detail"]
    not_object = await client.post(SUITEQL, json=["SELECT id FROM customer"], headers=PREFER)
    assert not_object.status_code == 400
    bad_limit = await client.post(SUITEQL, json={"q": "SELECT id FROM customer"}, params={"limit": 5000},
                                  headers=PREFER)
    assert bad_limit.status_code == 400 and error_of(bad_limit)["o:errorQueryParam"] == "limit"
