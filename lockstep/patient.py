"""An httpx transport that waits out a vendor's 429 the way a well-behaved client does.

The sandbox's own vendor clients (`Sandbox.clients`, `SandboxTenant.clients`) share each tenant's rate limit
with the core under test, as a real team's scripts share an account's limit. A test that reads state while
flows are busy would otherwise see a 429 instead of the state it asked about; this transport waits as told
(`Retry-After`, capped) and asks again. The 429 itself still happened: it is in the mock's journal.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

__all__ = ["PatientSyncTransport", "PatientTransport", "retry_wait"]


def retry_wait(response: httpx.Response, attempt: int, max_wait_s: float) -> float:
    """Seconds to wait before asking again: the vendor's Retry-After, else exponential; capped."""
    raw = response.headers.get("retry-after")
    try:
        told = float(raw) if raw else None
    except ValueError:
        told = None
    return min(max_wait_s, told if told is not None else 0.05 * 2 ** attempt)


class PatientTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, attempts: int = 8, max_wait_s: float = 5.0,
                 owns_inner: bool = True) -> None:
        self.inner = inner
        self.owns_inner = owns_inner  # False: a shared transport (an ASGI app's) that others still use
        self.attempts = attempts
        self.max_wait_s = max_wait_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 1
        response = await self.inner.handle_async_request(request)
        while response.status_code == 429 and attempt < self.attempts:
            await response.aread()
            await response.aclose()
            await asyncio.sleep(self._wait(response, attempt))
            attempt += 1
            response = await self.inner.handle_async_request(request)
        return response

    def _wait(self, response: httpx.Response, attempt: int) -> float:
        return retry_wait(response, attempt, self.max_wait_s)

    async def aclose(self) -> None:
        if self.owns_inner:
            await self.inner.aclose()


class PatientSyncTransport(httpx.BaseTransport):
    """The same patience for a blocking `httpx.Client` (the demo story, scripts)."""

    def __init__(self, inner: httpx.BaseTransport | None = None, *, attempts: int = 8, max_wait_s: float = 5.0,
                 verify: Any = True) -> None:
        self.inner = inner or httpx.HTTPTransport(verify=verify)
        self.attempts = attempts
        self.max_wait_s = max_wait_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 1
        response = self.inner.handle_request(request)
        while response.status_code == 429 and attempt < self.attempts:
            response.read()
            response.close()
            time.sleep(retry_wait(response, attempt, self.max_wait_s))  # as the vendor told
            attempt += 1
            response = self.inner.handle_request(request)
        return response

    def close(self) -> None:
        self.inner.close()

