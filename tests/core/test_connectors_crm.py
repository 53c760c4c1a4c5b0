"""CrmClient against the Salesforce-compatible CRM mock, in-process: reads, account updates, upsert by
external id, SOQL, Sforce-Limit-Info pacing, a spent quota, retries, and version drift."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from core.connectors import ConflictError, CrmClient, NotFoundError, RateLimitedError, SchemaDriftError
from core.connectors.mapping.crm import AccountUpdate, parse_opportunity
from core.model import AccountStatus, Money, OpportunityStage
from mocks.crm.system import crm_system
from mocks.crm.versions import crm_versions
from mocks.kernel.versions import VersionRegistry
from tests.core.test_connectors_helpers import FAST, Sandbox, app_of, statuses

TOKEN = "crm-connectors-1"
ACC = "acc_01J0000000000000000000000A"
OPP = "opp_01J0000000000000000000000A"


@pytest.fixture
def app() -> Any:
    return app_of(crm_system())


@pytest.fixture
async def sandbox(app: Any) -> AsyncIterator[Sandbox]:
    box = Sandbox(app, TOKEN)
    await box.create()
    yield box
    await box.aclose()


def client(app: Any, version: str = "59.0", **kwargs: Any) -> CrmClient:
    kwargs.setdefault("transport", httpx.ASGITransport(app=app))
    kwargs.setdefault("retry", FAST)
    return CrmClient(base_url="http://crm.test", access_token=TOKEN, api_version=version, **kwargs)


async def seed_deal(sandbox: Sandbox, stage: str = "Negotiation/Review") -> tuple[str, str]:
    out = await sandbox.seed({"records": {
        "Account": [{"@ref": "a", "Name": "Acme", "BillingCountry": "Germany", "External_Id__c": "EXT-1",
                     "Website": "https://www.acme.example/x"}],
        "Opportunity": [{"AccountId": "@a", "Name": "Acme - New", "StageName": stage, "CloseDate": "2026-03-31",
                         "Amount": 12000.5}],
    }})
    return out["created"]["Account"][0], out["created"]["Opportunity"][0]


async def test_reads_map_to_canonical(app: Any, sandbox: Sandbox) -> None:
    account_id, opp_id = await seed_deal(sandbox)
    async with client(app) as c:
        opp = await c.get_opportunity(opp_id)
        account = await c.get_account(account_id)
        assert (await c.get_account_by_external_id("EXT-1")).id == account_id
        with pytest.raises(NotFoundError):
            await c.get_account("001000000000000AAA")
    assert opp.stage is OpportunityStage.NEGOTIATION and opp.account_id == account_id
    canonical = opp.to_canonical(id=OPP, account_id=ACC, currency="EUR")
    assert canonical.amount == Money(amount_minor=1200050, currency="EUR")
    acc = account.to_canonical(id=ACC, currency="EUR")
    assert (acc.country, acc.domain, acc.status) == ("DE", "acme.example", AccountStatus.ACTIVE)


async def test_update_account_fields_and_soql(app: Any, sandbox: Sandbox) -> None:
    account_id, _ = await seed_deal(sandbox)
    update = AccountUpdate(at_risk=True, ar_balance=Money(amount_minor=12345, currency="EUR"),
                           renewal_date=date(2027, 1, 31), health_score=42)
    async with client(app) as c:
        await c.update_account(account_id, update)
        account = await c.get_account(account_id)
        rows = await c.query(f"SELECT Id, At_Risk__c, AR_Balance__c FROM Account WHERE Id = '{account_id}'")
    assert account.at_risk and account.ar_balance == Decimal("123.45") and account.health_score == 42
    assert account.renewal_date == date(2027, 1, 31)
    assert rows == [{"Id": account_id, "At_Risk__c": True, "AR_Balance__c": 123.45}]
    patch = (await sandbox.journal(method="PATCH"))[-1]
    assert json.loads(patch["request_body"]) == {"At_Risk__c": True, "AR_Balance__c": 123.45,
                                                 "Renewal_Date__c": "2027-01-31", "Health_Score__c": 42}


async def test_upsert_by_external_id_makes_one_account(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        first = await c.upsert_account(ACC, {"Name": "Acme", "BillingCountry": "DE"})
        second = await c.upsert_account(ACC, AccountUpdate(name="Acme AG", at_risk=False))
        rows = await c.query(f"SELECT Id, Name FROM Account WHERE External_Id__c = '{ACC}'")
    assert first.created and not second.created and first.id == second.id
    assert rows == [{"Id": first.id, "Name": "Acme AG"}]


async def test_patch_retried_on_5xx(app: Any, sandbox: Sandbox) -> None:
    account_id, _ = await seed_deal(sandbox)
    await sandbox.faults({"route": "/services/data/*/sobjects/Account/*", "method": "PATCH", "kind": "error",
                          "status": 503, "max_hits": 2})
    async with client(app) as c:
        await c.update_account(account_id, AccountUpdate(at_risk=True))
        assert (await c.get_account(account_id)).at_risk
    assert statuses(await sandbox.journal(method="PATCH")) == [503, 503, 204]


async def test_limit_info_slows_the_client_down_and_a_spent_quota_is_not_retried(app: Any, sandbox: Sandbox) -> None:
    await sandbox.limits({"name": "DailyApiRequests", "kind": "daily", "limit": 10, "route": "/services/data/*"})
    account_id, _ = await seed_deal(sandbox)
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    async with client(app, sleep=record, slow_at=0.5, max_pause=1.0) as c:
        for _ in range(10):
            await c.get_account(account_id)
        assert c.usage is not None and (c.usage.used, c.usage.quota) == (10, 10)
        # Calls 1-6 saw usage below half the quota; from then on each pause grows with usage.
        assert pauses == pytest.approx([0.2, 0.4, 0.6, 0.8]) and c.paused_s == pytest.approx(2.0)
        with pytest.raises(RateLimitedError) as spent:
            await c.get_account(account_id)
        assert pauses[-1] == pytest.approx(1.0)  # at the quota: max_pause
    assert spent.value.status == 403 and spent.value.code == "REQUEST_LIMIT_EXCEEDED" and spent.value.attempts == 1
    assert statuses(await sandbox.journal())[-1] == 403 and statuses(await sandbox.journal()).count(403) == 1


async def test_multiple_external_id_matches_are_a_conflict(app: Any, sandbox: Sandbox) -> None:
    await sandbox.seed({"records": {"Account": [{"Name": "A", "External_Id__c": "dup"},
                                                {"Name": "B", "External_Id__c": "dup"}]}})
    async with client(app) as c:
        with pytest.raises(ConflictError):
            await c.upsert_account("dup", {"Name": "C"})


async def test_stage_drift_names_stagename_and_the_newer_mapping_passes(app: Any, sandbox: Sandbox) -> None:
    _, opp_id = await seed_deal(sandbox)
    async with client(app, "60.0") as new:
        resp = await new._request("GET", f"/services/data/v60.0/sobjects/Opportunity/{opp_id}")
        assert (await new.get_opportunity(opp_id)).stage is OpportunityStage.NEGOTIATION
    v60_payload = resp.json()
    assert v60_payload["StageName"] == "Negotiation"
    with pytest.raises(SchemaDriftError) as drift:
        parse_opportunity(v60_payload, "59.0")
    assert (drift.value.system, drift.value.object, drift.value.field) == ("crm", "Opportunity", "StageName")
    assert parse_opportunity(v60_payload, "60.0").stage is OpportunityStage.NEGOTIATION


async def test_an_org_that_no_longer_serves_the_pinned_version_is_drift() -> None:
    only_60 = crm_versions()
    registry = VersionRegistry("crm", [only_60.get("60.0")], default="60.0", schema_names={},
                               type_of=lambda data: None)
    app = app_of(crm_system(versions=registry))
    async with client(app, "59.0") as old:
        with pytest.raises(SchemaDriftError) as drift:
            await old.get_account("001000000000000AAA")
    assert drift.value.field is None and "59.0" in drift.value.detail
    async with client(app, "60.0") as new:
        with pytest.raises(NotFoundError):
            await new.get_account("001000000000000AAA")


async def test_correlation_headers_reach_the_journal(app: Any, sandbox: Sandbox) -> None:
    account_id, _ = await seed_deal(sandbox)
    headers = {"X-Correlation-Id": "corr-crm", "traceparent": "00-ab-cd-01"}
    async with client(app, headers_provider=lambda: headers) as c:
        await c.update_account(account_id, AccountUpdate(health_score=80))
    [entry] = await sandbox.journal(correlation_id="corr-crm")
    assert entry["method"] == "PATCH" and entry["traceparent"] == "00-ab-cd-01"
