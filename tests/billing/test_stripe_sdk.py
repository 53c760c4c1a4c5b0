"""The official `stripe` library against the billing mock on a real socket (uvicorn in a thread).

Covers the lifecycle a real integration sees: a customer with a visa card, a monthly subscription on a test
clock, a renewal paid a month later; a failing card, `invoice.payment_failed`, dunning retries on schedule,
then `canceled` or `unpaid`; an exact proration; idempotent retries; and signed webhooks that
`stripe.Webhook.construct_event` accepts (and rejects when tampered or stale).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mocks.billing.models import BillingSettings
from mocks.billing.system import billing_system, sign
from mocks.kernel.app import create_mock_app
from mocks.kernel.serving import ServerThread
from mocks.kernel.webhooks import DeliveryRoutes
from tests.billing.conftest import ADMIN

stripe.enable_telemetry = False

DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01
RECEIVER = "http://receiver.test"


class Receiver:
    """An in-process webhook receiver that verifies every delivery the way a Stripe integration does."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.events: list[Any] = []
        self.raw: list[tuple[bytes, str]] = []
        self.rejected = 0
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("stripe-signature", "")
        for secret in self.secrets:
            try:
                event = stripe.Webhook.construct_event(body, header, secret)
            except stripe.SignatureVerificationError:
                continue
            self.events.append(event)
            self.raw.append((body, header))
            return Response(status_code=200)
        self.rejected += 1
        return Response(status_code=400)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [e for e in self.events if e["type"] == event_type]
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"no {count} x {event_type} delivered; got {self.types()}")


def _serve(settings: BillingSettings | None = None, rate_limit: int | None = None) -> Any:
    receiver = Receiver()
    routes = DeliveryRoutes()
    routes.register(RECEIVER, receiver.app)
    app = create_mock_app(billing_system(rate_limit=rate_limit, settings=settings), admin_token=ADMIN,
                          routes=routes)
    return ServerThread(app), receiver


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerThread, Receiver]]:
    srv, receiver = _serve()
    with srv:
        yield srv, receiver


_keys = iter(range(10_000))


def client_for(url: str, key: str | None = None) -> stripe.StripeClient:
    key = key or f"sk_test_sdk{next(_keys)}x{int(time.time() * 1000) % 100000}"
    return stripe.StripeClient(key, base_addresses={"api": url}, max_network_retries=0)


def advance(client: stripe.StripeClient, clock_id: str, to: int) -> None:
    clock = client.v1.test_helpers.test_clocks.advance(clock_id, {"frozen_time": to})
    deadline = time.monotonic() + 15
    while clock.status != "ready":
        assert time.monotonic() < deadline, "test clock never became ready"
        time.sleep(0.02)
        clock = client.v1.test_helpers.test_clocks.retrieve(clock_id)
    assert clock.frozen_time == to


def setup_subscription(client: stripe.StripeClient, amount: int = 1000) -> tuple[Any, Any, Any, Any]:
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": T0, "name": "sdk"})
    cus = client.v1.customers.create({"email": "sdk@example.com", "test_clock": clock.id})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": pm.id}})
    price = client.v1.prices.create({"currency": "usd", "unit_amount": amount, "recurring": {"interval": "month"},
                                     "product_data": {"name": "Starter"}})
    sub = client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": price.id}]})
    return clock, cus, price, sub


def test_sdk_pins_endive_and_renewal_is_paid(server: tuple[ServerThread, Receiver]) -> None:
    srv, receiver = server
    client = client_for(srv.url)
    ep = client.v1.webhook_endpoints.create({"url": f"{RECEIVER}/hook", "enabled_events": ["invoice.paid"]})
    receiver.secrets.append(ep.secret)
    clock, cus, _price, sub = setup_subscription(client)
    assert sub.status == "active"
    # stripe-python 16 sends 2026-10-28.endive: periods live on the items only.
    assert "current_period_end" not in sub
    period_end = sub["items"]["data"][0]["current_period_end"]
    assert period_end == T0 + 31 * DAY
    advance(client, clock.id, period_end + 2 * 3600)
    invoices = client.v1.invoices.list({"customer": cus.id})
    assert [i.billing_reason for i in invoices.data] == ["subscription_cycle", "subscription_create"]
    renewal = invoices.data[0]
    assert renewal.status == "paid" and renewal.amount_paid == 1000
    assert "paid" not in renewal and "payments" in renewal  # endive invoice shape
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "active" and sub["items"]["data"][0]["current_period_start"] == period_end
    paid = receiver.wait_for("invoice.paid", 2)
    assert {e["data"]["object"]["id"] for e in paid} == {i.id for i in invoices.data}
    assert receiver.rejected == 0


@pytest.mark.parametrize(("after_retries", "final_status"), [("cancel", "canceled"), ("mark_unpaid", "unpaid")])
def test_failed_renewal_dunning(after_retries: str, final_status: str) -> None:
    srv, receiver = _serve(BillingSettings(after_retries=after_retries, retry_schedule_days=[3, 5, 7]))
    with srv:
        client = client_for(srv.url)
        ep = client.v1.webhook_endpoints.create({"url": f"{RECEIVER}/hook",
                                                 "enabled_events": ["invoice.payment_failed"]})
        receiver.secrets.append(ep.secret)
        clock, cus, _price, sub = setup_subscription(client)
        bad = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
        client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": bad.id}})
        period_end = sub["items"]["data"][0]["current_period_end"]
        advance(client, clock.id, period_end + 2 * 3600)
        renewal = client.v1.invoices.list({"customer": cus.id, "limit": 1}).data[0]
        assert renewal.status == "open" and renewal.attempt_count == 1
        assert renewal.next_payment_attempt == period_end + 3600 + 3 * DAY
        assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
        failed = client.v1.events.list({"type": "invoice.payment_failed"}).data
        assert [e.data.object.id for e in failed] == [renewal.id]
        receiver.wait_for("invoice.payment_failed", 1)
        # Retries on schedule: day 3, day 8, day 15 after the first attempt.
        first = period_end + 3600
        for attempt, day in ((2, 3), (3, 8)):
            advance(client, clock.id, first + day * DAY + 60)
            inv = client.v1.invoices.retrieve(renewal.id)
            assert inv.attempt_count == attempt and inv.status == "open"
            assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
        advance(client, clock.id, first + 15 * DAY + 60)
        inv = client.v1.invoices.retrieve(renewal.id)
        assert inv.attempt_count == 4 and inv.next_payment_attempt is None
        assert client.v1.subscriptions.retrieve(sub.id).status == final_status
        receiver.wait_for("invoice.payment_failed", 4)


def test_mid_period_upgrade_prorates_to_the_cent(server: tuple[ServerThread, Receiver]) -> None:
    srv, _ = server
    client = client_for(srv.url)
    clock, cus, price, sub = setup_subscription(client, amount=1000)
    item = sub["items"]["data"][0]
    start, end = item["current_period_start"], item["current_period_end"]
    halfway = start + (end - start) // 2
    advance(client, clock.id, halfway)
    bigger = client.v1.prices.create({"currency": "usd", "unit_amount": 2000, "recurring": {"interval": "month"},
                                      "product": price.product})
    client.v1.subscriptions.update(sub.id, {"items": [{"id": item["id"], "price": bigger.id}],
                                            "proration_behavior": "create_prorations", "proration_date": halfway})
    pending = client.v1.invoice_items.list({"customer": cus.id, "pending": True}).data
    assert sorted(i.amount for i in pending) == [-500, 1000]
    assert sum(i.amount for i in pending) == 500
    advance(client, clock.id, end + 2 * 3600)
    renewal = client.v1.invoices.list({"customer": cus.id, "limit": 1}).data[0]
    assert renewal.amount_due == 2000 + 500 and renewal.status == "paid"


def test_idempotency_with_the_sdk(server: tuple[ServerThread, Receiver]) -> None:
    srv, _ = server
    client = client_for(srv.url)
    a = client.v1.customers.create({"email": "idem@example.com"}, {"idempotency_key": "same-key"})
    b = client.v1.customers.create({"email": "idem@example.com"}, {"idempotency_key": "same-key"})
    assert a.id == b.id
    assert b.last_response.headers["idempotent-replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@example.com"}, {"idempotency_key": "same-key"})
    assert len(client.v1.customers.list().data) == 1


def test_sdk_errors_map_to_stripe_exceptions(server: tuple[ServerThread, Receiver]) -> None:
    srv, _ = server
    client = client_for(srv.url)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.retrieve("cus_missing")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    cus = client.v1.customers.create({"email": "x@example.com"})
    with pytest.raises(stripe.CardError) as card:
        client.v1.payment_methods.attach("pm_card_chargeDeclined", {"customer": cus.id})
    assert card.value.http_status == 402 and card.value.code == "card_declined"
    with pytest.raises(stripe.AuthenticationError):
        client_for(srv.url, "sk_live_nope1234").v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.customers.create({"balance": "lots"})  # type: ignore[typeddict-item]
    assert bad.value.param == "balance"


def test_rate_limit_is_the_sdks_rate_limit_error() -> None:
    srv, _ = _serve(rate_limit=2)
    with srv:
        client = stripe.StripeClient("sk_test_ratelimited", base_addresses={"api": srv.url}, max_network_retries=2)
        client.v1.customers.list()
        client.v1.customers.list()
        with pytest.raises(stripe.RateLimitError) as info:
            client.v1.customers.list()
        assert info.value.json_body["error"]["code"] == "rate_limit"
        assert info.value.headers["stripe-should-retry"] == "false"
        # `Stripe-Should-Retry: false`: the library gave up at once, although it may retry twice.
        assert len(srv.server.config.app.state.registry.get("sk_test_ratelimited").journal) == 3


def test_webhook_signatures_reject_tampered_and_stale(server: tuple[ServerThread, Receiver]) -> None:
    srv, receiver = server
    client = client_for(srv.url)
    ep = client.v1.webhook_endpoints.create({"url": f"{RECEIVER}/hook", "enabled_events": ["customer.created"]})
    receiver.secrets.append(ep.secret)
    cus = client.v1.customers.create({"email": "hook@example.com"})
    delivered = [e for e in receiver.wait_for("customer.created", 1, timeout=10) if e.data.object.id == cus.id]
    deadline = time.monotonic() + 10
    while not delivered and time.monotonic() < deadline:
        time.sleep(0.02)
        delivered = [e for e in receiver.events if e["type"] == "customer.created" and e.data.object.id == cus.id]
    assert delivered, "the customer.created webhook never arrived"
    body, header = next((b, h) for b, h in receiver.raw if cus.id.encode() in b)
    event = stripe.Webhook.construct_event(body, header, ep.secret)
    assert event.id.startswith("evt_") and event.data.object.email == "hook@example.com"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.replace(b"hook@example.com", b"evil@example.com"), header, ep.secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_wrong")
    stale = sign(body, ep.secret, int(time.time()) - 600)["Stripe-Signature"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, stale, ep.secret)
    fresh = sign(body, ep.secret, int(time.time()))["Stripe-Signature"]
    assert stripe.Webhook.construct_event(body, fresh, ep.secret).id == event.id


def test_no_event_loop_left_behind() -> None:
    # The module's servers run their own loops in threads; the test thread must not have one running.
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
