"""The sandbox harness: all four mocks and the integration core, wired together, for tests and scenarios.

In-process (the default, `Sandbox.start()`): the mock apps and the core app live in this process and talk
over ASGI transports (no sockets). One `DeliveryRoutes` is shared by the mocks, with the core app
registered under `http://core.lockstep`, so a mock's webhook reaches the core's intake in-process, signed
with the secret from the core settings. The core's connections (`core.wiring.install`) point at the mock
apps (`http://<system>.lockstep`) with the primary tenant's credentials.
The mocks run on one event loop thread of their own (`LoopBoundTransport`), as if each were its own process:
tests call them from pytest's loop, flows from DBOS's loop, and each call runs in a fresh context there. So
webhook delivery workers never hop loops (which re-sent deliveries), and a flow's context (DBOS's current
workflow, the correlation id) never leaks into the webhooks a mock emits while serving it.

    sandbox = Sandbox.start()                    # SQLite in a temp dir; or core_settings=CoreSettings(...)
    crm = sandbox.clients["crm"]                 # httpx.AsyncClient, authenticated as the primary tenant
    await sandbox.control("crm").post("/actions", json={...})   # admin control API of that tenant
    await sandbox.quiesce()                      # webhooks drained, no flow PENDING / ENQUEUED
    flows = (await sandbox.core.get("/flows")).json()
    sandbox.close()

Tenants (decision): the core's connections are process-global (one credential per system), so ONE tenant set
is wired to the core: `sandbox.primary` (also `await sandbox.tenant()`), created at start with credentials unique
to this Sandbox. Tests sharing a Sandbox keep apart by unique business data (names, external ids) and by
asserting on the records they created. `sandbox.tenant("name")` makes a FRESH, isolated set of mock tenants
(unique credentials per call) that is NOT subscribed to the core by default: its webhooks would make the
core call the primary tenant about records it does not have (and CS event ids, `evt_<per-tenant seq>`, would
collide in the core's inbox). Use those for mock-only checks.

Quiesce = repeat {drain every wired tenant's webhook outbox; no flow ENQUEUED / PENDING; nothing pending}
until two rounds in a row see the same counters (deliveries made, the core's inbox), polling with a
deadline; a `QuiesceTimeout` names what was still busy. A flow that waits on purpose (a durable sleep) can
be left out with `ignore_flows=`.

Live (`Sandbox.connect(urls, admin_token, core_url)`): the same API against running servers (`lockstep up`),
where the core is wired to the demo tenants; no runtime is launched and nothing in-process is touched.

DBOS is a process-wide singleton: one in-process Sandbox at a time (a second `start()` raises
`core.runtime.RuntimeBusyError`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lockstep.patient import PatientTransport
from lockstep.systems import SYSTEMS

__all__ = [
    "ACTIVE_FLOW_STATUSES",
    "CORE_BASE_URL",
    "TERMINAL_FLOW_STATUSES",
    "LoopBoundTransport",
    "LoopThread",
    "QuiesceTimeout",
    "Sandbox",
    "SandboxTenant",
    "credential_headers",
    "mock_base_url",
    "new_credentials",
]

SYSTEM_NAMES: tuple[str, ...] = ("crm", "erp", "billing", "cs")
CORE_BASE_URL = "http://core.lockstep"
ACTIVE_FLOW_STATUSES = ("ENQUEUED", "PENDING")
TERMINAL_FLOW_STATUSES = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
ADMIN_HEADER = "Lockstep-Admin-Token"
_POLL_S = 0.02  # how often conditions are re-checked while waiting (never a fixed sleep instead of a wait)


def mock_base_url(system: str) -> str:
    """Where a mock lives in-process (a name only DeliveryRoutes / ASGI transports resolve)."""
    return f"http://{system}.lockstep"


def new_credentials(tag: str | None = None) -> dict[str, str]:
    """One fresh, well-formed credential (= tenant key) per system, unique per call."""
    t = (tag or "") + uuid.uuid4().hex[:12]
    t = "".join(c for c in t if c.isalnum())[:40] or uuid.uuid4().hex[:12]
    return {"crm": f"00Dls{t}", "erp": f"nsls{t}", "billing": f"sk_test_ls{t}", "cs": f"gs-ls-{t}"}


def credential_headers(system: str, key: str) -> dict[str, str]:
    """How each vendor API wants its credential."""
    if system == "cs":
        return {"accesskey": key}
    return {"Authorization": f"Bearer {key}"}


class LoopThread:
    """An event loop running forever on a daemon thread: where the in-process mocks live."""

    def __init__(self, name: str = "lockstep-mocks") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"event loop thread {name} did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        """Run a coroutine on this loop from another thread (not from this loop) and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


class LoopBoundTransport(httpx.AsyncBaseTransport):
    """An ASGI transport that runs the app on one given event loop, whatever loop the caller is on.

    Why: the mocks' webhook outbox runs its delivery workers on the loop that last touched it. In-process,
    tests call the mocks from pytest's loop and flows from DBOS's loop; a worker restarted on the other loop
    while one is mid-delivery sends the same delivery twice (and can overtake). Pinning every call to the
    mocks' own loop - as if each mock were its own process - keeps each endpoint's deliveries single-file.
    """

    def __init__(self, app: Any, loop: LoopThread) -> None:
        self.app = app
        self._inner = httpx.ASGITransport(app=app)
        self._loop = loop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=body,
                                  extensions=request.extensions)
            response = await self._inner.handle_async_request(inner)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
            return response.status_code, response.headers.raw, content

        # A fresh, empty context: the caller's context variables (DBOS's "inside workflow X", the core's
        # correlation) must not leak into the mock, nor into the webhook workers it starts, whose deliveries
        # reach the core's intake: DBOS would take the flows they start for children of the caller's flow.
        loop = self._loop.loop
        if asyncio.get_running_loop() is loop:
            status, headers, content = await loop.create_task(call(), context=contextvars.Context())
        else:
            done: concurrent.futures.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] = (
                concurrent.futures.Future())

            def start() -> None:
                task = loop.create_task(call(), context=contextvars.Context())
                task.add_done_callback(lambda t: _settle(t, done))

            loop.call_soon_threadsafe(start)
            status, headers, content = await asyncio.wrap_future(done)
        return httpx.Response(status, headers=headers, content=content, extensions={"http_version": b"HTTP/1.1"})


def _settle(task: asyncio.Task[Any], done: concurrent.futures.Future[Any]) -> None:
    if done.cancelled():
        return
    if task.cancelled():
        done.cancel()
    elif task.exception() is not None:
        done.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        done.set_result(task.result())


class QuiesceTimeout(AssertionError):
    """The sandbox did not settle in time; the message says what was still busy."""


@dataclass
class SandboxTenant:
    """One tenant per mock system. `clients[system]`: the vendor API as this tenant; `control(system)`: the
    admin control API at `/_sandbox/tenants/<key>` (paths relative to it, e.g. `/journal`)."""

    name: str
    keys: dict[str, str]
    clients: dict[str, httpx.AsyncClient]
    controls: dict[str, httpx.AsyncClient]
    wired: bool = False  # subscribed to the core (its webhooks reach the core's intake)
    endpoints: dict[str, str] = field(default_factory=dict)  # system -> webhook endpoint id pointing at the core

    def control(self, system: str) -> httpx.AsyncClient:
        return self.controls[_known(system)]

    async def journal(self, system: str, **filters: Any) -> list[dict[str, Any]]:
        """The mock's request journal for this tenant (filters: method, path, status, correlation_id, fault,
        since_seq, limit)."""
        params = {k: _param(v) for k, v in filters.items() if v is not None}
        return _ok(await self.control(system).get("/journal", params=params)).json()

    async def deliveries(self, system: str, **filters: Any) -> list[dict[str, Any]]:
        """The mock's webhook delivery log, newest first (filters: event_id, endpoint_id, status, limit)."""
        params = {k: _param(v) for k, v in filters.items() if v is not None}
        return _ok(await self.control(system).get("/deliveries", params=params)).json()

    async def drain(self, timeout: float = 10.0) -> dict[str, bool]:
        """Drain every system's webhook outbox once; {system: drained}."""
        out = {}
        for system in self.keys:
            body = _ok(await self.control(system).post("/webhooks/drain", params={"timeout": timeout})).json()
            out[system] = bool(body["drained"])
        return out

    async def last_delivery_seq(self, system: str) -> int:
        rows = await self.deliveries(system, limit=1)
        return int(rows[0]["id"].rsplit("_", 1)[-1]) if rows else 0

    async def pending_deliveries(self, system: str) -> list[dict[str, Any]]:
        return await self.deliveries(system, status="pending", limit=100)

    async def advance(self, system: str, by: str | float | None = None, *, to: str | float | None = None
                      ) -> dict[str, Any]:
        """Move this tenant's sandbox clock (no quiesce; see Sandbox.advance)."""
        move = {"by": by} if to is None else {"to": to}
        return _ok(await self.control(system).post("/clock/advance", json=move)).json()

    async def aclose(self) -> None:
        for client in (*self.clients.values(), *self.controls.values()):
            await client.aclose()


class Sandbox:
    """All four mocks + the core. Build with `Sandbox.start()` (in-process) or `Sandbox.connect()` (live)."""

    def __init__(self, *, admin_token: str, mock_urls: dict[str, str], core_url: str,
                 transports: dict[str, httpx.AsyncBaseTransport | None], core_transport: httpx.AsyncBaseTransport
                 | None, versions: dict[str, str], settings: Any = None) -> None:
        self.admin_token = admin_token
        self.mock_urls = mock_urls
        self.core_url = core_url
        self.versions = versions
        self.settings = settings  # CoreSettings: the in-process core's; live, from the env (webhook secrets)
        self._transports = transports
        self._core_transport = core_transport
        self.core = httpx.AsyncClient(base_url=core_url, transport=core_transport, timeout=30)
        self.tenants: list[SandboxTenant] = []
        self.primary: SandboxTenant = None  # type: ignore[assignment]  # set by start() / connect()
        # in-process only
        self.apps: dict[str, Any] = {}
        self.core_app: Any = None
        self.runtime: Any = None
        self.routes: Any = None
        self.endpoints: dict[str, Any] = {}  # system -> core.wiring.SystemEndpoint the core is wired with
        self.connections: Any = None  # the installed core.wiring.Connections (used by flows; see new_connections)
        self.mock_loop: LoopThread | None = None  # where the in-process mocks run (see LoopBoundTransport)
        self._tmp: Path | None = None
        self._closed = False

    # -- construction ---------------------------------------------------------------------------------

    @classmethod
    def start(cls, *, seed: int = 0, core_settings: Any = None, versions: Mapping[str, str] | None = None,
              admin_token: str | None = None) -> Sandbox:
        """In-process sandbox (sync; call from a sync fixture, not on a running event loop: see `astart`).
        `core_settings`: a CoreSettings (default: SQLite in a fresh temp dir, DBOS logs at ERROR);
        `versions`: {system: api version} pinned on the primary mock tenants AND on the core's connections
        (default: each mock's default version)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("Sandbox.start() is blocking; on a running event loop use `await Sandbox.astart()`")
        sandbox = cls._build(seed=seed, core_settings=core_settings, versions=versions, admin_token=admin_token)
        try:
            asyncio.run(sandbox._wire_primary())
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    @classmethod
    async def astart(cls, **kwargs: Any) -> Sandbox:
        """`start()` from async code (DBOS launches on a worker thread)."""
        sandbox = await asyncio.to_thread(cls._build, **kwargs)
        try:
            await sandbox._wire_primary()
        except BaseException:
            await sandbox.aclose()
            raise
        return sandbox

    @classmethod
    def _build(cls, *, seed: int = 0, core_settings: Any = None, versions: Mapping[str, str] | None = None,
               admin_token: str | None = None) -> Sandbox:
        from core import wiring
        from core.api import create_core_app
        from core.runtime import Runtime
        from core.settings import CoreSettings
        from mocks.kernel.app import create_mock_app
        from mocks.kernel.webhooks import DeliveryRoutes

        token = admin_token or f"sandbox-admin-{uuid.uuid4().hex}"
        routes = DeliveryRoutes()
        apps = {name: create_mock_app(SYSTEMS[name].build(), admin_token=token, routes=routes, seed=seed)
                for name in SYSTEM_NAMES}
        pins = {name: apps[name].state.system.versions.default for name in SYSTEM_NAMES}
        for name, version in (versions or {}).items():
            _known(name)
            if version not in apps[name].state.system.versions:
                raise ValueError(f"{name}: unknown API version {version!r}; known: "
                                 f"{apps[name].state.system.versions.names()}")
            pins[name] = version
        mock_loop = LoopThread()
        tmp: Path | None = None
        if core_settings is None:
            tmp = Path(tempfile.mkdtemp(prefix="lockstep-sandbox-"))
            core_settings = CoreSettings(data_dir=tmp / "core", dbos_log_level="ERROR")
        transports: dict[str, httpx.AsyncBaseTransport | None] = {
            name: LoopBoundTransport(apps[name], mock_loop) for name in SYSTEM_NAMES}
        try:
            runtime = Runtime(core_settings).launch()
        except BaseException:
            mock_loop.stop()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            core_app = create_core_app(core_settings, runtime=runtime)
            routes.register(CORE_BASE_URL, core_app)
            sandbox = cls(admin_token=token, mock_urls={n: mock_base_url(n) for n in SYSTEM_NAMES},
                          core_url=CORE_BASE_URL, transports=transports,
                          core_transport=httpx.ASGITransport(app=core_app), versions=pins, settings=core_settings)
        except BaseException:
            runtime.destroy()
            mock_loop.stop()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        sandbox.apps, sandbox.core_app, sandbox.runtime, sandbox.routes, sandbox._tmp = (
            apps, core_app, runtime, routes, tmp)
        sandbox.mock_loop = mock_loop
        sandbox.primary = sandbox._tenant_handles("primary", new_credentials("p"))
        sandbox.endpoints = {
            name: wiring.SystemEndpoint(base_url=mock_base_url(name), credential=sandbox.primary.keys[name],
                                        api_version=pins[name], transport=transports[name])
            for name in SYSTEM_NAMES}
        sandbox.connections = wiring.build_connections(sandbox.endpoints)
        wiring.install(sandbox.connections)
        return sandbox

    @classmethod
    async def connect(cls, urls: Mapping[str, str], admin_token: str, core_url: str, *,
                      keys: Mapping[str, str] | None = None, versions: Mapping[str, str] | None = None) -> Sandbox:
        """Target running servers (e.g. `lockstep up`). `keys`: the credentials the core is wired with
        (default: the demo tenants'); they become `primary`, created if missing and subscribed to the core
        at `core_url/webhooks/<system>` unless already subscribed (secrets: CoreSettings from the env)."""
        from core.settings import CoreSettings

        mock_urls = {name: urls[name].rstrip("/") for name in SYSTEM_NAMES if name in urls}
        pins: dict[str, str] = dict(versions or {})
        sandbox = cls(admin_token=admin_token, mock_urls=mock_urls, core_url=core_url.rstrip("/"),
                      transports=dict.fromkeys(mock_urls), core_transport=None, versions=pins,
                      settings=CoreSettings())
        chosen = dict(keys or {name: SYSTEMS[name].demo_key for name in mock_urls})
        sandbox.primary = sandbox._tenant_handles("primary", {n: chosen[n] for n in mock_urls})
        await sandbox._ensure_tenants(sandbox.primary, create_ok_if_exists=True)
        await sandbox._subscribe(sandbox.primary, f"{sandbox.core_url}/webhooks/{{system}}")
        return sandbox

    async def _wire_primary(self) -> None:
        await self._ensure_tenants(self.primary, versions=self.versions)
        await self._subscribe(self.primary, f"{CORE_BASE_URL}/webhooks/{{system}}")

    def _tenant_handles(self, name: str, keys: dict[str, str]) -> SandboxTenant:
        clients, controls = {}, {}
        for system, key in keys.items():
            base, transport = self.mock_urls[system], self._transports.get(system)
            # Vendor calls wait out 429s (the tenant's limit is shared with the core); see lockstep.patient.
            patient = PatientTransport(transport or httpx.AsyncHTTPTransport(), owns_inner=transport is None)
            clients[system] = httpx.AsyncClient(base_url=base, transport=patient, timeout=30,
                                                headers=credential_headers(system, key))
            controls[system] = httpx.AsyncClient(base_url=f"{base}/_sandbox/tenants/{key}", transport=transport,
                                                 timeout=60, headers={ADMIN_HEADER: self.admin_token})
        tenant = SandboxTenant(name, dict(keys), clients, controls)
        self.tenants.append(tenant)
        return tenant

    def _admin(self, system: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"{self.mock_urls[system]}/_sandbox", transport=self._transports.get(system),
                                 timeout=30, headers={ADMIN_HEADER: self.admin_token})

    async def _ensure_tenants(self, tenant: SandboxTenant, *, versions: Mapping[str, str] | None = None,
                              create_ok_if_exists: bool = False) -> None:
        for system, key in tenant.keys.items():
            body: dict[str, Any] = {"key": key}
            if versions and system in versions:
                body["api_version"] = versions[system]
            async with self._admin(system) as admin:
                made = await admin.post("/tenants", json=body)
            if made.status_code == 409 and create_ok_if_exists:
                continue
            _ok(made)

    async def _subscribe(self, tenant: SandboxTenant, url_template: str) -> None:
        from core import flows
        from core.intake.router import subscribed_events

        flows.load_all()
        for system in tenant.keys:
            url = url_template.format(system=system)
            control = tenant.control(system)
            existing = [e for e in _ok(await control.get("/webhooks/endpoints")).json() if e["url"] == url]
            if existing:
                tenant.endpoints[system] = existing[0]["id"]
                continue
            secret = self.settings.webhook_secrets(system)[0]
            made = _ok(await control.post("/webhooks/endpoints", json={
                "url": url, "secret": secret, "events": subscribed_events(system)}))
            tenant.endpoints[system] = made.json()["id"]
        tenant.wired = True

    # -- tenants and clients --------------------------------------------------------------------------

    async def tenant(self, name: str | None = None, *, subscribe: bool = False,
                     versions: Mapping[str, str] | None = None) -> SandboxTenant:
        """None: the primary (core-wired) tenant set. A name: a fresh, isolated set of mock tenants with unique
        credentials (`subscribe=True` also points their webhooks at the core; see the module doc)."""
        if name is None:
            return self.primary
        tenant = self._tenant_handles(name, {s: k for s, k in new_credentials(name).items() if s in self.mock_urls})
        await self._ensure_tenants(tenant, versions=versions)
        if subscribe:
            await self._subscribe(tenant, f"{self.core_url}/webhooks/{{system}}")
        return tenant

    @property
    def clients(self) -> dict[str, httpx.AsyncClient]:
        """Vendor API clients of the primary tenant set, authenticated."""
        return self.primary.clients

    @property
    def keys(self) -> dict[str, str]:
        """Credentials (= tenant keys) of the primary tenant set."""
        return self.primary.keys

    def control(self, system: str) -> httpx.AsyncClient:
        """Admin control API of the primary tenant on `system` (base `/_sandbox/tenants/<key>`)."""
        return self.primary.control(system)

    async def journal(self, system: str, **filters: Any) -> list[dict[str, Any]]:
        return await self.primary.journal(system, **filters)

    async def deliveries(self, system: str, **filters: Any) -> list[dict[str, Any]]:
        return await self.primary.deliveries(system, **filters)

    def new_connections(self) -> Any:
        """A fresh `core.wiring.Connections` to the primary tenants, for calling connectors from test code.
        Don't use the installed `connections` from a test: its limiters belong to the flows' event loop.
        Close it with `await conns.aclose()`."""
        from core import wiring

        if not self.endpoints:
            raise RuntimeError("this sandbox has no core endpoints (live mode: the core has its own)")
        return wiring.build_connections(self.endpoints)

    def delivery_body(self, system: str, delivery_id: str, *, tenant: SandboxTenant | None = None) -> bytes:
        """The exact bytes a mock sent in a webhook delivery (in-process only)."""
        if not self.apps:
            raise RuntimeError("delivery bodies are only reachable in-process")
        owner = self.apps[_known(system)].state.registry.get((tenant or self.primary).keys[system])
        delivery = None if owner is None else owner.webhooks.get_delivery(delivery_id)
        if delivery is None:
            raise KeyError(f"{system}: no delivery {delivery_id!r}")
        return bytes(delivery.body)

    # -- the core -------------------------------------------------------------------------------------

    async def flows(self, **filters: Any) -> list[dict[str, Any]]:
        """GET /flows (filters: status, business_key, flow, limit, offset)."""
        params = {k: v for k, v in filters.items() if v is not None}
        return _ok(await self.core.get("/flows", params=params)).json()["flows"]

    async def flow(self, flow_id: str) -> dict[str, Any] | None:
        response = await self.core.get(f"/flows/{flow_id}")
        return None if response.status_code == 404 else _ok(response).json()

    async def wait_flow(self, business_key: str, *, statuses: Iterable[str] = TERMINAL_FLOW_STATUSES,
                        timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the flow with this id (business key or replay attempt id) reaches one of `statuses`."""
        wanted = tuple(statuses)
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            last = await self.flow(business_key)
            if last is not None and last["status"] in wanted:
                return last
            if time.monotonic() > deadline:
                raise QuiesceTimeout(f"flow {business_key!r} did not reach {wanted} in {timeout} s (last: "
                                     f"{last['status'] if last else 'absent'})")
            await asyncio.sleep(_POLL_S)

    async def dlq(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        return _ok(await self.core.get("/dlq", params=params)).json()["entries"]

    # -- waiting and time -----------------------------------------------------------------------------

    async def quiesce(self, timeout: float = 30.0, *, ignore_flows: Iterable[str] = ()) -> dict[str, Any]:
        """Wait until nothing moves: every wired tenant's webhooks drained (none pending) and no flow
        ENQUEUED / PENDING (except flows named in `ignore_flows`), twice in a row with no new delivery and
        no new intake in between. Raises QuiesceTimeout (saying what was busy) after `timeout` s.
        Returns {"rounds", "seconds"}."""
        ignored = set(ignore_flows)
        started = time.monotonic()
        deadline = started + timeout
        previous: tuple[Any, ...] | None = None
        rounds = 0
        busy: list[str] = []
        while True:
            rounds += 1
            # Flows first, then webhooks: a flow that finished before the flow check emitted its webhooks
            # before it finished, so the webhook check below sees them.
            active = await self._active_flows(ignored)
            drained = True
            for tenant in self._watched():
                remaining = max(0.05, min(10.0, deadline - time.monotonic()))
                drained &= all((await tenant.drain(remaining)).values())
            pending = {f"{t.name}:{s}": len(await t.pending_deliveries(s)) for t in self._watched() for s in t.keys}
            pending = {k: v for k, v in pending.items() if v}
            fingerprint = (await self._progress(), tuple(sorted(active)))
            busy = [*(f"flow {f}" for f in active), *(f"{n} pending webhooks on {k}" for k, n in pending.items())]
            if not active and drained and not pending and fingerprint == previous:
                return {"rounds": rounds, "seconds": round(time.monotonic() - started, 3)}
            previous = fingerprint if not active and not pending else None
            if time.monotonic() > deadline:
                raise QuiesceTimeout(f"sandbox not quiet after {timeout} s: {', '.join(busy) or 'still changing'}")
            await asyncio.sleep(_POLL_S)

    def _watched(self) -> list[SandboxTenant]:
        return [t for t in self.tenants if t.wired]

    async def _active_flows(self, ignored: set[str]) -> list[str]:
        out = []
        for status in ACTIVE_FLOW_STATUSES:
            for row in await self.flows(status=status, limit=500):
                if row["flow"] not in ignored:
                    out.append(f"{row['workflow_id']} ({row['flow']}, {status})")
        return out

    async def _progress(self) -> tuple[Any, ...]:
        """Counters that move whenever anything happens: deliveries made per tenant, the core's inbox."""
        seqs = [await t.last_delivery_seq(s) for t in self._watched() for s in t.keys]
        health = _ok(await self.core.get("/health")).json()
        return (tuple(seqs), repr(sorted(health.get("inbox", {}).items())))

    async def advance(self, system: str, by: str | float | None = "30d", *, to: str | float | None = None,
                      quiesce: bool = True, timeout: float = 30.0) -> dict[str, Any]:
        """Advance the primary tenant's clock on `system` (by a duration like "30d", or `to` an instant), then
        quiesce. Returns the control API's clock view (now, jobs_run, ...)."""
        clock = await self.primary.advance(system, by if to is None else None, to=to)
        if quiesce:
            await self.quiesce(timeout)
        return clock

    # -- teardown -------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close clients; for an in-process sandbox also destroy the runtime (on a worker thread)."""
        if self._closed:
            return
        await self._close_clients()
        await asyncio.to_thread(self._teardown)

    def close(self) -> None:
        """Sync close (not on a running event loop)."""
        if self._closed:
            return
        try:
            asyncio.run(self._close_clients())
        finally:
            self._teardown()

    async def _close_clients(self) -> None:
        for tenant in self.tenants:
            await tenant.aclose()
        await self.core.aclose()
        if self.connections is not None:
            await self.connections.aclose()

    def _teardown(self) -> None:
        self._closed = True
        try:
            if self.runtime is not None:
                from core import wiring

                if self.connections is not None:
                    wiring.install(None)
                self.runtime.destroy()
        finally:
            if self.mock_loop is not None:
                with contextlib.suppress(Exception):
                    self.mock_loop.run(self._close_outboxes(), timeout=10)
                self.mock_loop.stop()
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)

    async def _close_outboxes(self) -> None:
        for app in self.apps.values():
            for tenant in app.state.registry:
                await tenant.webhooks.aclose()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _known(system: str) -> str:
    if system not in SYSTEM_NAMES:
        raise KeyError(f"unknown system {system!r}; systems: {', '.join(SYSTEM_NAMES)}")
    return system


def _param(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise httpx.HTTPStatusError(f"{response.request.method} {response.request.url} -> {response.status_code}: "
                                    f"{response.text[:500]}", request=response.request, response=response)
    return response
