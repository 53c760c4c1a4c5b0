"""The SOQL subset: filters, ordering, limits, relationships, COUNT(), errors, paging and queryAll."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.crm.conftest import ADMIN, TOKEN_A, A, V, create, soql


@pytest.fixture
async def accounts(client: httpx.AsyncClient) -> dict[str, str]:
    rows: list[dict[str, Any]] = [
        {"Name": "Acme", "Industry": "Banking", "AnnualRevenue": 500.0, "BillingCountry": "Germany",
         "At_Risk__c": True, "Renewal_Date__c": "2026-01-15"},
        {"Name": "Globex", "Industry": "Energy", "AnnualRevenue": 100.0, "BillingCountry": "France",
         "Renewal_Date__c": "2026-03-01"},
        {"Name": "Initech", "Industry": "Banking", "BillingCountry": "Germany"},
        {"Name": "Hooli", "Industry": "Technology", "AnnualRevenue": 900.0, "Website": "https://hooli.example"},
    ]
    return {row["Name"]: await create(client, "Account", row) for row in rows}


async def names(client: httpx.AsyncClient, q: str) -> list[str]:
    response = await soql(client, q)
    assert response.status_code == 200, response.text
    return [r["Name"] for r in response.json()["records"]]


async def test_where_with_and_or_not_parentheses(client: httpx.AsyncClient, accounts: dict[str, str]) -> None:
    q = "SELECT Name FROM Account WHERE Industry = 'banking' AND (BillingCountry = 'Germany' OR AnnualRevenue > 1000)"
    assert sorted(await names(client, q)) == ["Acme", "Initech"]
    q = "SELECT Name FROM Account WHERE NOT Industry = 'Banking' ORDER BY Name"
    assert await names(client, q) == ["Globex", "Hooli"]
    q = "select name from account where industry in ('Energy', 'Technology') or at_risk__c = true order by name desc"
    assert await names(client, q) == ["Hooli", "Globex", "Acme"]
    q = "SELECT Name FROM Account WHERE Industry NOT IN ('Banking') AND Website != null"
    assert await names(client, q) == ["Hooli"]


async def test_null_and_inequality_semantics(client: httpx.AsyncClient, accounts: dict[str, str]) -> None:
    assert await names(client, "SELECT Name FROM Account WHERE AnnualRevenue = null") == ["Initech"]
    # SOQL's != keeps nulls; ordered comparisons never match null.
    assert sorted(await names(client, "SELECT Name FROM Account WHERE AnnualRevenue != 500")) == [
        "Globex", "Hooli", "Initech"]
    assert sorted(await names(client, "SELECT Name FROM Account WHERE AnnualRevenue <= 500")) == ["Acme", "Globex"]
    assert await names(client, "SELECT Name FROM Account WHERE AnnualRevenue >= 900") == ["Hooli"]


async def test_like_dates_and_date_literals(client: httpx.AsyncClient, accounts: dict[str, str]) -> None:
    assert sorted(await names(client, "SELECT Name FROM Account WHERE Name LIKE '%o%'")) == ["Globex", "Hooli"]
    assert await names(client, "SELECT Name FROM Account WHERE Name LIKE 'a_me'") == ["Acme"]
    assert await names(client, "SELECT Name FROM Account WHERE Renewal_Date__c < 2026-02-01") == ["Acme"]
    # The tenant clock says 2026-01-01: NEXT_N_DAYS:30 covers Jan 2..31.
    assert await names(client, "SELECT Name FROM Account WHERE Renewal_Date__c = NEXT_N_DAYS:30") == ["Acme"]
    assert sorted(await names(client, "SELECT Name FROM Account WHERE CreatedDate = TODAY")) == sorted(accounts)
    assert await names(client, "SELECT Name FROM Account WHERE CreatedDate > 2026-01-01T00:00:00Z") == []
    assert len(await names(client, "SELECT Name FROM Account WHERE CreatedDate >= 2026-01-01T00:00:00Z")) == 4


async def test_order_by_nulls_limit_offset(client: httpx.AsyncClient, accounts: dict[str, str]) -> None:
    q = "SELECT Name, AnnualRevenue FROM Account ORDER BY AnnualRevenue"
    assert await names(client, q) == ["Initech", "Globex", "Acme", "Hooli"]  # ASC: nulls first
    q = "SELECT Name FROM Account ORDER BY AnnualRevenue DESC"
    assert await names(client, q) == ["Hooli", "Acme", "Globex", "Initech"]  # DESC: nulls last
    q = "SELECT Name FROM Account ORDER BY AnnualRevenue ASC NULLS LAST LIMIT 2 OFFSET 1"
    assert await names(client, q) == ["Acme", "Hooli"]
    q = "SELECT Name FROM Account ORDER BY Industry, Name DESC"
    assert await names(client, q) == ["Initech", "Acme", "Globex", "Hooli"]
    response = await soql(client, "SELECT Name FROM Account LIMIT 1")
    assert response.json()["totalSize"] == 1 and response.json()["done"] is True


async def test_records_carry_only_selected_fields_and_relationships(
    client: httpx.AsyncClient, accounts: dict[str, str],
) -> None:
    contact = await create(client, "Contact", {"LastName": "Lovelace", "AccountId": accounts["Acme"]})
    await create(client, "Contact", {"LastName": "Orphan"})
    rows = (await soql(client, "SELECT Id, LastName, Account.Name, Account.Industry FROM Contact "
                               "WHERE Account.Name = 'Acme'")).json()["records"]
    assert rows == [{"attributes": {"type": "Contact", "url": f"{V}/sobjects/Contact/{contact}"},
                     "Id": contact, "LastName": "Lovelace",
                     "Account": {"attributes": {"type": "Account", "url": f"{V}/sobjects/Account/{accounts['Acme']}"},
                                 "Name": "Acme", "Industry": "Banking"}}]
    orphan = (await soql(client, "SELECT Account.Name FROM Contact WHERE AccountId = null")).json()["records"]
    assert orphan[0]["Account"] is None


async def test_count(client: httpx.AsyncClient, accounts: dict[str, str]) -> None:
    response = (await soql(client, "SELECT COUNT() FROM Account WHERE Industry = 'Banking'")).json()
    assert response == {"totalSize": 2, "done": True, "records": []}


@pytest.mark.parametrize(("q", "code"), [
    ("SELEC Id FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id FROM", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name = 'x' extra", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY"),
    ("SELECT Id, Id FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account LIMIT -1", "MALFORMED_QUERY"),
    ("", "MALFORMED_QUERY"),
    ("SELECT Bogus FROM Account", "INVALID_FIELD"),
    ("SELECT Id FROM Account WHERE Bogus__c = 1", "INVALID_FIELD"),
    ("SELECT Owner.Name FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Widget", "INVALID_TYPE"),
    ("SELECT Id FROM Account WHERE AnnualRevenue = '5'", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Id FROM Account WHERE Name = 5", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Id FROM Account WHERE At_Risk__c > true", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Id FROM Account WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
])
async def test_bad_soql_gets_salesforce_errors(client: httpx.AsyncClient, q: str, code: str) -> None:
    response = await soql(client, q)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == code
    assert response.headers["sforce-limit-info"].startswith("api-usage=")


async def test_malformed_query_message_points_at_the_spot(client: httpx.AsyncClient) -> None:
    response = await soql(client, "SELECT Id FROM Account WHERE Name = ")
    assert response.json()[0]["message"].endswith("ERROR at Row:1:Column:37\nunexpected end of query")
    missing = await client.get(f"{V}/query", headers=A)
    assert missing.json() == [{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}]


async def test_paging_with_batch_size_and_query_locators(client: httpx.AsyncClient) -> None:
    await client.get(f"{V}/limits", headers=A)
    await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", headers=ADMIN, json={
        "demo": {"accounts": 450, "contacts_per_account": 0, "opportunities_per_account": 0, "leads": 0}})
    first = await client.get(f"{V}/query", params={"q": "SELECT Id FROM Account ORDER BY Name"},
                             headers={**A, "Sforce-Query-Options": "batchSize=200"})
    page = first.json()
    assert page["totalSize"] == 450 and page["done"] is False and len(page["records"]) == 200
    assert page["nextRecordsUrl"].startswith(f"{V}/query/01g") and page["nextRecordsUrl"].endswith("-200")
    seen = [r["Id"] for r in page["records"]]
    while not page["done"]:
        page = (await client.get(page["nextRecordsUrl"], headers=A)).json()
        seen += [r["Id"] for r in page["records"]]
    assert len(seen) == len(set(seen)) == 450 and "nextRecordsUrl" not in page
    bad = await client.get(f"{V}/query/01gNOPE-200", headers=A)
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    small = await client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"},
                             headers={**A, "Sforce-Query-Options": "batchSize=5"})
    assert len(small.json()["records"]) == 200  # Salesforce's minimum batch size


async def test_query_all_includes_deleted_rows(client: httpx.AsyncClient, accounts: dict[str, str]) -> None:
    await client.delete(f"{V}/sobjects/Account/{accounts['Globex']}", headers=A)
    assert "Globex" not in await names(client, "SELECT Name FROM Account")
    rows = (await soql(client, "SELECT Name, IsDeleted FROM Account WHERE IsDeleted = true",
                       all_rows=True)).json()["records"]
    assert [(r["Name"], r["IsDeleted"]) for r in rows] == [("Globex", True)]
