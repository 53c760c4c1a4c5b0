"""ErpClient against the NetSuite-style ERP mock, in-process: customer upsert, sales order create / amend,
invoice upsert, credit hold, concurrency governance, retries, and 2024.2 <-> 2025.1 drift."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from core.connectors import ClientLimiter, ErpClient, Limits, RetryPolicy, SchemaDriftError, VendorError, eid
from core.connectors.mapping.erp import CustomerInput, LineInput
from core.model import Money, OrderStatus
from mocks.erp.system import erp_system
from tests.core.test_connectors_helpers import FAST, Sandbox, app_of, statuses

TOKEN = "erpconnectors1"
ACC = "acc_01J0000000000000000000000A"
ORD = "ord_01J0000000000000000000000A"
ACME = CustomerInput(company_name="Acme GmbH", email="ap@acme.example", subsidiary_id="3", tax_country="DE",
                     tax_number="DE123456789", address={"country": "DE", "city": "Berlin"})


@pytest.fixture
def app() -> Any:
    return app_of(erp_system())


@pytest.fixture
async def sandbox(app: Any) -> AsyncIterator[Sandbox]:
    box = Sandbox(app, TOKEN)
    await box.create()
    await box.seed({"customers": 0, "items": True})
    yield box
    await box.aclose()


def client(app: Any, version: str = "2024.2", **kwargs: Any) -> ErpClient:
    kwargs.setdefault("transport", httpx.ASGITransport(app=app))
    kwargs.setdefault("retry", FAST)
    return ErpClient(base_url="http://erp.test", token=TOKEN, api_version=version, **kwargs)


def plat(quantity: int = 2) -> list[LineInput]:
    return [LineInput(item_external_id="ITEM-PLAT-ANNUAL", quantity=quantity, rate=Decimal("100.50"))]


async def count(sandbox: Sandbox, rtype: str) -> int:
    async with httpx.AsyncClient(transport=sandbox.http._transport, base_url="http://erp.test",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as raw:
        return (await raw.get(f"/services/rest/record/v1/{rtype}")).json()["totalResults"]


async def test_customer_order_invoice_calls(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        customer = await c.upsert_customer(ACC, ACME)
        again = await c.upsert_customer(ACC, ACME)
        assert customer.id == again.id and customer.currency == "EUR" and customer.tax_number == "DE123456789"
        account = customer.to_canonical(id=ACC)
        assert (account.country, account.currency, account.credit_hold) == ("DE", "EUR", False)

        order = await c.create_sales_order(idempotency_key="flow-1:order", customer=eid(ACC), lines=plat())
        assert (order.status, order.total, order.revision, order.external_id) == (
            OrderStatus.APPROVED, Decimal("201.0"), 1, "flow-1:order")
        canonical = order.to_canonical(id=ORD, account_id=ACC)
        assert canonical.total == Money(amount_minor=20100, currency="EUR") and canonical.lines[0].sku == "PLAT-ANNUAL"

        amended = await c.amend_sales_order(order.id, lines=plat(3))
        assert amended.revision == 2 and amended.total == Decimal("301.5")

        invoice = await c.upsert_invoice("in_123", customer=eid(ACC), sales_order=order.id)
        same = await c.upsert_invoice("in_123", customer=eid(ACC), sales_order=order.id, memo="synced")
        assert invoice.id == same.id and invoice.status == "open" and invoice.total == Decimal("301.5")
    assert (await count(sandbox, "customer"), await count(sandbox, "invoice")) == (1, 1)


async def test_sales_order_is_created_once_per_key(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        await c.upsert_customer(ACC, ACME)
        first = await c.create_sales_order(idempotency_key="k-1", customer=eid(ACC), lines=plat())
        second = await c.create_sales_order(idempotency_key="k-1", customer=eid(ACC), lines=plat())
    assert first.id == second.id and await count(sandbox, "salesOrder") == 1
    assert statuses(await sandbox.journal(method="POST")) == [204, 400]


async def test_credit_hold_blocks_new_orders_and_is_not_rewritten(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        await c.upsert_customer(ACC, ACME)
        held = await c.set_credit_hold(eid(ACC), True)
        assert held.on_credit_hold and held.credit_hold_override == "ON"
        await c.set_credit_hold(eid(ACC), True)
        with pytest.raises(VendorError) as blocked:
            await c.create_sales_order(idempotency_key="k-2", customer=eid(ACC), lines=plat())
        assert blocked.value.status == 400 and blocked.value.field == "entity" and not blocked.value.retryable
        assert not (await c.set_credit_hold(eid(ACC), False)).on_credit_hold
    assert len(await sandbox.journal(method="PATCH")) == 2  # on, off: the repeated "on" wrote nothing


async def test_concurrency_429s_are_retried_and_the_client_limit_avoids_them(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        await c.upsert_customer(ACC, ACME)
    await sandbox.limits({"name": "concurrency", "kind": "concurrency", "limit": 2, "route": "/services/rest/*"})
    await sandbox.faults({"route": "/services/rest/*", "method": "GET", "kind": "latency", "latency_ms": 30})
    retry = RetryPolicy(max_attempts=10, base_delay=0.02, max_delay=0.1)
    async with client(app, retry=retry, limiter=ClientLimiter(Limits(max_in_flight=4))) as greedy:
        got = await asyncio.gather(*(greedy.get_customer(eid(ACC)) for _ in range(8)))
    assert len(got) == 8 and statuses(await sandbox.journal(method="GET")).count(429) > 0
    before = len(await sandbox.journal(method="GET"))
    async with client(app, limiter=ClientLimiter(Limits(max_in_flight=2))) as polite:
        await asyncio.gather(*(polite.get_customer(eid(ACC)) for _ in range(8)))
        assert polite.limiter.peak_in_flight == 2
    assert statuses((await sandbox.journal(method="GET"))[before:]) == [200] * 8


async def test_upsert_retried_on_5xx_makes_one_customer(app: Any, sandbox: Sandbox) -> None:
    await sandbox.faults({"route": "/services/rest/record/v1/customer/*", "method": "PUT", "kind": "error",
                          "status": 503, "max_hits": 2})
    async with client(app) as c:
        await c.upsert_customer(ACC, ACME)
    assert statuses(await sandbox.journal(method="PUT")) == [503, 503, 204]
    assert await count(sandbox, "customer") == 1


async def test_persistent_5xx_on_create_is_a_retryable_error(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        await c.upsert_customer(ACC, ACME)
        await sandbox.faults({"route": "/services/rest/record/v1/salesOrder", "method": "POST", "kind": "error",
                              "status": 500})
        with pytest.raises(VendorError) as failed:
            await c.create_sales_order(idempotency_key="k-3", customer=eid(ACC), lines=plat())
    assert failed.value.retryable and failed.value.attempts == FAST.max_attempts
    assert len(await sandbox.journal(method="POST")) == FAST.max_attempts


async def test_drift_2025_1_names_the_field_and_nothing_is_written(app: Any, sandbox: Sandbox) -> None:
    async with client(app, "2024.2") as old:
        await old.upsert_customer(ACC, ACME)
        order = await old.create_sales_order(idempotency_key="k-4", customer=eid(ACC), lines=plat())
        await sandbox.version("2025.1")
        with pytest.raises(SchemaDriftError) as drift:
            await old.get_sales_order(order.id)
        assert (drift.value.system, drift.value.object, drift.value.field) == ("erp", "salesOrder", "status")
        with pytest.raises(SchemaDriftError) as hold_drift:
            await old.set_credit_hold(eid(ACC), True)
        assert (hold_drift.value.object, hold_drift.value.field) == ("customer", "creditHoldOverride")
    assert await sandbox.journal(method="PATCH") == []
    async with client(app, "2025.1") as new:
        assert (await new.get_sales_order(order.id)).status is OrderStatus.APPROVED
        assert (await new.set_credit_hold(eid(ACC), True)).on_credit_hold
    assert json.loads((await sandbox.journal(method="PATCH"))[-1]["request_body"]) == {
        "creditHoldOverride": {"id": "ON"}}


async def test_sending_the_pin_asks_for_that_version(app: Any, sandbox: Sandbox) -> None:
    await sandbox.version("2025.1")
    async with client(app, "2024.2", send_version=True) as pinned:
        customer = await pinned.upsert_customer(ACC, ACME)
        assert customer.credit_hold_override == "AUTO"
    assert {e["api_version"] for e in await sandbox.journal()} == {"2024.2"}


async def test_correlation_headers_reach_the_journal(app: Any, sandbox: Sandbox) -> None:
    async with client(app, headers_provider=lambda: {"X-Correlation-Id": "corr-erp", "traceparent": "00-1-2-01"}) as c:
        await c.upsert_customer(ACC, ACME)
    seen = await sandbox.journal(correlation_id="corr-erp")
    assert [e["method"] for e in seen] == ["PUT", "GET"] and {e["traceparent"] for e in seen} == {"00-1-2-01"}


async def test_invoice_upsert_with_the_callers_read_skips_its_own(app: Any, sandbox: Sandbox) -> None:
    """`existing=` (the invoice the flow just read, or None) saves the upsert its read; a stale None (the
    invoice was created meanwhile) still ends in one invoice, updated."""
    async with client(app) as c:
        await c.upsert_customer(ACC, ACME)
        order = await c.create_sales_order(idempotency_key="k-inv", customer=eid(ACC), lines=plat())
        before = len(await sandbox.journal(method="GET"))
        created = await c.upsert_invoice("in_456", customer=eid(ACC), sales_order=order.id, existing=None)
        updated = await c.upsert_invoice("in_456", customer=eid(ACC), sales_order=order.id, memo="paid",
                                         existing=created)
        stale = await c.upsert_invoice("in_456", customer=eid(ACC), sales_order=order.id, memo="again",
                                       existing=None)
    assert created.id == updated.id == stale.id
    gets = [r["path"] for r in (await sandbox.journal(method="GET"))[before:]]
    assert len(gets) == 3, gets  # only the read-back after each write
    assert await count(sandbox, "invoice") == 1


async def test_put_invoice_answers_the_created_id_and_reads_nothing(app: Any, sandbox: Sandbox) -> None:
    """`put_invoice` is one PUT: the internal id from NetSuite's `Location` when it created the invoice, None
    when it updated one; re-sending the same customer and order is no change, another order is refused."""
    async with client(app) as c:
        await c.upsert_customer(ACC, ACME)
        order = await c.create_sales_order(idempotency_key="k-put", customer=eid(ACC), lines=plat())
        other = await c.create_sales_order(idempotency_key="k-put-2", customer=eid(ACC), lines=plat())
        before = len(await sandbox.journal())
        created = await c.put_invoice("in_789", customer=eid(ACC), sales_order=order.id, memo="open")
        again = await c.put_invoice("in_789", customer=eid(ACC), sales_order=order.id, memo="paid")
        calls = (await sandbox.journal())[before:]
        with pytest.raises(VendorError, match="cannot be changed"):
            await c.put_invoice("in_789", customer=eid(ACC), sales_order=other.id)
        invoice = await c.get_invoice(eid("in_789"))
    assert [r["method"] for r in calls] == ["PUT", "PUT"]
    assert created == invoice.id and again is None
    assert invoice.order_id == order.id and await count(sandbox, "invoice") == 1
