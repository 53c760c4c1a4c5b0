"""The CLI as a user meets it: `lockstep up` and `lockstep serve` as real processes, stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mocks.kernel.serving import free_port

ADMIN = "cli-test-admin"


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early: {proc.communicate()[0]}")
        try:
            if httpx.get(f"{url}/_sandbox/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never became healthy")


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LOCKSTEP_ADMIN_TOKEN": ADMIN, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "lockstep.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _interrupt(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=20)
    return output


def _offset() -> int:
    # The offset moves every system together; anchor it on a port the OS just found free.
    return free_port() - 8101


def test_up_starts_each_system_on_its_port_and_ctrl_c_stops_cleanly() -> None:
    offset = _offset()
    proc = _start("up", "--only", "billing", "crm", "--port-offset", str(offset))
    try:
        _wait_healthy(f"http://127.0.0.1:{8103 + offset}", proc)
        _wait_healthy(f"http://127.0.0.1:{8101 + offset}", proc)
        health = httpx.get(f"http://127.0.0.1:{8101 + offset}/_sandbox/health").json()
        assert health["system"] == "crm"
        refused = httpx.get(f"http://127.0.0.1:{8103 + offset}/_sandbox/tenants")
        assert refused.status_code == 401
        listed = httpx.get(f"http://127.0.0.1:{8103 + offset}/_sandbox/tenants",
                           headers={"Lockstep-Admin-Token": ADMIN})
        assert listed.status_code == 200
    finally:
        output = _interrupt(proc)
    assert proc.returncode == 0, output
    assert "stopped." in output and f"http://127.0.0.1:{8103 + offset}" in output
    assert "core " not in output and "/flows" not in output  # --only without core: no core, as before


def test_up_rejects_unknown_systems() -> None:
    proc = _start("up", "--only", "mainframe")
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "unknown system" in output


def test_serve_keeps_state_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "billing.json"
    auth = ("sk_test_cli", "")
    proc = _start("serve", "billing", "--port", str(port), "--state-file", str(state))
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        made = httpx.post(f"http://127.0.0.1:{port}/v1/customers", data={"name": "Kept"}, auth=auth).json()
    finally:
        _interrupt(proc)
    assert state.exists()
    proc = _start("serve", "billing", "--port", str(port), "--state-file", str(state))
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        again = httpx.get(f"http://127.0.0.1:{port}/v1/customers/{made['id']}", auth=auth)
    finally:
        _interrupt(proc)
    assert again.status_code == 200 and again.json()["name"] == "Kept"


def test_up_serves_the_crm_over_tls_from_a_local_ca(tmp_path: Path) -> None:
    offset = _offset()
    proc = _start("up", "--only", "crm", "--port-offset", str(offset), "--tls-dir", str(tmp_path))
    url = f"https://127.0.0.1:{8101 + offset}"
    ca = tmp_path / "ca.pem"
    try:
        deadline = time.monotonic() + 30
        while not ca.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        health: httpx.Response | None = None
        deadline = time.monotonic() + 30
        while health is None and time.monotonic() < deadline:
            try:
                trusted = ssl.create_default_context(cafile=str(ca))
                health = httpx.get(f"{url}/_sandbox/health", verify=trusted, timeout=1)
            except httpx.TransportError:
                time.sleep(0.05)
        assert health is not None and health.json()["system"] == "crm"
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the local CA is refused
            httpx.get(f"{url}/_sandbox/health", verify=True, timeout=2)
    finally:
        output = _interrupt(proc)
    assert f"REQUESTS_CA_BUNDLE={ca}" in output


def _core_offset() -> int:
    """An offset whose five ports (core 8100 .. CS 8104, shifted) are all free right now."""
    import socket

    for _ in range(50):
        base = free_port()
        if base + 4 > 65535:
            continue
        try:
            for port in range(base, base + 5):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base - 8100
    raise AssertionError("no five consecutive free ports")


async def _drive_live(offset: int) -> dict[str, Any]:
    from lockstep.sandbox import Sandbox

    urls = {name: f"http://127.0.0.1:{port + offset}" for name, port in
            {"crm": 8101, "erp": 8102, "billing": 8103, "cs": 8104}.items()}
    box = await Sandbox.connect(urls, ADMIN, f"http://127.0.0.1:{8100 + offset}")
    try:
        made = (await box.clients["billing"].post("/v1/customers", data={"name": "Live"})).json()
        invoice = (await box.clients["billing"].post("/v1/invoices", data={"customer": made["id"]})).json()
        (await box.clients["billing"].post(f"/v1/invoices/{invoice['id']}/finalize")).raise_for_status()
        report = await box.quiesce(timeout=30)
        endpoints = (await box.control("billing").get("/webhooks/endpoints")).json()
        # Newest first: the invoice just made (finalized, then paid: it totals 0).
        [delivery] = [d for d in await box.deliveries("billing", limit=2) if d["event_type"] == "invoice.finalized"]
        assert invoice["customer"] == made["id"]
        return {"endpoints": len(endpoints), "quiesce": report,
                "delivered": [a.get("status_code") for a in delivery["attempts"]]}
    finally:
        await box.aclose()


def test_up_serves_the_core_on_8100_plus_offset_subscribed_to_every_mock(tmp_path: Path) -> None:
    offset = _core_offset()
    core = f"http://127.0.0.1:{8100 + offset}"
    billing = f"http://127.0.0.1:{8103 + offset}"
    proc = _start("up", "--port-offset", str(offset), "--state-dir", str(tmp_path))
    admin = {"Lockstep-Admin-Token": ADMIN}
    try:
        for port in range(8101, 8105):
            _wait_healthy(f"http://127.0.0.1:{port + offset}", proc)
        deadline, health = time.monotonic() + 60, None
        while health is None:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the core never answered /health"
            try:
                health = httpx.get(f"{core}/health", timeout=1)
            except httpx.TransportError:
                time.sleep(0.05)
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        # Subscribed: every mock's demo tenant has an endpoint at the core (registered before the banner's
        # "Press Ctrl-C" line; wait for it rather than racing it).
        demo_keys = {"crm": "00Dlockstepdemo", "erp": "nsdemo", "billing": "sk_test_lockstepdemo",
                     "cs": "gs-lockstep-demo"}
        deadline = time.monotonic() + 30
        for system, key in demo_keys.items():
            url = f"http://127.0.0.1:{8100 + offset + ['crm', 'erp', 'billing', 'cs'].index(system) + 1}"
            while True:
                listed = httpx.get(f"{url}/_sandbox/tenants/{key}/webhooks/endpoints", headers=admin)
                if listed.status_code == 200 and listed.json():
                    break
                assert time.monotonic() < deadline, f"{system}: the core never subscribed ({listed.text})"
                time.sleep(0.05)
            assert [e["url"] for e in listed.json()] == [f"{core}/webhooks/{system}"]
        # A billing webhook reaches the core's intake over the loopback, signed with the core's secret; the
        # core's endpoint takes the events its flows listen to (invoice.finalized), not customer.created or
        # invoice.created (a draft: nothing to sync).
        customer = httpx.post(f"{billing}/v1/customers", data={"name": "Wired"},
                              auth=("sk_test_lockstepdemo", "")).json()
        draft = httpx.post(f"{billing}/v1/invoices", data={"customer": customer["id"]},
                           auth=("sk_test_lockstepdemo", "")).json()
        httpx.post(f"{billing}/v1/invoices/{draft['id']}/finalize",
                   auth=("sk_test_lockstepdemo", "")).raise_for_status()
        drained = httpx.post(f"{billing}/_sandbox/tenants/sk_test_lockstepdemo/webhooks/drain", headers=admin)
        assert drained.json() == {"drained": True, "pending": 0}
        deliveries = httpx.get(f"{billing}/_sandbox/tenants/sk_test_lockstepdemo/deliveries", headers=admin).json()
        assert not [d for d in deliveries if d["event_type"] in ("customer.created", "invoice.created")], deliveries
        [delivery] = [d for d in deliveries if d["event_type"] == "invoice.finalized"]
        assert delivery["url"] == f"{core}/webhooks/billing"
        assert [a.get("status_code") for a in delivery["attempts"]] == [200], (customer, delivery)
        inbox = httpx.get(f"{core}/health").json()["inbox"]
        assert sum(n for status, n in inbox.items() if status != "duplicates") >= 1, inbox  # in the core's inbox
        # The harness drives the same servers (Sandbox.connect): no second subscription, quiesce settles.
        seen = asyncio.run(_drive_live(offset))
        assert seen["endpoints"] == 1 and seen["quiesce"]["rounds"] >= 2 and seen["delivered"] == [200]
    finally:
        output = _interrupt(proc)
    assert proc.returncode == 0, output
    assert f"core     {core}" in output and f"{core}/flows" in output and f"{core}/dlq" in output
    assert "stopped." in output
    assert (tmp_path / "core" / "dbos.sqlite").exists()  # --state-dir keeps the core's stores
