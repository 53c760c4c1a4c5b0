"""Webhook outbox: signing, retries, filters, chaos, quiescence, snapshot, in-process and real HTTP."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mocks.kernel.webhooks import DeliveryRoutes, RetryPolicy, WebhookChaos, WebhookDispatcher

BASE = "http://receiver.test"
URL = f"{BASE}/hooks"
FAST = RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01, timeout=2.0)


def stripe_sign(body: bytes, secret: str, t: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}"}


class Receiver:
    """An in-process webhook receiver that records requests and fails the first `fail_first` of them."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.fail_first = fail_first
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.gate: asyncio.Event | None = None
        self.lock = threading.Lock()

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if self.gate is not None:
            await self.gate.wait()
        with self.lock:
            self.requests.append((dict(request.headers), body))
            n = len(self.requests)
        return Response(status_code=self.status if n <= self.fail_first else 200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks", self.handle, methods=["POST"])])

    def event_ids(self) -> list[str]:
        return [json.loads(body)["id"] for _, body in self.requests]


def make(receiver: Receiver | None = None, *, seed: int = 1, policy: RetryPolicy = FAST,
         sign: Any = stripe_sign, **kw: Any) -> WebhookDispatcher:
    routes = DeliveryRoutes()
    if receiver is not None:
        routes.register(BASE, receiver.app())
    return WebhookDispatcher(system="billing", sign=sign, wall=time.time, rng=random.Random(seed),
                             routes=routes, policy=policy, **kw)


def event(n: int, type_: str = "invoice.paid") -> dict[str, Any]:
    return {"id": f"evt_{n}", "object": "event", "type": type_, "data": {"object": {"n": n}}}


async def test_delivers_signed_raw_body_verifiable_with_vendor_sdk() -> None:
    rx = Receiver()
    wh = make(rx)
    ep = wh.add_endpoint(URL, secret="whsec_abc")
    [d] = wh.enqueue("evt_1", "invoice.paid", event(1))
    assert d.endpoint_id == ep.id
    assert await wh.drain(timeout=5)
    [(headers, body)] = rx.requests
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == event(1)
    verified = stripe.Webhook.construct_event(body, headers["stripe-signature"], "whsec_abc")
    assert verified["id"] == "evt_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["stripe-signature"], "whsec_wrong")
    [log] = wh.deliveries()
    assert log["status"] == "delivered" and log["event_id"] == "evt_1" and log["url"] == URL
    assert [a["status_code"] for a in log["attempts"]] == [200]
    json.dumps(log)  # the log is JSON-able


async def test_callable_body_is_rendered_per_endpoint() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s", api_version="2020-08-27")
    wh.add_endpoint(URL, secret="s", api_version="2024-06-20")
    wh.enqueue("evt_1", "x", lambda ep: json.dumps({"id": "evt_1", "v": ep.api_version}).encode())
    assert await wh.drain(timeout=5)
    assert sorted(json.loads(b)["v"] for _, b in rx.requests) == ["2020-08-27", "2024-06-20"]


async def test_retries_until_receiver_recovers() -> None:
    rx = Receiver(fail_first=2)
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    wh.enqueue("evt_1", "invoice.paid", event(1))
    assert await wh.drain(timeout=5)
    [log] = wh.deliveries()
    assert [a["status_code"] for a in log["attempts"]] == [500, 500, 200]
    assert log["status"] == "delivered" and log["next_attempt_at"] is None
    assert rx.event_ids() == ["evt_1"] * 3


async def test_gives_up_after_max_attempts() -> None:
    rx = Receiver(fail_first=10**6, status=503)
    wh = make(rx, policy=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01))
    wh.add_endpoint(URL, secret="s")
    wh.enqueue("evt_1", "invoice.paid", event(1))
    assert await wh.drain(timeout=5)
    [log] = wh.deliveries(status="failed")
    assert [a["status_code"] for a in log["attempts"]] == [503, 503, 503]
    assert len(rx.requests) == 3 and wh.pending_count() == 0


async def test_timeout_and_connection_error_are_retried() -> None:
    rx = Receiver()
    rx.gate = asyncio.Event()  # never opened: every request hangs
    wh = make(rx, policy=RetryPolicy(max_attempts=2, base_delay=0.001, timeout=0.2))
    wh.add_endpoint(URL, secret="s")
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hooks"
    wh.add_endpoint(dead, secret="s")
    wh.enqueue("evt_1", "invoice.paid", event(1))
    assert await wh.drain(timeout=5)
    by_url = {d["url"]: d for d in wh.deliveries()}
    assert [a["error"] for a in by_url[URL]["attempts"]] == ["timeout", "timeout"]
    assert all("Connect" in a["error"] for a in by_url[dead]["attempts"])
    assert {d["status"] for d in by_url.values()} == {"failed"}


async def test_event_filter_and_disabled_endpoints() -> None:
    rx = Receiver()
    wh = make(rx)
    paid = wh.add_endpoint(URL, secret="s", events=["invoice.paid"])
    star = wh.add_endpoint(URL, secret="s", events=["*"])
    off = wh.add_endpoint(URL, secret="s")
    wh.update_endpoint(off.id, enabled=False)
    first = wh.enqueue("evt_1", "invoice.paid", event(1))
    second = wh.enqueue("evt_2", "customer.created", event(2, "customer.created"))
    assert {d.endpoint_id for d in first} == {paid.id, star.id}
    assert [d.endpoint_id for d in second] == [star.id]
    assert await wh.drain(timeout=5)
    assert sorted(rx.event_ids()) == ["evt_1", "evt_1", "evt_2"]


async def test_fifo_per_endpoint_without_chaos() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    for n in range(20):
        wh.enqueue(f"evt_{n}", "invoice.paid", event(n))
    assert await wh.drain(timeout=5)
    assert rx.event_ids() == [f"evt_{n}" for n in range(20)]


async def test_duplicate_chaos_sends_same_event_twice() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    wh.set_chaos(WebhookChaos(duplicate_probability=1.0))
    made = wh.enqueue("evt_1", "invoice.paid", event(1))
    assert len(made) == 2 and made[1].duplicate_of == made[0].id
    assert await wh.drain(timeout=5)
    assert rx.event_ids() == ["evt_1", "evt_1"]
    assert rx.requests[0][1] == rx.requests[1][1]
    assert all(d["chaos"] == ["duplicate"] for d in wh.deliveries(event_id="evt_1"))


def chaos_decisions(seed: int) -> list[list[str]]:
    wh = make(seed=seed)
    wh.add_endpoint(URL, secret="s")
    wh.set_chaos(WebhookChaos(duplicate_probability=0.5, reorder_probability=0.3, delay_ms=[1, 5],
                              delay_probability=0.5))
    return [d.chaos for n in range(40) for d in wh.enqueue(f"evt_{n}", "t", b"{}")]


def test_chaos_decisions_are_seeded() -> None:
    assert chaos_decisions(7) == chaos_decisions(7)
    assert chaos_decisions(7) != chaos_decisions(8)
    assert any("duplicate" in c for c in chaos_decisions(7))


async def test_reorder_chaos_changes_order_but_loses_nothing() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    wh.set_chaos(WebhookChaos(reorder_probability=1.0, hold_ms=20))
    sent = [f"evt_{n}" for n in range(6)]
    for n in range(6):
        wh.enqueue(f"evt_{n}", "invoice.paid", event(n))
    assert await wh.drain(timeout=5)
    assert rx.event_ids() == ["evt_1", "evt_0", "evt_3", "evt_2", "evt_5", "evt_4"]
    assert sorted(rx.event_ids()) == sent
    assert sum("reorder" in d["chaos"] for d in wh.deliveries()) == 3


async def test_reorder_hold_is_overtaken_by_a_later_enqueue() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    wh.set_chaos(WebhookChaos(reorder_probability=1.0, hold_ms=5000))
    wh.enqueue("evt_0", "invoice.paid", event(0))
    await asyncio.sleep(0)  # let the worker pick up evt_0 and start holding it
    wh.set_chaos(WebhookChaos())
    wh.enqueue("evt_1", "invoice.paid", event(1))
    assert await wh.drain(timeout=2)  # would take 5 s if the arrival did not end the hold
    assert rx.event_ids() == ["evt_1", "evt_0"]


async def test_delay_chaos_postpones_first_attempt() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    wh.set_chaos(WebhookChaos(delay_ms=60))
    [d] = wh.enqueue("evt_1", "invoice.paid", event(1))
    assert d.chaos == ["delay"] and d.delay_ms == 60
    assert await wh.drain(timeout=5)
    assert d.attempts[0]["at_wall"] - d.created_at >= 0.05


async def test_drain_waits_for_in_flight_delivery() -> None:
    rx = Receiver()
    rx.gate = asyncio.Event()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    wh.enqueue("evt_1", "invoice.paid", event(1))
    assert await wh.drain(timeout=0.05) is False
    assert wh.pending_count() == 1 and rx.requests == []
    rx.gate.set()
    assert await wh.drain(timeout=5) is True
    assert wh.pending_count() == 0 and rx.event_ids() == ["evt_1"]


async def test_redeliver_sends_the_same_event_again() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    [d] = wh.enqueue("evt_1", "invoice.paid", event(1))
    assert await wh.drain(timeout=5)
    again = wh.redeliver(d.id)
    assert again.id != d.id and again.redelivery_of == d.id
    assert await wh.drain(timeout=5)
    assert rx.event_ids() == ["evt_1", "evt_1"] and again.status == "delivered"


async def test_remove_endpoint_fails_its_queue() -> None:
    rx = Receiver()
    rx.gate = asyncio.Event()
    wh = make(rx)
    ep = wh.add_endpoint(URL, secret="s")
    made = [d for n in range(3) for d in wh.enqueue(f"evt_{n}", "t", event(n))]
    assert wh.remove_endpoint(ep.id) and not wh.remove_endpoint(ep.id)
    assert await wh.drain(timeout=5)
    assert {d.status for d in made} == {"failed"} and rx.requests == []


async def test_enqueue_from_a_worker_thread_is_handed_to_the_loop() -> None:
    rx = Receiver()
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()
    original = rx.handle

    async def handle(request: Request) -> Response:
        response = await original(request)
        loop.call_soon(arrived.set)
        return response

    rx.handle = handle  # type: ignore[method-assign]
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    wh.enqueue("evt_0", "t", event(0))  # on the loop: the dispatcher learns which loop it runs on
    assert await wh.drain(timeout=5)
    arrived.clear()
    # What a sync (threadpool) route does; no drain() afterwards, so only the hand-over can deliver it.
    await asyncio.to_thread(wh.enqueue, "evt_1", "t", event(1))
    await asyncio.wait_for(arrived.wait(), timeout=5)
    assert rx.event_ids() == ["evt_0", "evt_1"]


def test_enqueue_without_loop_stays_pending_then_drains() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    wh.enqueue("evt_1", "invoice.paid", event(1))
    assert wh.pending_count() == 1 and rx.requests == []
    assert asyncio.run(wh.drain(timeout=5))
    assert rx.event_ids() == ["evt_1"]


def test_dump_load_roundtrip_keeps_endpoints_chaos_and_pending() -> None:
    rx = Receiver()
    wh = make(rx)
    wh.add_endpoint(URL, secret="whsec_1", events=["invoice.paid"], metadata={"k": "v"}, endpoint_id="we_1")
    wh.set_chaos(WebhookChaos(reorder_probability=0.25, delay_ms=[1, 2]))
    for n in range(3):
        wh.enqueue(f"evt_{n}", "invoice.paid", event(n))  # no loop: all stay pending
    snap = json.loads(json.dumps(wh.dump()))
    other = make(rx, seed=99)
    other.load(snap)
    assert [e.to_dict() for e in other.endpoints()] == [e.to_dict() for e in wh.endpoints()]
    assert other.chaos == wh.chaos
    assert other.pending_count() == 3
    assert other.deliveries() == wh.deliveries()
    # The restored RNG continues where the original left off: same future chaos decisions.
    assert [d.chaos for d in other.enqueue("evt_9", "invoice.paid", event(9))] == \
        [d.chaos for d in wh.enqueue("evt_9", "invoice.paid", event(9))]
    assert asyncio.run(other.drain(timeout=5))
    assert sorted(rx.event_ids()) == ["evt_0", "evt_1", "evt_2", "evt_9"]
    assert other.pending_count() == 0 and wh.pending_count() == 4


async def test_log_is_bounded_and_clear_log_keeps_pending() -> None:
    rx = Receiver()
    wh = make(rx, log_size=5)
    wh.add_endpoint(URL, secret="s")
    for n in range(8):
        wh.enqueue(f"evt_{n}", "t", event(n))
    assert await wh.drain(timeout=5)
    assert [d["event_id"] for d in wh.deliveries()] == [f"evt_{n}" for n in range(7, 2, -1)]
    rx.gate = asyncio.Event()
    wh.enqueue("evt_x", "t", event(99))
    wh.clear_log()
    assert [d["event_id"] for d in wh.deliveries()] == ["evt_x"]
    rx.gate.set()
    assert await wh.drain(timeout=5)


def test_routes_match_longest_prefix_on_a_boundary() -> None:
    routes = DeliveryRoutes()
    routes.register("http://core.local/", Starlette())
    routes.register("http://core.local/intake", Starlette())
    assert routes.match("http://core.local/intake/stripe") == "http://core.local/intake"
    assert routes.match("http://core.local/other") == "http://core.local"
    assert routes.match("http://core.localhost/x") is None
    assert routes.transport_for("http://elsewhere/x") is None
    routes.unregister("http://core.local/intake")
    assert routes.match("http://core.local/intake/stripe") == "http://core.local"


@pytest.fixture
def live_receiver() -> Iterator[tuple[str, Receiver]]:
    rx = Receiver(fail_first=1)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(rx.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:  # bounded wait for the condition "server is listening"
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/hooks", rx
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


async def test_real_http_delivery_with_retry(live_receiver: tuple[str, Receiver]) -> None:
    url, rx = live_receiver
    wh = make(None)  # no in-process route: real sockets
    wh.add_endpoint(url, secret="whsec_live")
    wh.enqueue("evt_live", "invoice.paid", event(7))
    assert await wh.drain(timeout=10)
    [log] = wh.deliveries()
    assert [a["status_code"] for a in log["attempts"]] == [500, 200]
    headers, body = rx.requests[-1]
    assert stripe.Webhook.construct_event(body, headers["stripe-signature"], "whsec_live")["id"] == "evt_7"
    await wh.aclose()


CALLER_STATE: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller_state", default=None)


async def test_deliveries_do_not_inherit_the_enqueuing_callers_context() -> None:
    seen: list[str | None] = []

    async def hook(request: Request) -> Response:
        seen.append(CALLER_STATE.get())
        return Response("ok")

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    routes = DeliveryRoutes()
    routes.register("http://ctx.receiver", receiver)
    dispatcher = WebhookDispatcher(system="t", sign=None, wall=lambda: 1_700_000_000.0,
                                   rng=random.Random(1), routes=routes)
    dispatcher.add_endpoint("http://ctx.receiver/hook", secret="s")
    token = CALLER_STATE.set("inside-a-workflow")
    try:
        dispatcher.enqueue("evt_1", "thing.created", b"{}")
    finally:
        CALLER_STATE.reset(token)
    assert await dispatcher.drain(5)
    await dispatcher.aclose()
    assert seen == [None]


class ConcurrencyProbe(Receiver):
    """Holds each request until `expect` are in flight at once (or 5 s pass), recording the most seen."""

    def __init__(self, expect: int, fail_first: int = 0) -> None:
        super().__init__(fail_first=fail_first)
        self.expect, self.in_flight, self.most = expect, 0, 0
        self.full = asyncio.Event()

    async def handle(self, request: Request) -> Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.expect:
            self.full.set()
        try:
            await asyncio.wait_for(self.full.wait(), 5)
        except TimeoutError:
            pass
        finally:
            self.in_flight -= 1
        return await super().handle(request)


async def test_an_endpoint_may_take_several_deliveries_at_once() -> None:
    rx = ConcurrencyProbe(expect=4, fail_first=1)
    wh = make(rx)
    wh.add_endpoint(URL, secret="s", max_in_flight=4)
    for n in range(12):
        wh.enqueue(f"evt_{n}", "invoice.paid", event(n))
    assert await wh.drain(timeout=10)
    assert rx.most == 4  # never more than the endpoint allows
    assert sorted(set(rx.event_ids())) == sorted(f"evt_{n}" for n in range(12))
    assert len(rx.event_ids()) == 13  # one retried after its 500, nothing else twice
    assert all(d["status"] == "delivered" for d in wh.deliveries(limit=20)) and wh.pending_count() == 0


async def test_one_in_flight_is_the_default() -> None:
    rx = ConcurrencyProbe(expect=2)
    rx.full.set()  # nobody waits: just count
    wh = make(rx)
    wh.add_endpoint(URL, secret="s")
    for n in range(6):
        wh.enqueue(f"evt_{n}", "invoice.paid", event(n))
    assert await wh.drain(timeout=5)
    assert rx.most == 1 and rx.event_ids() == [f"evt_{n}" for n in range(6)]


def test_in_flight_limits_are_checked() -> None:
    wh = make()
    with pytest.raises(ValueError, match="max_in_flight"):
        wh.add_endpoint(URL, secret="s", max_in_flight=0)
