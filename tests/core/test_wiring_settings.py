"""`python -m core` wiring: every system of record comes from LOCKSTEP_CORE_* settings."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from core import wiring
from core.settings import CoreSettings


def test_endpoints_come_from_settings_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKSTEP_CORE_BILLING_URL", "http://127.0.0.1:9103")
    monkeypatch.setenv("LOCKSTEP_CORE_BILLING_KEY", "sk_test_fromenv")
    monkeypatch.setenv("LOCKSTEP_CORE_BILLING_VERSION", "2026-10-28.endive")
    endpoints = wiring.endpoints_from_settings(CoreSettings())
    assert set(endpoints) == {"crm", "erp", "billing", "cs"}
    billing = endpoints["billing"]
    assert (billing.base_url, billing.credential, billing.api_version) == (
        "http://127.0.0.1:9103", "sk_test_fromenv", "2026-10-28.endive")
    assert endpoints["erp"].base_url == "http://127.0.0.1:8102" and endpoints["erp"].credential == "nsdemo"
    assert billing.transport is None and "limiter" not in billing.options  # vendor limits: the connector's own


async def test_client_limits_off_lifts_the_vendor_throttles() -> None:
    vendor = wiring.build_connections(wiring.endpoints_from_settings(CoreSettings()))
    lifted = wiring.build_connections(wiring.endpoints_from_settings(CoreSettings(client_limits="off")))
    try:
        assert vendor.erp.limiter.limits.max_in_flight == 4 and vendor.billing.limiter.limits.rate_per_s
        assert lifted.erp.limiter.limits.max_in_flight is None and lifted.billing.limiter.limits.rate_per_s is None
    finally:
        await vendor.aclose()
        await lifted.aclose()


def test_https_systems_trust_the_configured_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    settings = CoreSettings(crm_url="https://127.0.0.1:8101", ca_bundle=bundle)
    endpoints = wiring.endpoints_from_settings(settings)
    assert endpoints["billing"].transport is None  # plain http: the client's own transport

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def fetch(transport: httpx.AsyncBaseTransport, port: int) -> int:
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.get(f"https://127.0.0.1:{port}/")).status_code

    async def main() -> None:
        served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(served)
        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
        port = server.sockets[0].getsockname()[1]
        try:
            assert await fetch(endpoints["crm"].transport, port) == 200  # type: ignore[arg-type]
            other = tmp_path / "other.pem"
            trustme.CA().cert_pem.write_to_path(str(other))
            stranger = wiring.endpoints_from_settings(CoreSettings(crm_url="https://127.0.0.1:8101", ca_bundle=other))
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await fetch(stranger["crm"].transport, port)  # type: ignore[arg-type]
        finally:
            server.close()

    asyncio.run(main())


def test_an_unknown_pinned_version_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="no mapping for API version"):
        wiring.build_connections(wiring.endpoints_from_settings(CoreSettings(erp_version="2019.1")))


def test_python_m_core_refuses_a_bad_setting_with_a_clear_line() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "LOCKSTEP_CORE_CLIENT_LIMITS": "sometimes"}
    done = subprocess.run([sys.executable, "-m", "core"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "LOCKSTEP_CORE_CLIENT_LIMITS" in done.stderr and "Traceback" not in done.stderr
