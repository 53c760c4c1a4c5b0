"""Tenants: one isolated sandbox per credential, created on first use (like a fresh vendor sandbox).

`TenantRegistry[key] -> Tenant`; each tenant owns its system state, clock, seeded RNG, rate limiter,
fault plan, API version, webhook dispatcher and request journal. Nobody reads another tenant's data.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from mocks.kernel.clock import DEFAULT_START, SandboxClock
from mocks.kernel.faults import FaultPlan
from mocks.kernel.journal import Journal
from mocks.kernel.ratelimit import RateLimiter
from mocks.kernel.system import MockSystem, SystemState
from mocks.kernel.webhooks import DeliveryRoutes, WebhookDispatcher


class Tenant:
    def __init__(
        self,
        key: str,
        system: MockSystem,
        *,
        seed: int = 0,
        clock_start: float = DEFAULT_START,
        api_version: str | None = None,
        routes: DeliveryRoutes | None = None,
        wall: Callable[[], float] = time.time,
        journal_size: int = 5000,
    ) -> None:
        self.key = key
        self.system = system
        self.seed = seed
        self.clock_start = clock_start
        # Per-tenant seed mixes in the key so two tenants with one seed still differ, reproducibly.
        self.rng = random.Random(f"{system.name}:{key}:{seed}")
        self.clock = SandboxClock(clock_start, runner=self._run_job)
        self.api_version = api_version or system.versions.default
        # Wall time, not monotonic: daily quotas need real day boundaries that survive a restart.
        self.limiter = RateLimiter(system.default_limits(), now=wall)
        self.faults = FaultPlan([], seed=zlib.crc32(f"{key}:{seed}".encode()))
        self.webhooks = WebhookDispatcher(
            system=system.name,
            sign=system.sign,
            wall=wall,
            rng=random.Random(f"webhooks:{key}:{seed}"),
            routes=routes,
        )
        self.journal = Journal(maxlen=journal_size)
        self.state: SystemState = system.new_state(self)

    def _run_job(self, kind: str, payload: dict[str, Any]) -> None:
        self.state.run_job(kind, payload)

    def reset(self) -> None:
        """Back to an empty sandbox; configuration (limits, faults, version, endpoints) is kept."""
        self.clock = SandboxClock(self.clock_start, runner=self._run_job)
        self.rng = random.Random(f"{self.system.name}:{self.key}:{self.seed}")
        self.journal.clear()
        # Webhooks still owed from the previous run must not leak into the next one.
        self.webhooks.cancel_pending()
        self.webhooks.clear_log()
        self.state = self.system.new_state(self)

    def dump(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "seed": self.seed,
            "clock_start": self.clock_start,
            "api_version": self.api_version,
            "clock": self.clock.dump(),
            "limits": self.limiter.dump(),
            "faults": self.faults.dump(),
            "webhooks": self.webhooks.dump(),
            "state": self.state.dump(),
        }

    def load(self, data: dict[str, Any]) -> None:
        self.seed = int(data.get("seed", self.seed))
        self.clock_start = float(data.get("clock_start", self.clock_start))
        self.api_version = data.get("api_version") or self.api_version
        self.clock = SandboxClock(self.clock_start, runner=self._run_job)
        self.state = self.system.new_state(self)
        self.clock.load(data["clock"])
        self.limiter.load(data.get("limits", {}))
        self.faults.load(data.get("faults", {}))
        self.webhooks.load(data.get("webhooks", {}))
        self.state.load(data.get("state", {}))


class TenantRegistry:
    """Lazily creates tenants by credential key; `auto_provision=False` makes unknown keys a 401."""

    def __init__(
        self,
        system: MockSystem,
        *,
        auto_provision: bool = True,
        seed: int = 0,
        clock_start: float = DEFAULT_START,
        routes: DeliveryRoutes | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.system = system
        self.auto_provision = auto_provision
        self.seed = seed
        self.clock_start = clock_start
        self.routes = routes
        self.wall = wall
        self._tenants: dict[str, Tenant] = {}

    def __iter__(self) -> Iterator[Tenant]:
        return iter(list(self._tenants.values()))

    def __len__(self) -> int:
        return len(self._tenants)

    def get(self, key: str) -> Tenant | None:
        return self._tenants.get(key)

    def create(self, key: str, *, seed: int | None = None, clock_start: float | None = None,
               api_version: str | None = None) -> Tenant:
        if api_version is not None and api_version not in self.system.versions:
            raise KeyError(api_version)
        tenant = Tenant(
            key,
            self.system,
            seed=self.seed if seed is None else seed,
            clock_start=self.clock_start if clock_start is None else clock_start,
            api_version=api_version,
            routes=self.routes,
            wall=self.wall,
        )
        self._tenants[key] = tenant
        return tenant

    def resolve(self, key: str) -> Tenant | None:
        """The tenant for a well-formed credential: existing, or new when auto-provisioning is on."""
        tenant = self._tenants.get(key)
        if tenant is None and self.auto_provision:
            tenant = self.create(key)
        return tenant

    def remove(self, key: str) -> bool:
        tenant = self._tenants.pop(key, None)
        if tenant is not None:
            tenant.webhooks.close()
        return tenant is not None

    def dump(self) -> dict[str, Any]:
        return {"system": self.system.name, "tenants": {k: t.dump() for k, t in self._tenants.items()}}

    def load(self, data: dict[str, Any]) -> None:
        if data.get("system") not in (None, self.system.name):
            raise ValueError(f"snapshot is of system {data.get('system')!r}, not {self.system.name!r}")
        for tenant in self._tenants.values():
            tenant.webhooks.close()
        self._tenants = {}
        for key, tdata in data.get("tenants", {}).items():
            tenant = self.create(key, seed=tdata.get("seed"), clock_start=tdata.get("clock_start"))
            tenant.load(tdata)
