"""How the core reaches the systems of record: one endpoint per system, one connector each.

Flows never build clients: they call `connections()` inside their steps, so the same flow code runs
against the mocks in-process (ASGI transports), against `lockstep up` (loopback URLs) or against the real
vendors (their URLs and credentials). The process installs its connections once at startup.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx

from core import trace
from core.connectors.base import DEFAULT_POOL_SIZE, BaseClient, ClientLimiter, Limits
from core.connectors.billing import BillingClient
from core.connectors.crm import CrmClient
from core.connectors.cs import CsClient
from core.connectors.erp import ErpClient
from core.connectors.transport import AiohttpTransport
from core.settings import CoreSettings

SYSTEMS = ("crm", "erp", "billing", "cs")
CLIENT_CLASSES: dict[str, type[BaseClient]] = {"crm": CrmClient, "erp": ErpClient, "billing": BillingClient,
                                               "cs": CsClient}


@dataclass(frozen=True)
class SystemEndpoint:
    base_url: str
    credential: str
    api_version: str
    # In-process wiring: an ASGI transport to the mock app instead of a socket.
    transport: httpx.AsyncBaseTransport | None = field(default=None, compare=False)
    options: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Connections:
    crm: CrmClient
    erp: ErpClient
    billing: BillingClient
    cs: CsClient

    async def aclose(self) -> None:
        for client in (self.crm, self.erp, self.billing, self.cs):
            await client.aclose()


def build_connections(endpoints: dict[str, SystemEndpoint]) -> Connections:
    missing = [s for s in SYSTEMS if s not in endpoints]
    if missing:
        raise ValueError(f"no endpoint configured for: {', '.join(missing)}")

    def common(system: str) -> dict[str, Any]:
        ep = endpoints[system]
        return {"base_url": ep.base_url, "api_version": ep.api_version, "transport": ep.transport,
                "event_hooks": trace.async_event_hooks(system), **ep.options}

    return Connections(
        crm=CrmClient(access_token=endpoints["crm"].credential, **common("crm")),
        erp=ErpClient(token=endpoints["erp"].credential, **common("erp")),
        billing=BillingClient(api_key=endpoints["billing"].credential, **common("billing")),
        cs=CsClient(access_key=endpoints["cs"].credential, **common("cs")),
    )


def endpoints_from_settings(settings: CoreSettings) -> dict[str, SystemEndpoint]:
    """One endpoint per system from `LOCKSTEP_CORE_<SYSTEM>_{URL,KEY,VERSION}` (and `_CA_BUNDLE` for https)."""
    out = {}
    for system in SYSTEMS:
        base_url = getattr(settings, f"{system}_url")
        transport = None
        if base_url.startswith("https://") and settings.ca_bundle is not None:
            transport = AiohttpTransport(max_connections=DEFAULT_POOL_SIZE,
                                         ssl_context=ssl.create_default_context(cafile=str(settings.ca_bundle)))
        options: dict[str, Any] = {}
        if settings.client_limits == "off":
            options["limiter"] = ClientLimiter(Limits())
        elif settings.workers > 1:  # several core processes share each vendor account's limits
            options["limiter"] = ClientLimiter(CLIENT_CLASSES[system].default_limits.share(settings.workers))
        out[system] = SystemEndpoint(base_url=base_url, credential=getattr(settings, f"{system}_key"),
                                     api_version=getattr(settings, f"{system}_version"), transport=transport,
                                     options=options)
    return out


_installed: Connections | None = None
_endpoints: dict[str, SystemEndpoint] | None = None
_loop_connections: dict[asyncio.AbstractEventLoop, Connections] = {}


def install(connections: Connections | None, *, endpoints: dict[str, SystemEndpoint] | None = None) -> None:
    """Install the process's connections (None: uninstall). With `endpoints`, callers on another event loop
    than the flows' can get connections of their own (`connections_for_this_loop`)."""
    global _installed, _endpoints
    _installed, _endpoints = connections, endpoints
    _loop_connections.clear()


def connections_for_this_loop() -> Connections:
    """Connections usable on the running event loop, for callers outside the flows (the API's reconcile).

    The installed connections serve the flows, on DBOS's event loop; their client-side limiters hold asyncio
    primitives that bind to the first loop that waits on them, so a request handler on uvicorn's loop must
    not share them. With the endpoints known (`python -m core`), each other loop gets a set of its own, built
    once; without them (in-process harnesses, one loop) the installed set is returned.
    """
    installed = connections()
    if _endpoints is None:
        return installed
    loop = asyncio.get_running_loop()
    if loop not in _loop_connections:
        _loop_connections[loop] = build_connections(_endpoints)
    return _loop_connections[loop]


def connections() -> Connections:
    if _installed is None:
        raise RuntimeError("the core has no connections installed: call core.wiring.install() at startup")
    return _installed
