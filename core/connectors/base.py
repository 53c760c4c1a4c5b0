"""The shared async HTTP client under every connector.

One `BaseClient` per vendor account: base URL, credentials, an explicit API version pin, timeouts,
a client-side limiter (concurrency and / or token bucket), and a retry loop:

- 429 (and NetSuite's concurrency 429): always retried — the vendor refused the request, it never ran —
  after `Retry-After` when the vendor sent one (a wait longer than `RetryPolicy.max_retry_after` is not
  slept in-call: the `RateLimitedError` goes to the caller, whose durable flow can wait instead);
- 5xx and connection errors / timeouts: retried only when the call is safe to repeat: an idempotent
  method (GET, PUT, DELETE, HEAD) or a write carrying an idempotency key / external id (`safe=True`);
- everything else is raised at once as a typed `VendorError`.

Backoff is exponential with jitter: `min(max_delay, base_delay * 2**(n-1))`, minus up to `jitter` of it.
`headers_provider` is called on every attempt, so the runtime's `X-Correlation-Id` / `traceparent` ride on
each outbound request (retries included).

This module knows no vendor: subclasses say how to authenticate, how the vendor spells an error, and
which API version a response was served in.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar

import httpx

from core.connectors.errors import ConnectorError, RateLimitedError, SchemaDriftError, VendorError
from core.connectors.transport import AiohttpTransport

__all__ = [
    "BaseClient",
    "ClientLimiter",
    "HeadersProvider",
    "Limits",
    "RetryPolicy",
    "parse_retry_after",
    "retry_after_of",
]

HeadersProvider = Callable[[], Mapping[str, str]]
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    # Fraction of each delay taken off at random (0 = no jitter, 1 = "full jitter").
    jitter: float = 0.5
    # A Retry-After longer than this is not waited out inside the call.
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1)."""
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return delay * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class Limits:
    """Client-side limits per vendor account: requests in flight and / or a token bucket (rate, burst)."""

    max_in_flight: int | None = None
    rate_per_s: float | None = None
    burst: int = 1

    def share(self, processes: int) -> Limits:
        """One process's part when `processes` processes hold the same vendor account: together they stay
        within these limits (in flight and burst round down, but never to zero: one request each)."""
        if processes <= 1:
            return self
        return Limits(max_in_flight=None if self.max_in_flight is None else max(1, self.max_in_flight // processes),
                      rate_per_s=None if self.rate_per_s is None else self.rate_per_s / processes,
                      burst=max(1, self.burst // processes))


class CrossLoopSemaphore:
    """A counting semaphore whose waiters may sit on different event loops (and threads).

    asyncio.Semaphore / Lock bind to the first loop that waits on them, and the core's connections are used
    from DBOS's loop (flows) and from the API server's loop (reconcile, the dashboard): a shared vendor limit
    must work from both. Waiters queue in order; a release hands the slot to the oldest waiter on its own loop."""

    def __init__(self, value: int) -> None:
        self._value = value
        self._lock = threading.Lock()
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = collections.deque()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._value > 0 and not self._waiters:
                self._value -= 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))
                    raise
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just before the cancellation: pass it on
            raise

    def release(self) -> None:
        with self._lock:
            if not self._waiters:
                self._value += 1
                return
            loop, waiter = self._waiters.popleft()
        if loop.is_closed():
            self.release()
            return
        loop.call_soon_threadsafe(self._grant, waiter)

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self.release()  # its owner gave up meanwhile
        else:
            waiter.set_result(None)


MIN_RATE_FACTOR = 0.125  # after 429s, never below an eighth of the configured rate
RATE_RECOVERY_PER_CALL = 0.01  # ~50 successful calls win back a halving from 0.5


class ClientLimiter:
    """Concurrency limit plus token bucket. Share one instance between clients of one vendor account; it may be
    used from several event loops at once (see CrossLoopSemaphore)."""

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._sem = CrossLoopSemaphore(limits.max_in_flight) if limits.max_in_flight else None
        self._tokens = float(max(1, limits.burst))
        self._stamp: float | None = None
        self._bucket = threading.Lock()  # held only to read and update the bucket, never across an await
        self.in_flight = 0
        self.peak_in_flight = 0
        # The vendor account's budget is shared with other clients (other apps, a load test): a 429 means the
        # bucket's rate is more than the account has left. The bucket then halves its rate and empties, and
        # earns the rate back a little with each request that gets through (additive increase,
        # multiplicative decrease, as TCP does).
        self.rate_factor = 1.0
        self.throttled_count = 0

    def throttled(self) -> None:
        """The vendor answered 429: slow down (only a limiter with a rate has anything to slow)."""
        if not self.limits.rate_per_s:
            return
        with self._bucket:
            self.rate_factor = max(MIN_RATE_FACTOR, self.rate_factor / 2)
            self._tokens = 0.0
            self.throttled_count += 1

    def succeeded(self) -> None:
        if self.rate_factor < 1.0:
            with self._bucket:
                self.rate_factor = min(1.0, self.rate_factor + RATE_RECOVERY_PER_CALL)

    async def _take_token(self) -> None:
        if not self.limits.rate_per_s:
            return
        while True:
            with self._bucket:
                rate = self.limits.rate_per_s * self.rate_factor
                now = self._clock()
                if self._stamp is not None:
                    self._tokens = min(float(max(1, self.limits.burst)), self._tokens + (now - self._stamp) * rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / rate
            await asyncio.sleep(wait)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._sem is not None:
            await self._sem.acquire()
        try:
            await self._take_token()
            with self._bucket:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                with self._bucket:
                    self.in_flight -= 1
        finally:
            if self._sem is not None:
                self._sem.release()


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


DEFAULT_POOL_SIZE = 8  # connections per connector (vendor account)


class BaseClient:
    """The vendor-neutral part of a connector. Subclasses set `system`, `versions`, `version_header`,
    `default_limits` and implement `_auth_headers` and `_error`."""

    system: ClassVar[str] = "?"
    # API versions the mappings know; the pin must be one of them.
    versions: ClassVar[tuple[str, ...]] = ()
    # Header that asks the vendor for a version (None when the version lives in the path).
    version_header: ClassVar[str | None] = None
    default_limits: ClassVar[Limits] = Limits()

    def __init__(
        self,
        *,
        base_url: str,
        api_version: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = 15.0,
        retry: RetryPolicy | None = None,
        limiter: ClientLimiter | None = None,
        headers_provider: HeadersProvider | None = None,
        send_version: bool = False,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        if api_version not in self.versions:
            raise ValueError(f"{self.system}: no mapping for API version {api_version!r}; "
                             f"known: {', '.join(self.versions)}")
        self.api_version = api_version
        # False: the vendor account's version applies and every response is checked against the pin, so an
        # account upgrade shows up as SchemaDriftError. True: also ask for the pinned version on the wire.
        self.send_version = send_version
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or ClientLimiter(self.default_limits)
        self.headers_provider = headers_provider
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        # `event_hooks`: e.g. core.trace.async_event_hooks(system), which also logs each call as a trace step.
        # A small keep-alive pool: httpcore checks every pooled connection (syscalls) on each request, so a
        # pool grown to dozens of connections costs more per call than it saves (profiled: ~6% of a burst).
        pool = min(pool_size, self.limiter.limits.max_in_flight or pool_size)
        if transport is None:  # sockets: aiohttp on the wire (core/connectors/transport.py)
            transport = AiohttpTransport(max_connections=pool)
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout,
                                       limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
                                       event_hooks=dict(event_hooks) if event_hooks else None)
        # Last version the vendor said it served (when it says), for diagnostics.
        self.served_version: str | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------
    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- what subclasses provide -----------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _error(self, response: httpx.Response) -> ConnectorError:
        """The vendor's error response as a typed error (a VendorError; SchemaDriftError when the vendor says
        it does not know the pinned version). The base marks 5xx retryable."""
        raise NotImplementedError

    def _observe(self, response: httpx.Response) -> None:
        """Reads usage signals off every response (e.g. Sforce-Limit-Info)."""

    async def _pace(self) -> None:
        """Waits before a request when usage signals say so."""

    def _served(self, response: httpx.Response) -> str | None:
        """The API version the vendor says it served, when the vendor says (Stripe-Version)."""
        return None

    # ---- helpers for subclasses ------------------------------------------------------------------------
    def check_served_version(self, response: httpx.Response, obj: str) -> None:
        """Raise SchemaDriftError when the vendor says it served another version than the pinned one."""
        served = self._served(response)
        if served is not None:
            self.served_version = served
        if served is not None and served != self.api_version:
            raise SchemaDriftError(self.system, obj, None,
                                   f"the vendor served API version {served!r}, the connector is pinned to "
                                   f"{self.api_version!r}", pinned=self.api_version, served=served)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        safe: bool | None = None,
    ) -> httpx.Response:
        """Sends with retries; returns a response with status < 400 or raises a ConnectorError."""
        method = method.upper()
        repeatable = method in SAFE_METHODS if safe is None else safe
        attempt = 0
        while True:
            attempt += 1
            await self._pace()
            send_headers = self._headers(headers)
            try:
                async with self.limiter.slot():
                    response = await self._http.request(method, path, params=params, json=json, data=data,
                                                        headers=send_headers)
            except httpx.TransportError as exc:
                error: ConnectorError = VendorError(self.system, 0, type(exc).__name__,
                                                 str(exc) or "the connection failed", retryable=True)
                retry, wait = repeatable, self.retry.backoff(attempt, self._rng)
            else:
                self._observe(response)
                if response.status_code < 400:
                    self.limiter.succeeded()
                    return response
                if response.status_code == 429:
                    self.limiter.throttled()
                error = self._error(response)
                retry, wait = self._retry_decision(error, response, attempt, repeatable)
            if isinstance(error, VendorError):
                error.attempts = attempt
            if not retry or attempt >= self.retry.max_attempts:
                raise error
            await self._sleep(wait)

    def _retry_decision(self, error: ConnectorError, response: httpx.Response, attempt: int,
                        repeatable: bool) -> tuple[bool, float]:
        if not isinstance(error, VendorError):
            return False, 0.0
        backoff = self.retry.backoff(attempt, self._rng)
        if isinstance(error, RateLimitedError) or response.status_code == 429:
            after = error.retry_after if isinstance(error, RateLimitedError) else None
            if response.status_code != 429 and after is None:
                # A spent quota (Salesforce's daily 403) with no time to wait for: the caller decides.
                return False, 0.0
            if after is not None and after > self.retry.max_retry_after:
                return False, 0.0
            # A refused request never ran: retrying it is safe whatever the method.
            return True, max(after or 0.0, backoff)
        if response.status_code >= 500:
            error.retryable = True
            return repeatable, backoff
        if error.retryable:
            return repeatable, backoff
        return False, 0.0

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        out = {"Accept": "application/json", **self._auth_headers()}
        if self.send_version and self.version_header:
            out[self.version_header] = self.api_version
        if self.headers_provider is not None:
            out.update(self.headers_provider())
        if extra:
            out.update(extra)
        return out

    def _parse(self, response: httpx.Response, obj: str, parser: Callable[[Any, str], T]) -> T:
        """Body -> native view with the pinned mapping (field drift first: it names the field), then the
        served-version check."""
        data = self._json(response, obj)
        try:
            view = parser(data, self.api_version)
        except SchemaDriftError as exc:
            exc.served = exc.served or self._served(response)
            raise
        self.check_served_version(response, obj)
        return view

    def _json(self, response: httpx.Response, obj: str) -> Any:
        """The response body as JSON; a body that is not JSON is drift, not data."""
        try:
            return response.json()
        except ValueError as exc:
            raise SchemaDriftError(self.system, obj, None,
                                   f"expected a JSON body, got {response.headers.get('content-type')!r}",
                                   pinned=self.api_version) from exc


def retry_after_of(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))

