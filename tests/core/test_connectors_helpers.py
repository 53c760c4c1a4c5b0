"""Shared helpers of the connector tests (no tests here): the mock apps in-process, their control API, and
transports that lose a response or fail a connection on purpose.

Tests may import the mocks to build their apps; the connectors under test never do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from core.connectors import RetryPolicy
from mocks.kernel.app import create_mock_app

ADMIN = "t"
# Small backoff for tests: real waits, just short ones.
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5, max_retry_after=5.0)


def app_of(system: Any) -> Any:
    return create_mock_app(system, admin_token=ADMIN)


class Sandbox:
    """The /_sandbox control API of one mock tenant."""

    def __init__(self, app: Any, tenant: str) -> None:
        self.tenant = tenant
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock",
                                      headers={"Lockstep-Admin-Token": ADMIN})

    async def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 300, response.text
        return response.json()

    async def create(self, **body: Any) -> Any:
        return await self._ok(await self.http.post("/_sandbox/tenants", json={"key": self.tenant, **body}))

    async def faults(self, *rules: dict[str, Any]) -> Any:
        return await self._ok(await self.http.put(f"/_sandbox/tenants/{self.tenant}/faults",
                                                  json={"rules": list(rules)}))

    async def clear_faults(self) -> Any:
        return await self._ok(await self.http.delete(f"/_sandbox/tenants/{self.tenant}/faults"))

    async def limits(self, *policies: dict[str, Any]) -> Any:
        return await self._ok(await self.http.put(f"/_sandbox/tenants/{self.tenant}/limits",
                                                  json={"policies": list(policies)}))

    async def version(self, api_version: str) -> Any:
        return await self._ok(await self.http.put(f"/_sandbox/tenants/{self.tenant}/version",
                                                  json={"api_version": api_version}))

    async def seed(self, body: dict[str, Any]) -> Any:
        return await self._ok(await self.http.post(f"/_sandbox/tenants/{self.tenant}/seed", json=body))

    async def journal(self, **params: Any) -> list[dict[str, Any]]:
        params.setdefault("limit", 5000)
        return await self._ok(await self.http.get(f"/_sandbox/tenants/{self.tenant}/journal", params=params))

    async def aclose(self) -> None:
        await self.http.aclose()


class FlakyTransport(httpx.AsyncBaseTransport):
    """Wraps a transport. For the first `times` requests matching `match`:
    - `lose_response=True`: the request reaches the server, then the response is lost (httpx.ReadError);
    - otherwise the connection fails before the server sees anything (httpx.ConnectError)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, match: Callable[[httpx.Request], bool], *, times: int = 1,
                 lose_response: bool = False) -> None:
        self.inner = inner
        self.match = match
        self.left = times
        self.lose_response = lose_response
        self.failed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left > 0 and self.match(request):
            self.left -= 1
            self.failed += 1
            if not self.lose_response:
                raise httpx.ConnectError("connection refused (test)", request=request)
            response = await self.inner.handle_async_request(request)
            await response.aread()
            raise httpx.ReadError("connection reset before the response was read (test)", request=request)
        return await self.inner.handle_async_request(request)


def statuses(entries: list[dict[str, Any]]) -> list[int]:
    return [e["status"] for e in entries]
