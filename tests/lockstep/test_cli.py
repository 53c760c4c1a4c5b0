"""The CLI as a user meets it: `lockstep up` and `lockstep serve` as real processes, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

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
