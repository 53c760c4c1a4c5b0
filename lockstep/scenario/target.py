"""What scenarios run against: a `Sandbox` (in-process or live), plus what the engine adds on top of it.

- `Target.inprocess(seed)` starts all mocks + the core in this process; `Target.live(urls, token, core_url)`
  connects to running servers (`lockstep up`). Either way every call goes over the vendor / control / core
  HTTP APIs, so the same scenario runs against both.
- Quiescence is shared: concurrent scenarios asking "is it quiet?" join one sandbox-wide check that starts
  after they asked (single flight), instead of each polling every outbox and the flow table on its own.
- Tenant-wide settings (faults, limits, API versions, webhook chaos) are remembered when first changed and
  restored by `restore()` after an exclusive scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from lockstep.sandbox import Sandbox
from lockstep.systems import CORE_PORT, SYSTEMS

__all__ = ["CALM_CHAOS", "Target", "local_urls"]

CALM_CHAOS = {"duplicate_probability": 0.0, "reorder_probability": 0.0, "delay_ms": 0.0, "hold_ms": 50.0}
API_ROOTS = {"crm": "/services/data/v{version}", "erp": "/services/rest/record/v1"}


def local_urls(port_offset: int = 0, host: str = "127.0.0.1") -> tuple[dict[str, str], str]:
    """The mock and core URLs of `lockstep up --port-offset N` on this machine."""
    mocks = {name: f"http://{host}:{entry.port + port_offset}" for name, entry in SYSTEMS.items()}
    return mocks, f"http://{host}:{CORE_PORT + port_offset}"


class _SingleFlight:
    """Callers join the next run of `fn` that starts after they asked; one run at a time."""

    def __init__(self, fn: Any) -> None:
        self._fn = fn
        self._lock = asyncio.Lock()
        self._generation = 0
        self._result: tuple[int, Any, BaseException | None] | None = None

    async def __call__(self, **kwargs: Any) -> Any:
        wanted = self._generation + 1  # a run that starts after this call
        async with self._lock:
            if self._result is not None and self._result[0] >= wanted:
                _, value, error = self._result
            else:
                self._generation += 1
                generation = self._generation
                try:
                    value, error = await self._fn(**kwargs), None
                except Exception as exc:
                    value, error = None, exc
                self._result = (generation, value, error)
        if error is not None:
            raise error
        return value


class _Gate:
    """Mutations share the gate; a quiesce holds it alone (writer preference: once a quiesce waits, new
    mutations wait behind it). So concurrent scenarios move in rounds: their actions run together, then
    one sandbox-wide quiesce serves every scenario waiting for quiet, and the sandbox can actually get
    quiet instead of chasing other scenarios' fresh activity."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._active = 0
        self._writers_waiting = 0
        self._writing = False

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._active += 1
        try:
            yield
        finally:
            async with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            self._writers_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._writing and self._active == 0)
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            async with self._cond:
                self._writing = False
                self._cond.notify_all()


class Target:
    def __init__(self, sandbox: Sandbox, *, kind: str, owned: bool) -> None:
        self.sandbox = sandbox
        self.kind = kind  # "in-process" | "live"
        self._owned = owned
        self._quiet = _SingleFlight(self._quiesce_once)
        self._gate = _Gate()
        self._saved: dict[tuple[str, str], Any] = {}

    # -- construction ----------------------------------------------------------------------------------

    @classmethod
    async def inprocess(cls, *, seed: int = 0, core_settings: Any = None) -> Target:
        return cls(await Sandbox.astart(seed=seed, core_settings=core_settings), kind="in-process", owned=True)

    @classmethod
    async def live(cls, urls: Mapping[str, str], admin_token: str, core_url: str) -> Target:
        sandbox = await Sandbox.connect(urls, admin_token, core_url)
        return cls(sandbox, kind="live", owned=True)

    @classmethod
    async def local(cls, port_offset: int = 0, admin_token: str | None = None) -> Target:
        token = admin_token or os.environ.get("LOCKSTEP_ADMIN_TOKEN")
        if not token:
            raise ValueError("--target local needs the admin token `lockstep up` printed: set LOCKSTEP_ADMIN_TOKEN")
        mocks, core = local_urls(port_offset)
        return await cls.live(mocks, token, core)

    async def aclose(self) -> None:
        if self._owned:
            await self.sandbox.aclose()

    # -- vendor calls ----------------------------------------------------------------------------------

    def api_root(self, system: str) -> str:
        root = API_ROOTS.get(system, "")
        return root.format(version=self.sandbox.versions.get("crm") or "60.0") if "{" in root else root

    async def call(self, system: str, method: str, path: str, *, params: Any = None, json: Any = None,
                   form: Any = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        client = self.sandbox.clients[system]
        kwargs: dict[str, Any] = {"params": params, "headers": dict(headers or {})}
        if json is not None:
            kwargs["json"] = json
        if form is not None:
            kwargs["data"] = form
        return await self._send(method, client.request(method, path, **kwargs))

    async def control(self, system: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._send(method, self.sandbox.control(system).request(method, path, **kwargs))

    async def core(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._send(method, self.sandbox.core.request(method, path, **kwargs))

    async def _send(self, method: str, request: Any) -> httpx.Response:
        """Reads go straight through; writes (anything that may start work) pass the gate (see _Gate)."""
        if method == "GET":
            return await request
        async with self._gate.shared():
            return await request

    # -- waiting ---------------------------------------------------------------------------------------

    async def quiet(self, timeout: float = 30.0) -> None:
        await self._quiet(timeout=timeout)

    async def _quiesce_once(self, timeout: float) -> Any:
        async with self._gate.exclusive():
            if self.sandbox.apps and self.sandbox.runtime is not None:
                return await self._quiesce_inprocess(timeout)
            return await self.sandbox.quiesce(timeout)

    async def _quiesce_inprocess(self, timeout: float) -> dict[str, Any]:
        """`Sandbox.quiesce` with the same rule (flows first, then drain; quiet = no flow running, nothing
        pending, and the same delivery / inbox counters two rounds running), read in-process: the outboxes on
        the mocks' loop and DBOS / the inbox directly, instead of ~17 HTTP calls a round (~0.1 s idle)."""
        from dbos import DBOS

        from core.intake.router import WORKFLOW_PREFIX, flow_specs
        from lockstep.sandbox import ACTIVE_FLOW_STATUSES, QuiesceTimeout

        box = self.sandbox
        assert box.mock_loop is not None
        names = [WORKFLOW_PREFIX + n for n in sorted(flow_specs())]
        outboxes = [box.apps[system].state.registry.get(key).webhooks
                    for tenant in box.tenants if tenant.wired for system, key in tenant.keys.items()]

        def active() -> list[str]:
            rows = DBOS.list_workflows(name=names, status=list(ACTIVE_FLOW_STATUSES), load_input=False,
                                       load_output=False) if names else []
            return sorted(f"{r.workflow_id} ({r.status})" for r in rows)

        async def drain(budget: float) -> tuple[bool, int, tuple[str, ...]]:
            drained = all([await o.drain(budget) for o in outboxes])
            last = tuple((o.deliveries(limit=1) or [{"id": ""}])[0]["id"] for o in outboxes)
            return drained, sum(o.pending_count() for o in outboxes), last

        started = time.monotonic()
        deadline = started + timeout
        previous: tuple[Any, ...] | None = None
        rounds = 0
        while True:
            rounds += 1
            busy = await asyncio.to_thread(active)
            budget = max(0.05, min(10.0, deadline - time.monotonic()))
            drained, pending, last = await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(drain(budget), box.mock_loop.loop))
            inbox = await asyncio.to_thread(box.runtime.inbox.counts)
            fingerprint = (last, tuple(sorted(inbox.items())), tuple(busy))
            if not busy and drained and not pending and fingerprint == previous:
                return {"rounds": rounds, "seconds": round(time.monotonic() - started, 3)}
            previous = fingerprint if not busy and not pending else None
            if time.monotonic() > deadline:
                what = [*(f"flow {f}" for f in busy), *([f"{pending} pending webhooks"] if pending else [])]
                raise QuiesceTimeout(f"sandbox not quiet after {timeout} s: {', '.join(what) or 'still changing'}")
            await asyncio.sleep(0.02)

    # -- tenant-wide settings (exclusive scenarios) ----------------------------------------------------

    async def _remember(self, system: str, what: str) -> None:
        if (system, what) in self._saved:
            return
        if what == "version":
            r = await self.control(system, "GET", "/version")
            self._saved[(system, what)] = r.json().get("api_version") if r.status_code == 200 else None
        elif what == "limits":
            r = await self.control(system, "GET", "/limits")
            body = r.json() if r.status_code == 200 else {}
            self._saved[(system, what)] = body.get("policies") if isinstance(body, dict) else body
        else:
            self._saved[(system, what)] = None

    async def set_faults(self, system: str, rules: list[dict[str, Any]]) -> httpx.Response:
        await self._remember(system, "faults")
        if not rules:
            return await self.control(system, "DELETE", "/faults")
        return await self.control(system, "PUT", "/faults", json={"rules": rules})

    async def set_limits(self, system: str, policies: list[dict[str, Any]] | None) -> httpx.Response:
        await self._remember(system, "limits")
        if policies is None:
            policies = self._saved.get((system, "limits")) or []
        return await self.control(system, "PUT", "/limits", json={"policies": policies})

    async def set_version(self, system: str, version: str) -> httpx.Response:
        await self._remember(system, "version")
        if version == "pinned":
            version = self._saved.get((system, "version")) or self.sandbox.versions.get(system, "")
        return await self.control(system, "PUT", "/version", json={"api_version": version})

    async def set_chaos(self, system: str, chaos: Mapping[str, Any]) -> httpx.Response:
        await self._remember(system, "chaos")
        return await self.control(system, "PUT", "/webhooks/chaos", json=dict(chaos))

    async def restore(self) -> list[str]:
        """Undo every tenant-wide change since the last restore; the problems met (none when all went back)."""
        problems = []
        for (system, what), saved in list(self._saved.items()):
            if what == "faults":
                r = await self.control(system, "DELETE", "/faults")
            elif what == "limits":
                r = await self.control(system, "PUT", "/limits", json={"policies": saved or []})
            elif what == "version":
                r = await self.control(system, "PUT", "/version", json={"api_version": saved}) if saved else None
            else:
                r = await self.control(system, "PUT", "/webhooks/chaos", json=CALM_CHAOS)
            if r is not None and r.is_error:
                problems.append(f"{system} {what}: {r.status_code} {r.text[:200]}")
        self._saved.clear()
        return problems
