"""The unchanged simple-salesforce client, over TLS from the local CA, against a real uvicorn server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceRefusedRequest

from mocks.crm.tls import tls_files
from mocks.kernel.serving import ServerThread
from tests.crm.conftest import ADMIN, TOKEN_A, make_app

TOKEN = TOKEN_A


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    return tls_files(tmp_path_factory.mktemp("tls"))


SESSIONS: list[requests.Session] = []


@pytest.fixture(autouse=True)
def close_sessions() -> Iterator[None]:
    yield
    # Keep-alive connections left open would hold uvicorn's graceful shutdown.
    while SESSIONS:
        SESSIONS.pop().close()


@pytest.fixture(scope="module")
def server(tls: tuple[str, str, str]) -> Iterator[ServerThread]:
    certfile, keyfile, _ = tls
    with ServerThread(make_app(daily_quota=200), ssl_certfile=certfile, ssl_keyfile=keyfile) as srv:
        yield srv


def https(server: ServerThread) -> str:
    return f"https://127.0.0.1:{server.port}"


def client_for(server: ServerThread, ca_bundle: str, token: str = TOKEN) -> Salesforce:
    session = requests.Session()
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override session.verify;
    # this session trusts exactly the sandbox CA.
    session.trust_env = False
    session.verify = ca_bundle
    SESSIONS.append(session)
    return Salesforce(instance_url=https(server), session_id=token, version="60.0", session=session)


def admin(server: ServerThread, ca_bundle: str, path: str, body: dict) -> dict:
    response = httpx.post(f"{https(server)}/_sandbox/tenants/{TOKEN}{path}", json=body, headers=ADMIN,
                          verify=ssl.create_default_context(cafile=ca_bundle), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_tls_files_are_cached(tls: tuple[str, str, str]) -> None:
    again = tls_files(Path(tls[0]).parent)
    assert again == tls and all(Path(p).read_bytes().startswith(b"-----BEGIN") for p in tls)


def test_an_untrusting_client_is_refused(server: ServerThread) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{https(server)}/services/data", timeout=5)


def test_simple_salesforce_end_to_end(server: ServerThread, tls: tuple[str, str, str]) -> None:
    ca = tls[2]
    sf = client_for(server, ca)
    created = sf.Account.create({"Name": "Acme", "Industry": "Banking", "AnnualRevenue": 300})
    assert created["success"] is True and created["id"].startswith("001")
    sf.Account.create({"Name": "Globex", "Industry": "Banking", "AnnualRevenue": 100})
    sf.Account.create({"Name": "Initech", "Industry": "Energy"})
    assert sf.Account.get(created["id"])["Name"] == "Acme"

    result = sf.query("SELECT Id, Name FROM Account WHERE Industry = 'Banking' ORDER BY AnnualRevenue DESC LIMIT 5")
    assert [r["Name"] for r in result["records"]] == ["Acme", "Globex"]
    # The client parses Sforce-Limit-Info into api_usage.
    assert sf.api_usage["api-usage"].total == 200 and sf.api_usage["api-usage"].used == 5

    assert sf.Account.upsert("External_Id__c/EXT-42", {"Name": "Upserted"}) == 201
    assert sf.Account.upsert("External_Id__c/EXT-42", {"Name": "Upserted again"}) == 204
    assert sf.Account.get_by_custom_id("External_Id__c", "EXT-42")["Name"] == "Upserted again"

    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.query("SELECT Nope FROM Account")
    assert bad.value.content[0]["errorCode"] == "INVALID_FIELD"
    del bad  # its traceback holds the response (and so the keep-alive connection) open

    # Merge in the sandbox (a UI action), then queryAll shows the losers; query does not.
    loser = sf.Account.create({"Name": "Acme Duplicate"})["id"]
    contact = sf.Contact.create({"LastName": "Lovelace", "AccountId": loser})["id"]
    admin(server, ca, "/actions", {"action": "merge", "object": "Account", "master": created["id"],
                                   "losers": [loser]})
    live = sf.query("SELECT Id FROM Account WHERE Name LIKE 'Acme%'")["records"]
    assert [r["Id"] for r in live] == [created["id"]]
    every = sf.query_all("SELECT Id, IsDeleted, MasterRecordId FROM Account WHERE Name LIKE 'Acme%'",
                         include_deleted=True)["records"]
    assert {r["Id"]: (r["IsDeleted"], r["MasterRecordId"]) for r in every} == {
        created["id"]: (False, None), loser: (True, created["id"])}
    assert sf.Contact.get(contact)["AccountId"] == created["id"]


def test_query_all_pages_through_more_than_2000_rows(server: ServerThread, tls: tuple[str, str, str]) -> None:
    ca = tls[2]
    token = "00D5j000000PAGING!AQ"
    sf = client_for(server, ca, token)
    sf.query("SELECT COUNT() FROM Account")  # provisions the tenant
    httpx.post(f"{https(server)}/_sandbox/tenants/{token}/seed", headers=ADMIN,
               verify=ssl.create_default_context(cafile=ca), timeout=60, json={
        "demo": {"accounts": 2500, "contacts_per_account": 0, "opportunities_per_account": 0, "leads": 0}})
    first = sf.query("SELECT Id, Name FROM Account")
    assert first["totalSize"] == 2500 and first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v60.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    everything = sf.query_all("SELECT Id, Name FROM Account")
    ids = [r["Id"] for r in everything["records"]]
    assert everything["totalSize"] == 2500 and len(set(ids)) == 2500


def test_spent_quota_raises_refused_request(server: ServerThread, tls: tuple[str, str, str]) -> None:
    ca = tls[2]
    token = "00D5j000000QUOTA!AQ"
    sf = client_for(server, ca, token)
    sf.query("SELECT COUNT() FROM Account")
    httpx.put(f"{https(server)}/_sandbox/tenants/{token}/limits", headers=ADMIN,
              verify=ssl.create_default_context(cafile=ca), json={"policies": [
        {"name": "DailyApiRequests", "kind": "daily", "limit": 2, "route": "/services/data/*"}]})
    sf.query("SELECT COUNT() FROM Account")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT COUNT() FROM Account")
    assert refused.value.status == 403 and refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    del refused
