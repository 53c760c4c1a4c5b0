"""Outbound webhooks: an endpoint registry, an outbox with retries, seeded chaos and a delivery log.

Vendor-neutral: the system supplies the signer (e.g. Stripe-Signature) and renders the bodies. Delivery
runs on the running asyncio loop, one worker per endpoint, so each endpoint sees its events in FIFO order
(head-of-line: a retrying delivery holds back the ones behind it) unless reorder chaos is on.
`DeliveryRoutes` lets in-process receivers (ASGI apps) be reached without sockets.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import random
import threading
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any

import aiohttp
import httpx

__all__ = ["Delivery", "DeliveryRoutes", "RetryPolicy", "WebhookChaos", "WebhookDispatcher",
           "WebhookEndpoint"]

Signer = Callable[[bytes, str, int], dict[str, str]]
Body = dict[str, Any] | bytes | Callable[["WebhookEndpoint"], bytes]


def _norm(base_url: str) -> str:
    return base_url.rstrip("/")


class DeliveryRoutes:
    """Process-wide map of base URL prefix -> in-process ASGI app (longest prefix wins).

    The app receives the full URL path (no prefix stripping), exactly as it would over a socket.
    """

    def __init__(self) -> None:
        self._routes: dict[str, httpx.ASGITransport] = {}

    def register(self, base_url: str, app: Any) -> None:
        # A crashing receiver should look like a 500 to the sender, as it would over the network.
        self._routes[_norm(base_url)] = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def unregister(self, base_url: str) -> None:
        self._routes.pop(_norm(base_url), None)

    def match(self, url: str) -> str | None:
        hits = [p for p in self._routes if url == p or url.startswith((p + "/", p + "?"))]
        return max(hits, key=len, default=None)

    def transport_for(self, url: str) -> httpx.AsyncBaseTransport | None:
        prefix = self.match(url)
        return None if prefix is None else self._routes[prefix]


@dataclass
class RetryPolicy:
    """Real seconds; sandbox-fast on purpose."""

    max_attempts: int = 6
    base_delay: float = 0.05
    factor: float = 2.0
    max_delay: float = 2.0
    timeout: float = 5.0
    jitter: float = 0.2  # +/- fraction of the computed delay

    def backoff(self, failed_attempts: int, rng: random.Random) -> float:
        delay = min(self.max_delay, self.base_delay * self.factor ** max(0, failed_attempts - 1))
        return max(0.0, min(self.max_delay, delay * rng.uniform(1 - self.jitter, 1 + self.jitter)))


@dataclass
class WebhookChaos:
    duplicate_probability: float = 0.0
    reorder_probability: float = 0.0
    # Fixed milliseconds, or [min, max] drawn per delivery; applied with delay_probability.
    delay_ms: float | list[float] = 0.0
    delay_probability: float = 1.0
    # How long a held-back delivery waits for a later one to overtake it before going anyway.
    hold_ms: float = 50.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookChaos:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class WebhookEndpoint:
    id: str
    url: str
    secret: str
    events: list[str] = field(default_factory=lambda: ["*"])
    enabled: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    api_version: str | None = None
    # Deliveries to this endpoint in flight at once. 1 (the default): strictly in order, one at a time, so a
    # sandbox run is reproducible. More: as the vendors deliver (concurrently, no order guarantee), for load.
    max_in_flight: int = 1

    def matches(self, event_type: str) -> bool:
        return self.enabled and ("*" in self.events or event_type in self.events)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MAX_IN_FLIGHT = 64


@dataclass
class Delivery:
    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    body: bytes
    created_at: float
    status: str = "pending"  # pending | delivered | failed
    attempts: list[dict[str, Any]] = field(default_factory=list)
    next_attempt_at: float | None = None
    chaos: list[str] = field(default_factory=list)
    delay_ms: float = 0.0
    hold: bool = False  # reorder chaos: let the next delivery overtake this one
    duplicate_of: str | None = None
    redelivery_of: str | None = None
    error: str | None = None

    def to_dict(self, *, include_body: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("body", "hold")}
        if include_body:
            out["body_b64"] = base64.b64encode(self.body).decode()
            out["hold"] = self.hold
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delivery:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "body"}
        return cls(body=base64.b64decode(data.get("body_b64", "")), **known)


class WebhookDispatcher:
    def __init__(self, *, system: str, sign: Signer | None, wall: Callable[[], float], rng: random.Random,
                 routes: DeliveryRoutes | None, policy: RetryPolicy | None = None,
                 log_size: int = 10_000) -> None:
        self.system = system
        self.sign = sign
        self.wall = wall
        self.rng = rng  # chaos decisions, drawn synchronously in enqueue() so timing cannot change them
        # Jitter is drawn when retries happen (timing-dependent), so it must not perturb self.rng.
        self._jitter_rng = random.Random(rng.getrandbits(64))
        self.routes = routes
        self.policy = policy or RetryPolicy()
        self.chaos = WebhookChaos()
        self.log_size = log_size
        self._endpoints: dict[str, WebhookEndpoint] = {}
        self._log: OrderedDict[str, Delivery] = OrderedDict()
        self._queues: dict[str, deque[Delivery]] = {}
        self._seq = {"delivery": 0, "endpoint": 0}
        # enqueue() may come from a threadpool (sync routes) while the loop thread reads the same state.
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._arrivals: dict[str, asyncio.Event] = {}
        self._http: httpx.AsyncClient | None = None  # https receivers
        # Plain-http receivers: aiohttp's client costs a fifth of httpx's per delivery (profiled: the
        # dispatcher's client was ~30% of a mock's CPU in a month-end burst).
        self._aio: aiohttp.ClientSession | None = None
        self._asgi_clients: dict[int, tuple[httpx.AsyncBaseTransport, httpx.AsyncClient]] = {}

    # ---- endpoints -------------------------------------------------------------------------------
    def add_endpoint(self, url: str, *, secret: str, events: list[str] | None = None,
                     endpoint_id: str | None = None, metadata: dict[str, Any] | None = None,
                     api_version: str | None = None, max_in_flight: int = 1) -> WebhookEndpoint:
        if not 1 <= max_in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"max_in_flight must be 1..{MAX_IN_FLIGHT}")
        with self._lock:
            if endpoint_id is None:
                self._seq["endpoint"] += 1
                endpoint_id = f"whep_{self._seq['endpoint']:06d}"
            if endpoint_id in self._endpoints:
                raise ValueError(f"endpoint {endpoint_id!r} already exists")
            ep = WebhookEndpoint(endpoint_id, url, secret, list(events or ["*"]), True,
                                 dict(metadata or {}), api_version, max_in_flight)
            self._endpoints[endpoint_id] = ep
            return ep

    def update_endpoint(self, endpoint_id: str, *, url: str | None = None, secret: str | None = None,
                        events: list[str] | None = None, enabled: bool | None = None,
                        metadata: dict[str, Any] | None = None,
                        api_version: str | None = None) -> WebhookEndpoint:
        """Raises KeyError for an unknown id. Queued deliveries go to the endpoint's current URL/secret."""
        with self._lock:
            ep = self._endpoints[endpoint_id]
            for name, value in (("url", url), ("secret", secret), ("enabled", enabled),
                                ("api_version", api_version)):
                if value is not None:
                    setattr(ep, name, value)
            if events is not None:
                ep.events = list(events)
            if metadata is not None:
                ep.metadata = dict(metadata)
            return ep

    def remove_endpoint(self, endpoint_id: str) -> bool:
        """Stops delivery: whatever is still queued for the endpoint is marked failed."""
        with self._lock:
            if self._endpoints.pop(endpoint_id, None) is None:
                return False
            for d in self._queues.pop(endpoint_id, deque()):
                d.status, d.next_attempt_at, d.error = "failed", None, "endpoint removed"
            task = self._workers.pop(endpoint_id, None)
        if task is not None:
            _cancel(task)
        return True

    def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self._endpoints.get(endpoint_id)

    def endpoints(self) -> list[WebhookEndpoint]:
        return list(self._endpoints.values())

    def set_chaos(self, chaos: WebhookChaos) -> None:
        self.chaos = chaos

    # ---- outbox ----------------------------------------------------------------------------------
    def enqueue(self, event_id: str, event_type: str, body: Body) -> list[Delivery]:
        """One delivery per enabled endpoint whose filter matches; returns them (plus chaos duplicates)."""
        shared = json.dumps(body).encode() if isinstance(body, dict) else body
        created: list[Delivery] = []
        with self._lock:
            for ep in list(self._endpoints.values()):
                if not ep.matches(event_type):
                    continue
                raw = shared(ep) if callable(shared) else shared
                d = self._new_delivery(event_id, event_type, ep, raw)
                copy = self._apply_chaos(d)
                created.extend([d] if copy is None else [d, copy])
            for d in created:
                self._remember(d)
                self._queues.setdefault(d.endpoint_id, deque()).append(d)
        for ep_id in dict.fromkeys(d.endpoint_id for d in created):
            self._kick(ep_id)
        return created

    def redeliver(self, delivery_id: str) -> Delivery:
        """A fresh delivery of the same event and body to the same endpoint (KeyError if either is gone)."""
        with self._lock:
            old = self._log[delivery_id]
            ep = self._endpoints[old.endpoint_id]
            d = self._new_delivery(old.event_id, old.event_type, ep, old.body)
            d.redelivery_of = old.id
            self._remember(d)
            self._queues.setdefault(ep.id, deque()).append(d)
        self._kick(ep.id)
        return d

    def pending_count(self) -> int:
        with self._lock:
            return sum(1 for q in self._queues.values() for d in q if d.status == "pending")

    def deliveries(self, *, event_id: str | None = None, endpoint_id: str | None = None,
                   status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The delivery log, newest first, JSON-able (bodies left out)."""
        out: list[dict[str, Any]] = []
        with self._lock:
            for d in reversed(self._log.values()):
                if len(out) >= limit:
                    break
                if ((event_id is None or d.event_id == event_id)
                        and (endpoint_id is None or d.endpoint_id == endpoint_id)
                        and (status is None or d.status == status)):
                    out.append(d.to_dict())
        return out

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self._log.get(delivery_id)

    def clear_log(self) -> None:
        """Forgets finished deliveries; pending ones stay (they are still owed). See cancel_pending()."""
        with self._lock:
            for key in [k for k, d in self._log.items() if d.status != "pending"]:
                del self._log[key]

    def cancel_pending(self) -> int:
        """Drops everything still queued (e.g. on a sandbox reset); returns how many."""
        with self._lock:
            dropped = [d for q in self._queues.values() for d in q]
            for d in dropped:
                d.status, d.next_attempt_at, d.error = "failed", None, "cancelled"
            self._queues.clear()
        self._cancel_workers()
        return len(dropped)

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait for quiescence (nothing queued or in flight). False if `timeout` real seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                busy = [ep_id for ep_id, q in self._queues.items() if q]
            for ep_id in busy:
                self._start_worker(ep_id)
            tasks = [t for t in self._workers.values() if not t.done() and t.get_loop() is loop]
            if not tasks:
                return self.pending_count() == 0
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(tasks, timeout=remaining)

    def close(self) -> None:
        """Cancels background work; queued deliveries stay pending (dump() keeps them)."""
        self._cancel_workers()
        clients = self._take_clients()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for close in clients:
                loop.call_soon_threadsafe(lambda c=close: loop.create_task(c()))

    async def aclose(self) -> None:
        """close(), and wait for the HTTP connections to shut (call from the loop that delivered)."""
        clients = self._take_clients()
        self.close()
        for close in clients:
            await close()

    def _take_clients(self) -> list[Callable[[], Awaitable[None]]]:
        """How to close each client held (and forget them)."""
        closers = [c.aclose for _, c in self._asgi_clients.values()] + ([self._http.aclose] if self._http else [])
        if self._aio is not None:
            closers.append(self._aio.close)
        self._http, self._asgi_clients, self._aio = None, {}, None
        return closers

    # ---- snapshot --------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        with self._lock:
            queued = [d for q in self._queues.values() for d in q]
            every = {**self._log, **{d.id: d for d in queued}}
            return {
                "endpoints": [ep.to_dict() for ep in self._endpoints.values()],
                "chaos": asdict(self.chaos),
                "policy": asdict(self.policy),
                "seq": dict(self._seq),
                "rng": _rng_state(self.rng),
                "jitter_rng": _rng_state(self._jitter_rng),
                "deliveries": [d.to_dict(include_body=True) for d in every.values()],
                "queues": {ep_id: [d.id for d in q] for ep_id, q in self._queues.items() if q},
            }

    def load(self, data: dict[str, Any]) -> None:
        self._cancel_workers()
        with self._lock:
            self._endpoints = {e["id"]: WebhookEndpoint(**e) for e in data.get("endpoints", [])}
            self.chaos = WebhookChaos.from_dict(data.get("chaos", {}))
            if "policy" in data:
                self.policy = RetryPolicy(**data["policy"])
            self._seq = {"delivery": 0, "endpoint": 0, **data.get("seq", {})}
            if "rng" in data:
                self.rng.setstate(_rng_unstate(data["rng"]))
            if "jitter_rng" in data:
                self._jitter_rng.setstate(_rng_unstate(data["jitter_rng"]))
            by_id = {d["id"]: Delivery.from_dict(d) for d in data.get("deliveries", [])}
            self._log = OrderedDict()
            for d in by_id.values():
                self._remember(d)
            self._queues = {ep_id: deque(by_id[i] for i in ids if i in by_id)
                            for ep_id, ids in data.get("queues", {}).items()}
            busy = [ep_id for ep_id, q in self._queues.items() if q]
        for ep_id in busy:
            self._kick(ep_id)

    # ---- internals -------------------------------------------------------------------------------
    def _new_delivery(self, event_id: str, event_type: str, ep: WebhookEndpoint, raw: bytes) -> Delivery:
        self._seq["delivery"] += 1
        return Delivery(f"whd_{self._seq['delivery']:08d}", event_id, event_type, ep.id, ep.url, raw,
                        created_at=self.wall())

    def _apply_chaos(self, d: Delivery) -> Delivery | None:
        # Draw only for enabled kinds, in a fixed order, so switching one kind on does not reshuffle others.
        c, copy = self.chaos, None
        if c.duplicate_probability > 0 and self.rng.random() < c.duplicate_probability:
            d.chaos.append("duplicate")
            copy = self._new_delivery(d.event_id, d.event_type, self._endpoints[d.endpoint_id], d.body)
            copy.chaos, copy.duplicate_of = ["duplicate"], d.id
        if c.reorder_probability > 0 and self.rng.random() < c.reorder_probability:
            d.chaos.append("reorder")
            d.hold = True
        lo, hi = (c.delay_ms, c.delay_ms) if isinstance(c.delay_ms, int | float) else c.delay_ms
        if hi > 0 and (c.delay_probability >= 1 or self.rng.random() < c.delay_probability):
            d.delay_ms = lo if lo == hi else self.rng.uniform(lo, hi)
            d.chaos.append("delay")
        return copy

    def _remember(self, d: Delivery) -> None:
        self._log[d.id] = d
        while len(self._log) > self.log_size:
            self._log.popitem(last=False)  # a queued delivery still lives in its queue

    def _kick(self, ep_id: str) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            loop = self._loop  # called off-loop (a worker thread): hand over to the loop we last ran on
            if loop is not None and loop.is_running() and not loop.is_closed():
                loop.call_soon_threadsafe(self._start_worker, ep_id)
            return  # no loop at all: stays pending until drain() or a later enqueue inside a loop
        self._start_worker(ep_id)

    def _start_worker(self, ep_id: str) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new loop (e.g. the next test): tasks and connection pools of the old one are unusable.
            self._workers, self._arrivals, self._http, self._asgi_clients = {}, {}, None, {}
            self._aio = None
            self._loop = loop
        if (ev := self._arrivals.get(ep_id)) is not None:
            ev.set()
        task = self._workers.get(ep_id)
        if task is None or task.done():
            # A fresh context: the worker must not inherit the context of whichever request happened to
            # enqueue first (an in-process caller's tracing or workflow state would leak into deliveries).
            self._workers[ep_id] = loop.create_task(self._run(ep_id), name=f"webhooks:{self.system}:{ep_id}",
                                                    context=contextvars.Context())

    def _cancel_workers(self) -> None:
        workers, self._workers, self._arrivals = self._workers, {}, {}
        for task in workers.values():
            _cancel(task)

    async def _run(self, ep_id: str) -> None:
        ep = self._endpoints.get(ep_id)
        if ep is not None and ep.max_in_flight > 1:
            await self._run_concurrently(ep_id, ep.max_in_flight)
            return
        me = asyncio.current_task()
        try:
            while True:
                with self._lock:
                    q = self._queues.get(ep_id)
                    # A superseded worker (cancel still in flight) must not race its replacement.
                    if not q or self._workers.get(ep_id) is not me:
                        return
                    d = q[0]
                if d.hold:
                    d.hold = False
                    if len(q) < 2:
                        await self._await_arrival(ep_id)
                    with self._lock:
                        if len(q) >= 2 and q[0] is d:
                            # The overtaker goes now; if it was held too, holding it behind `d` would
                            # just undo the swap, so its own hold is dropped from the record.
                            q[0], q[1] = q[1], q[0]
                            if q[0].hold:
                                q[0].hold = False
                                q[0].chaos.remove("reorder")
                    continue
                if d.delay_ms and not d.attempts:
                    await asyncio.sleep(d.delay_ms / 1000)
                await self._deliver(d)
                with self._lock:
                    if q and q[0] is d:
                        q.popleft()
        finally:
            if self._workers.get(ep_id) is me:
                del self._workers[ep_id]

    async def _run_concurrently(self, ep_id: str, limit: int) -> None:
        """Up to `limit` deliveries of the queue in flight at once, oldest first; each leaves the queue when
        it is done (delivered or failed for good), so a dump taken meanwhile still holds it. Reorder chaos
        needs no hold here: concurrent deliveries overtake each other anyway."""
        me = asyncio.current_task()
        running: dict[asyncio.Task[None], Delivery] = {}
        try:
            while True:
                with self._lock:
                    q = self._queues.get(ep_id)
                    if self._workers.get(ep_id) is not me:
                        return
                    busy = {id(d) for d in running.values()}
                    # The oldest not yet started (they sit at the front: stop scanning once enough are found).
                    fresh = list(islice((d for d in (q or ()) if id(d) not in busy), limit - len(running)))
                for d in fresh:
                    d.hold = False
                    task = asyncio.get_running_loop().create_task(self._deliver_one(d))
                    running[task] = d
                if not running:
                    return
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                with self._lock:
                    for task in done:
                        d = running.pop(task)
                        at = next((i for i, queued in enumerate(q or ()) if queued is d), None)
                        if q is not None and at is not None:
                            del q[at]
        finally:
            for task in running:
                task.cancel()
            if self._workers.get(ep_id) is me:
                del self._workers[ep_id]

    async def _deliver_one(self, d: Delivery) -> None:
        if d.delay_ms and not d.attempts:
            await asyncio.sleep(d.delay_ms / 1000)
        await self._deliver(d)

    async def _await_arrival(self, ep_id: str) -> None:
        ev = self._arrivals[ep_id] = asyncio.Event()
        try:
            await asyncio.wait_for(ev.wait(), self.chaos.hold_ms / 1000)
        except TimeoutError:
            pass
        finally:
            self._arrivals.pop(ep_id, None)

    async def _deliver(self, d: Delivery) -> None:
        while True:
            ep = self._endpoints.get(d.endpoint_id)
            if ep is None:
                d.status, d.next_attempt_at, d.error = "failed", None, "endpoint removed"
                return
            if await self._attempt(d, ep):
                d.status, d.next_attempt_at = "delivered", None
                return
            if len(d.attempts) >= self.policy.max_attempts:
                d.status, d.next_attempt_at = "failed", None
                return
            delay = self.policy.backoff(len(d.attempts), self._jitter_rng)
            d.next_attempt_at = self.wall() + delay
            await asyncio.sleep(delay)

    async def _attempt(self, d: Delivery, ep: WebhookEndpoint) -> bool:
        d.url = ep.url
        at = self.wall()
        headers = {"Content-Type": "application/json", "User-Agent": f"Lockstep-{self.system}-Webhooks/1.0"}
        loop = asyncio.get_running_loop()
        started = loop.time()
        record: dict[str, Any] = {"at_wall": at}
        client = self._client_for(ep.url)  # outside the timeout: building a client is slow the first time
        try:
            if self.sign is not None:
                # Signed per attempt with the real timestamp: receivers check freshness against their clock.
                headers.update(self.sign(d.body, ep.secret, int(at)))
            async with asyncio.timeout(self.policy.timeout):
                record["status_code"] = await self._post(client, ep.url, d.body, headers)
        except (TimeoutError, httpx.TimeoutException):
            record["error"] = "timeout"
        except Exception as exc:  # any failure to get a response is a retryable delivery failure
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["duration_ms"] = round((loop.time() - started) * 1000, 3)
        d.attempts.append(record)
        return 200 <= record.get("status_code", 0) < 300

    async def _post(self, client: httpx.AsyncClient | aiohttp.ClientSession, url: str, body: bytes,
                    headers: dict[str, str]) -> int:
        if isinstance(client, aiohttp.ClientSession):
            async with client.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.read()  # the whole answer, so the connection goes back to the pool
                return resp.status
        return (await client.post(url, content=body, headers=headers)).status_code

    def _client_for(self, url: str) -> httpx.AsyncClient | aiohttp.ClientSession:
        transport = self.routes.transport_for(url) if self.routes is not None else None
        if transport is None and url.startswith("http://"):
            if self._aio is None or self._aio.closed:
                self._aio = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                                  connector=aiohttp.TCPConnector(limit=100))
            return self._aio
        if transport is None:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=self.policy.timeout)
            return self._http
        entry = self._asgi_clients.get(id(transport))
        if entry is None or entry[0] is not transport:
            entry = (transport, httpx.AsyncClient(transport=transport))
            self._asgi_clients[id(transport)] = entry
        return entry[1]


def _cancel(task: asyncio.Task[None]) -> None:
    loop = task.get_loop()
    if task.done() or loop.is_closed():
        return
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if here is loop:
        task.cancel()
    else:
        loop.call_soon_threadsafe(task.cancel)


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_unstate(data: list[Any]) -> tuple[Any, ...]:
    return (data[0], tuple(data[1]), data[2])
