"""The shared client: backoff, Retry-After, which calls are retried after connection errors, limiters,
headers per attempt, the version pin, and the mapping reader's drift messages. No mock servers needed."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from core.connectors import ClientLimiter, CsClient, ErpClient, Limits, RetryPolicy, SchemaDriftError, VendorError
from core.connectors.base import parse_retry_after
from core.connectors.mapping.common import Reader
from tests.core.test_connectors_helpers import FAST

OK_COMPANY = {"result": True, "errorCode": None, "errorDesc": None, "data": {"records": []}}


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, full in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)):
        delays = {policy.backoff(attempt, rng) for _ in range(50)}
        assert all(full * 0.5 <= d <= full for d in delays) and len(delays) > 1
    assert RetryPolicy(base_delay=0.1, jitter=0.0).backoff(3, rng) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=lambda: now) == pytest.approx(30.0)


def test_the_pin_must_have_a_mapping() -> None:
    with pytest.raises(ValueError, match="no mapping for API version"):
        ErpClient(base_url="http://erp.test", token="t", api_version="2099.1")


async def test_connection_errors_retry_reads_but_not_unkeyed_creates() -> None:
    calls: list[str] = []
    refused = {"first": True}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        first, refused["first"] = refused["first"], False
        if first or (request.method == "POST" and request.url.path == "/v2/cockpit/cta"):
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=OK_COMPANY)

    async with CsClient(base_url="http://cs.test", access_key="k", api_version="v1", retry=FAST,
                        transport=httpx.MockTransport(handler)) as c:
        assert await c.list_ctas("gs1") == []  # GET: first attempt refused, retried
        calls.clear()
        with pytest.raises(VendorError) as failed:
            await c.create_cta(idempotency_key="k", company_id="gs1", name="Risk")
    assert failed.value.status == 0 and failed.value.retryable and failed.value.attempts == 1
    assert calls == ["GET /v2/cockpit/cta", "POST /v2/cockpit/cta"]


async def test_headers_provider_is_called_on_every_attempt_and_429_waits_retry_after() -> None:
    seen: list[tuple[str | None, str | None]] = []
    waits: list[float] = []
    counter = iter(range(100))

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers.get("x-correlation-id"), request.headers.get("x-gainsight-version")))
        if len(seen) < 3:
            return httpx.Response(429, headers={"Retry-After": "2"}, json={"result": False, "errorCode": "GS_4029"})
        return httpx.Response(200, json=OK_COMPANY)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with CsClient(base_url="http://cs.test", access_key="k", api_version="v2", send_version=True,
                        retry=FAST, sleep=sleep, transport=httpx.MockTransport(handler),
                        headers_provider=lambda: {"X-Correlation-Id": f"c{next(counter)}"}) as c:
        assert await c.list_ctas("gs1") == []
    assert seen == [("c0", "v2"), ("c1", "v2"), ("c2", "v2")] and waits == [2.0, 2.0]


async def test_concurrency_limiter_caps_in_flight() -> None:
    limiter = ClientLimiter(Limits(max_in_flight=3))

    async def work() -> None:
        async with limiter.slot():
            await asyncio.sleep(0.01)

    await asyncio.gather(*(work() for _ in range(12)))
    assert limiter.peak_in_flight == 3 and limiter.in_flight == 0


def test_one_limiter_serves_two_event_loops_at_once() -> None:
    """The flows' loop and the API's loop share a vendor's limit: contention across loops neither raises
    ("bound to a different event loop") nor lets more than the limit through."""
    limiter = ClientLimiter(Limits(max_in_flight=2, rate_per_s=500.0, burst=2))
    errors: list[BaseException] = []
    both_waiting = threading.Barrier(2)

    async def work() -> None:
        async with limiter.slot():
            await asyncio.sleep(0.005)

    def loop_thread() -> None:
        async def main() -> None:
            await asyncio.to_thread(both_waiting.wait, 10)
            await asyncio.gather(*(work() for _ in range(20)))

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=loop_thread) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert limiter.peak_in_flight == 2 and limiter.in_flight == 0


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    limiter = ClientLimiter(Limits(max_in_flight=1))
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot():
            held.set()
            await release.wait()

    first = asyncio.create_task(holder())
    await held.wait()
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)  # let it queue
    waiter.cancel()
    release.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with asyncio.timeout(5):  # the slot came back: a new caller gets it
        async with limiter.slot():
            pass
    assert limiter.in_flight == 0


async def test_token_bucket_spaces_requests() -> None:
    limiter = ClientLimiter(Limits(rate_per_s=50.0, burst=2))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(7):
        async with limiter.slot():
            pass
    # Two from the burst, five more at 50/s: about 0.1 s.
    assert 0.08 <= loop.time() - start < 0.5


def test_reader_names_missing_retyped_and_unknown_fields() -> None:
    r = Reader("erp", "salesOrder", {"status": {"id": "B"}, "n": 1, "items": [{"x": None}]}, "2024.2")
    with pytest.raises(SchemaDriftError, match=r"salesOrder\.tranId: is missing") as missing:
        r.req("tranId", str)
    assert missing.value.field == "tranId" and missing.value.pinned == "2024.2"
    with pytest.raises(SchemaDriftError, match="expected a string, got an object") as retyped:
        r.req("status", str)
    assert retyped.value.field == "status"
    with pytest.raises(SchemaDriftError, match="unknown value"):
        Reader("crm", "Opportunity", {"StageName": "Negotiation"}, "59.0").enum("StageName", {"Closed Won": 1})
    with pytest.raises(SchemaDriftError) as nested:
        r.items("items")[0].req("x", str)
    assert nested.value.field == "items[0].x"
    with pytest.raises(SchemaDriftError, match="expected a boolean"):
        Reader("x", "o", {"flag": 1}, "v").req("flag", bool)
    with pytest.raises(SchemaDriftError, match="expected an integer, got a boolean"):
        Reader("x", "o", {"n": True}, "v").req("n", int)


async def test_event_hooks_see_every_attempt() -> None:
    seen: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        seen.append(request.method)

    replies = iter([httpx.Response(503, json={"result": False, "errorCode": "GS_5003"}),
                    httpx.Response(200, json=OK_COMPANY)])
    async with CsClient(base_url="http://cs.test", access_key="k", api_version="v1", retry=FAST,
                        transport=httpx.MockTransport(lambda request: next(replies)),
                        event_hooks={"request": [on_request]}) as c:
        assert await c.list_ctas("gs1") == []
    assert seen == ["GET", "GET"]


def test_a_429_halves_the_bucket_rate_and_successes_earn_it_back() -> None:
    limiter = ClientLimiter(Limits(rate_per_s=20.0, burst=5))
    limiter.throttled()
    assert limiter.rate_factor == 0.5 and limiter.throttled_count == 1
    for _ in range(10):
        limiter.throttled()
    assert limiter.rate_factor == 0.125  # floored: never starved
    for _ in range(200):
        limiter.succeeded()
    assert limiter.rate_factor == 1.0
    unlimited = ClientLimiter(Limits(max_in_flight=2))  # no rate: nothing to slow down
    unlimited.throttled()
    assert unlimited.rate_factor == 1.0 and unlimited.throttled_count == 0


async def test_after_a_429_the_bucket_spaces_requests_at_the_lower_rate() -> None:
    limiter = ClientLimiter(Limits(rate_per_s=100.0, burst=1))
    limiter.throttled()
    limiter.throttled()  # 25/s now, and the bucket is empty
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):
        async with limiter.slot():
            pass
    # Three tokens at 25/s: ~0.12 s (at the configured 100/s it would be ~0.03 s).
    assert loop.time() - start >= 0.1


async def test_a_connector_slows_its_limiter_when_the_vendor_answers_429() -> None:
    answers = iter([429, 429, 200])

    def vendor(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if status == 429:
            return httpx.Response(429, headers={"Retry-After": "0"}, json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                                                                         "message": "slow down"}])
        return httpx.Response(200, json={"records": []})

    limiter = ClientLimiter(Limits(rate_per_s=1000.0, burst=5))
    client = CsClient(base_url="http://cs", api_version=CsClient.versions[-1], transport=httpx.MockTransport(vendor),
                      limiter=limiter, retry=FAST, access_key="k")
    await client._request("GET", "/v1/anything")
    assert limiter.throttled_count == 2
    assert limiter.rate_factor == pytest.approx(0.25 + 0.01)  # halved twice, then one success
    await client.aclose()
