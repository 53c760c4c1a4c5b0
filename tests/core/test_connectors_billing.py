"""BillingClient against the Stripe-compatible billing mock, in-process: calls, idempotency, 429 storms,
5xx retries, drift between 2023-08-16 and 2026-10-28.endive, correlation headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core.connectors import (
    BillingClient,
    ClientLimiter,
    Limits,
    NotFoundError,
    RetryPolicy,
    SchemaDriftError,
    SubscriptionItemInput,
    VendorError,
)
from core.model import InvoiceStatus, Money, SubscriptionStatus
from mocks.billing.system import billing_system
from tests.core.test_connectors_helpers import FAST, FlakyTransport, Sandbox, app_of, statuses

KEY = "sk_test_connectors1"
V2023 = "2023-08-16"
ENDIVE = "2026-10-28.endive"
ACC = "acc_01J0000000000000000000000A"
SBS = "sbs_01J0000000000000000000000A"
INV = "inv_01J0000000000000000000000A"


@pytest.fixture
def app() -> Any:
    return app_of(billing_system(rate_limit=None))


@pytest.fixture
async def sandbox(app: Any) -> AsyncIterator[Sandbox]:
    box = Sandbox(app, KEY)
    await box.create()
    yield box
    await box.aclose()


def client(app: Any, version: str = V2023, **kwargs: Any) -> BillingClient:
    kwargs.setdefault("transport", httpx.ASGITransport(app=app))
    kwargs.setdefault("retry", FAST)
    return BillingClient(base_url="http://billing.test", api_key=KEY, api_version=version, **kwargs)


async def price_id(app: Any, amount: int = 1000) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing.test",
                                 headers={"Authorization": f"Bearer {KEY}"}) as raw:
        resp = await raw.post("/v1/prices", data={"currency": "usd", "unit_amount": amount, "lookup_key": "pro_monthly",
                                                  "recurring[interval]": "month", "product_data[name]": "Pro"})
        assert resp.status_code == 200, resp.text
        return resp.json()["id"]


async def subscribed(c: BillingClient, app: Any, key: str = "flow-1") -> tuple[str, str]:
    customer = await c.create_customer(idempotency_key=key, name="Acme", email="ap@acme.example")
    await c.attach_payment_method("pm_card_visa", customer.id, idempotency_key=key)
    sub = await c.create_subscription(idempotency_key=key, customer_id=customer.id,
                                      items=[SubscriptionItemInput(await price_id(app), 3)])
    return customer.id, sub.id


async def customers_in(sandbox: Sandbox) -> list[str]:
    """Ids of the customers the billing mock created, from its journal (successful creates only)."""
    import json

    rows = await sandbox.journal(method="POST", path="/v1/customers", status=200)
    return sorted({json.loads(r["response_body"])["id"] for r in rows if r["path"] == "/v1/customers"})


# ---- the calls the flows need ------------------------------------------------------------------------------


async def test_customer_subscription_and_invoice_calls(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        customer = await c.create_customer(idempotency_key="k1", name="Acme", email="ap@acme.example",
                                           metadata={"canonical_id": ACC})
        assert customer.metadata == {"canonical_id": ACC} and customer.email == "ap@acme.example"
        pm = await c.attach_payment_method("pm_card_visa", customer.id, idempotency_key="k1")
        assert (await c.get_customer(customer.id)).default_payment_method == pm
        price = await price_id(app)
        sub = await c.create_subscription(idempotency_key="k1", customer_id=customer.id,
                                          items=[SubscriptionItemInput(price, 3)], metadata={"canonical_id": SBS})
        assert sub.status is SubscriptionStatus.ACTIVE and sub.customer_id == customer.id
        assert [(i.sku, i.quantity, i.unit_amount) for i in sub.items] == [("pro_monthly", 3, 1000)]
        assert (await c.get_subscription(sub.id)) == sub

        updated = await c.update_subscription(sub.id, idempotency_key="k2", proration_behavior="none",
                                              items=[SubscriptionItemInput(price, 5, id=sub.items[0].id)])
        assert updated.items[0].quantity == 5 and len(updated.items) == 1

        invoices = await c.list_invoices(customer.id)
        assert [i.id for i in invoices] == [sub.latest_invoice_id]
        invoice = await c.get_invoice(invoices[0].id)
        assert invoice.status is InvoiceStatus.PAID and invoice.total == 3000 and invoice.subscription_id == sub.id

        renamed = await c.update_customer(customer.id, {"name": "Acme GmbH"}, idempotency_key="k3")
        assert renamed.name == "Acme GmbH"

        canonical = sub.to_canonical(id=SBS, account_id=ACC)
        assert canonical.recurring_amount == Money(amount_minor=3000, currency="USD")
        assert canonical.ref_for("billing").native_id == sub.id
        inv = invoice.to_canonical(id=INV, account_id=ACC, subscription_id=SBS)
        assert inv.total == inv.amount_paid == Money(amount_minor=3000, currency="USD") and inv.paid_at is not None

        with pytest.raises(NotFoundError) as missing:
            await c.get_customer("cus_doesnotexist")
        assert missing.value.code == "resource_missing" and not missing.value.retryable


async def test_every_post_carries_a_derived_idempotency_key(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        await subscribed(c, app, key="flow-7")
    posts = [e for e in await sandbox.journal(method="POST") if e["path"] != "/v1/prices"]
    assert posts and all(e["idempotency_key"] for e in posts)
    assert {e["idempotency_key"] for e in posts} >= {"customer.create:flow-7", "subscription.create:flow-7"}


# ---- idempotency -----------------------------------------------------------------------------------------------


async def test_same_key_twice_makes_one_customer(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        first = await c.create_customer(idempotency_key="same", name="Acme")
        second = await c.create_customer(idempotency_key="same", name="Acme")
    assert first.id == second.id
    assert await customers_in(sandbox) == [first.id]


async def test_lost_response_is_retried_with_the_same_key_and_makes_one_customer(app: Any, sandbox: Sandbox) -> None:
    flaky = FlakyTransport(httpx.ASGITransport(app=app), lambda r: r.method == "POST", lose_response=True)
    async with client(app, transport=flaky) as c:
        customer = await c.create_customer(idempotency_key="lost-1", name="Acme")
    assert flaky.failed == 1
    posts = await sandbox.journal(method="POST", path="/v1/customers")
    assert len(posts) == 2 and {p["idempotency_key"] for p in posts} == {"customer.create:lost-1"}
    assert await customers_in(sandbox) == [customer.id]


# ---- rate limits and faults ----------------------------------------------------------------------------------


async def test_injected_429_storm_completes_after_backoff_with_one_customer(app: Any, sandbox: Sandbox) -> None:
    await sandbox.faults({"route": "/v1/customers", "method": "POST", "kind": "error", "status": 429, "max_hits": 3})
    async with client(app) as c:
        customer = await c.create_customer(idempotency_key="storm", name="Acme")
    assert statuses(await sandbox.journal(method="POST", path="/v1/customers")) == [429, 429, 429, 200]
    assert await customers_in(sandbox) == [customer.id]


async def test_rate_limit_policy_storm_honours_retry_after(app: Any, sandbox: Sandbox) -> None:
    await sandbox.limits({"name": "tight", "kind": "fixed", "limit": 2, "window_s": 1.0})
    retry = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, max_retry_after=5.0)
    # No client-side limiter: the vendor's 429s (Retry-After: 1) are what paces these calls.
    async with client(app, retry=retry, limiter=ClientLimiter(Limits())) as c:
        made = await asyncio.gather(*(c.create_customer(idempotency_key=f"burst-{i}", name=f"C{i}")
                                      for i in range(4)))
    posts = await sandbox.journal(method="POST", path="/v1/customers")
    assert 429 in statuses(posts)
    assert await customers_in(sandbox) == sorted(m.id for m in made) and len(made) == 4
    keys = [p["idempotency_key"] for p in posts if p["status"] == 200]
    assert sorted(keys) == sorted(f"customer.create:burst-{i}" for i in range(4))


async def test_5xx_twice_then_success(app: Any, sandbox: Sandbox) -> None:
    async with client(app) as c:
        customer = await c.create_customer(idempotency_key="k", name="Acme")
        await sandbox.faults({"route": "/v1/customers/*", "method": "GET", "kind": "error", "status": 503,
                              "max_hits": 2})
        assert (await c.get_customer(customer.id)).id == customer.id
    assert statuses(await sandbox.journal(method="GET", path="/v1/customers/")) == [503, 503, 200]


async def test_persistent_5xx_gives_a_retryable_vendor_error_after_n_attempts(app: Any, sandbox: Sandbox) -> None:
    await sandbox.faults({"route": "/v1/customers", "kind": "error", "status": 500})
    async with client(app) as c:
        with pytest.raises(VendorError) as failed:
            await c.create_customer(idempotency_key="doomed", name="Acme")
    assert failed.value.retryable and failed.value.status == 500 and failed.value.attempts == FAST.max_attempts
    assert statuses(await sandbox.journal(path="/v1/customers")) == [500] * FAST.max_attempts


async def test_retry_after_longer_than_the_cap_goes_to_the_caller(app: Any, sandbox: Sandbox) -> None:
    await sandbox.limits({"name": "slow", "kind": "rolling", "limit": 1, "window_s": 60.0})
    async with client(app, retry=RetryPolicy(max_retry_after=2.0)) as c:
        await c.create_customer(idempotency_key="a", name="A")
        with pytest.raises(VendorError) as limited:
            await c.create_customer(idempotency_key="b", name="B")
    assert limited.value.status == 429 and limited.value.retryable and limited.value.attempts == 1


# ---- drift -----------------------------------------------------------------------------------------------------


async def test_subscription_drift_names_the_field_and_the_newer_mapping_passes(app: Any, sandbox: Sandbox) -> None:
    async with client(app, V2023) as old:
        _, sub_id = await subscribed(old, app)
        await sandbox.version(ENDIVE)
        with pytest.raises(SchemaDriftError) as drift:
            await old.get_subscription(sub_id)
        assert (drift.value.system, drift.value.object, drift.value.field) == ("billing", "subscription",
                                                                               "current_period_end")
        assert drift.value.pinned == V2023 and drift.value.served == ENDIVE and not drift.value.retryable
    async with client(app, ENDIVE) as new:
        sub = await new.get_subscription(sub_id)
        assert sub.current_period_end > sub.current_period_start


async def test_invoice_drift_names_paid(app: Any, sandbox: Sandbox) -> None:
    async with client(app, V2023) as old:
        customer_id, _ = await subscribed(old, app)
        await sandbox.version(ENDIVE)
        with pytest.raises(SchemaDriftError) as drift:
            await old.list_invoices(customer_id)
        assert (drift.value.object, drift.value.field) == ("invoice", "paid")
    async with client(app, ENDIVE) as new:
        [invoice] = await new.list_invoices(customer_id)
        assert invoice.payment_refs  # endive's `payments`


async def test_unchanged_objects_still_fail_on_a_version_mismatch(app: Any, sandbox: Sandbox) -> None:
    async with client(app, V2023) as old:
        customer = await old.create_customer(idempotency_key="v", name="Acme")
        await sandbox.version(ENDIVE)
        with pytest.raises(SchemaDriftError) as drift:
            await old.get_customer(customer.id)
    assert drift.value.field is None and drift.value.served == ENDIVE


async def test_sending_the_pin_keeps_the_old_shape_and_an_unknown_pin_is_drift(app: Any, sandbox: Sandbox) -> None:
    async with client(app, V2023, send_version=True) as pinned:
        _, sub_id = await subscribed(pinned, app)
        await sandbox.version(ENDIVE)
        assert (await pinned.get_subscription(sub_id)).id == sub_id
    assert {e["api_version"] for e in await sandbox.journal(path="/v1/subscriptions/")} == {V2023}
    odd = client(app, V2023, send_version=True)
    odd.api_version = "2019-01-01"  # a pin the vendor does not serve
    async with odd:
        with pytest.raises(SchemaDriftError) as unknown:
            await odd.get_subscription(sub_id)
    assert "2019-01-01" in unknown.value.detail


# ---- correlation ----------------------------------------------------------------------------------------------


async def test_correlation_headers_reach_the_journal_on_every_attempt(app: Any, sandbox: Sandbox) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {"X-Correlation-Id": "corr-billing-1", "traceparent": trace}
    await sandbox.faults({"route": "/v1/customers", "kind": "error", "status": 503, "max_hits": 1})
    async with client(app, headers_provider=lambda: headers) as c:
        await c.create_customer(idempotency_key="corr", name="Acme")
    seen = await sandbox.journal(correlation_id="corr-billing-1")
    assert statuses(seen) == [503, 200] and {e["traceparent"] for e in seen} == {trace}
    assert await sandbox.journal(correlation_id="someone-else") == []
