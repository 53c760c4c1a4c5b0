"""CsClient against the Gainsight-style CS mock, in-process: company upsert / update, CTAs once per key,
onboarding plans, health, timeline, rate limits, and v1 <-> v2 drift."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from core.connectors import ClientLimiter, CsClient, Limits, NotFoundError, RetryPolicy, SchemaDriftError, VendorError
from core.connectors.mapping.cs import CompanyInput
from core.model import HealthTrend, MilestoneStatus, Money
from mocks.cs.system import cs_system
from tests.core.test_connectors_helpers import FAST, Sandbox, app_of, statuses

KEY = "cs-connectors-key1"
ACC = "acc_01J0000000000000000000000A"
HSC = "hsc_01J0000000000000000000000A"
ACME = CompanyInput(name="Acme", arr=Money(amount_minor=1200050, currency="EUR"), stage="Kick Off",
                    renewal_date=date(2027, 1, 31), csm="csm-7")


@pytest.fixture
def app() -> Any:
    return app_of(cs_system())


@pytest.fixture
async def sandbox(app: Any) -> AsyncIterator[Sandbox]:
    box = Sandbox(app, KEY)
    await box.create()
    yield box
    await box.aclose()


def client(app: Any, version: str = "v1", **kwargs: Any) -> CsClient:
    kwargs.setdefault("transport", httpx.ASGITransport(app=app))
    kwargs.setdefault("retry", FAST)
    return CsClient(base_url="http://cs.test", access_key=KEY, api_version=version, **kwargs)


async def test_company_upsert_update_and_read(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        first = await c.upsert_company(ACC, ACME)
        second = await c.upsert_company(ACC, ACME)
        assert (first.action, second.action, first.gsid) == ("inserted", "updated", second.gsid)
        await c.update_company(ACC, CompanyInput(arr=Money(amount_minor=2400000, currency="EUR")))
        company = await c.get_company(ACC)
        with pytest.raises(NotFoundError):
            await c.update_company("acc_unknown", CompanyInput(arr=None))
        with pytest.raises(NotFoundError):
            await c.get_company("acc_unknown")
    assert company.gsid == first.gsid and company.stage == "Kick Off" and company.csm == "csm-7"
    assert company.arr_money("EUR") == Money(amount_minor=2400000, currency="EUR")


async def test_cta_is_created_once_per_key(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        gsid = (await c.upsert_company(ACC, ACME)).gsid
        cta = await c.create_cta(idempotency_key="failed-payment:in_1", company_id=gsid, name="Payment failed",
                                 priority="High", comments="invoice in_1")
        again = await c.create_cta(idempotency_key="failed-payment:in_1", company_id=gsid, name="Payment failed")
        other = await c.create_cta(idempotency_key="failed-payment:in_2", company_id=gsid, name="Payment failed")
        assert cta.gsid == again.gsid != other.gsid and cta.type == "Risk" and cta.priority == "High"
        closed = await c.close_cta(cta.gsid)
        assert closed.is_closed
        assert (await c.create_cta(idempotency_key="failed-payment:in_1", company_id=gsid, name="x")).gsid == cta.gsid
        assert len(await c.list_ctas(gsid)) == 2
    assert len(await sandbox.journal(method="POST", path="/v2/cockpit/cta", status=200)) == 3  # 2 creates + close


async def test_onboarding_plan_is_started_once(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        gsid = (await c.upsert_company(ACC, ACME)).gsid
        plan = await c.start_onboarding(gsid, start_date=date(2026, 1, 1))
        again = await c.start_onboarding(gsid)
    assert plan == again and len(plan.milestones) == 5
    ids = [f"obm_01J00000000000000000000{i:03d}" for i in range(5)]
    milestones = plan.to_milestones(ids=ids, account_id=ACC)
    assert [m.sequence for m in milestones] == [1, 2, 3, 4, 5]
    assert {m.status for m in milestones} == {MilestoneStatus.NOT_STARTED}
    assert milestones[0].due_date == date(2026, 1, 4)


async def test_health_from_scorecard_and_company(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        gsid = (await c.upsert_company(ACC, ACME)).gsid
        empty = await c.get_scorecard(gsid)
        assert empty.score is None and "Support" in empty.measures
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cs.test",
                                     headers={"accesskey": KEY}) as raw:
            resp = await raw.put(f"/v1/scorecard/company/{gsid}/measures",
                                 json={"measures": [{"name": n, "score": 80} for n in empty.measures]})
            assert resp.status_code == 200, resp.text
        card = await c.get_scorecard(gsid)
        company = await c.get_company(ACC)
    assert card.score == 80 and company.health_score == 80
    health = company.to_health(id=HSC, account_id=ACC)
    assert health.score == 80 and health.trend in set(HealthTrend)


async def test_timeline_activity_dedupes_by_external_id(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        gsid = (await c.upsert_company(ACC, ACME)).gsid
        first = await c.log_activity(external_id="amend:sub_1:r2", company_id=gsid, subject="Entitlement: 20 seats")
        second = await c.log_activity(external_id="amend:sub_1:r2", company_id=gsid, subject="Entitlement: 20 seats")
    assert first == second


async def test_rate_limit_storm_completes_after_retry_after(app: Any, sandbox: Sandbox) -> None:
    await sandbox.limits({"name": "calls_per_minute", "kind": "fixed", "limit": 3, "window_s": 1.0})
    retry = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, max_retry_after=5.0)
    async with client(app, retry=retry, limiter=ClientLimiter(Limits())) as c:
        results = await asyncio.gather(*(c.upsert_company(f"acc-{i}", CompanyInput(name=f"C{i}")) for i in range(5)))
    writes = await sandbox.journal(method="POST", path="/v1/data/objects/Company")
    assert 429 in statuses(writes) and {r.action for r in results} == {"inserted"} and len(results) == 5
    assert len({r.gsid for r in results}) == 5


async def test_5xx_then_success_and_persistent_5xx(app: Any, sandbox: Sandbox) -> None:
    await sandbox.faults({"route": "/v1/data/objects/Company", "kind": "error", "status": 503, "max_hits": 2})
    async with client(app) as c:
        await c.upsert_company(ACC, ACME)
        assert statuses(await sandbox.journal(path="/v1/data/objects/Company")) == [503, 503, 200]
        await sandbox.faults({"route": "/v2/cockpit/cta", "method": "POST", "kind": "error", "status": 500})
        with pytest.raises(VendorError) as failed:
            await c.create_cta(idempotency_key="k", company_id=(await c.get_company(ACC)).gsid, name="Risk")
    # A CTA create is not repeated in-call (no external id): one attempt, and the error says retry later.
    assert failed.value.retryable and failed.value.attempts == 1


async def test_drift_v2_names_the_field_and_the_v2_mapping_passes(app: Any, sandbox: Sandbox) -> None:
    async with client(app, "v1") as old:
        await old.upsert_company(ACC, ACME)
        await sandbox.version("v2")
        with pytest.raises(SchemaDriftError) as drift:
            await old.get_company(ACC)
        assert (drift.value.system, drift.value.object, drift.value.field) == ("cs", "company", "HealthScore")
        with pytest.raises(SchemaDriftError) as write_drift:
            await old.upsert_company(ACC, CompanyInput(csm="csm-8"))
        assert write_drift.value.field == "CSM"
    async with client(app, "v2") as new:
        company = await new.get_company(ACC)
        assert (company.stage, company.csm) == ("Kick Off", "csm-7")
        await new.upsert_company(ACC, CompanyInput(stage="Adopting", csm="csm-9"))
        assert (await new.get_company(ACC)).stage == "Adopting"


async def test_correlation_headers_reach_the_journal(app: Any, sandbox: Sandbox) -> None:
    async with client(app, headers_provider=lambda: {"X-Correlation-Id": "corr-cs", "traceparent": "00-a-b-01"}) as c:
        await c.upsert_company(ACC, ACME)
    [entry] = await sandbox.journal(correlation_id="corr-cs")
    assert entry["traceparent"] == "00-a-b-01" and entry["path"] == "/v1/data/objects/Company"
