"""`python -m core` serves the API with uvicorn, launching its own runtime in the app's lifespan and
shutting it down cleanly on SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_core_answers_health_and_shuts_down(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOCKSTEP_CORE_DATA_DIR": str(tmp_path),
           "LOCKSTEP_CORE_PORT": str(port), "LOCKSTEP_CORE_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "core"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline, health = time.monotonic() + 30, None
        while health is None:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the core did not come up"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["backend"] == "sqlite"
        unsigned = httpx.post(f"http://127.0.0.1:{port}/webhooks/billing", content=b"{}")
        assert unsigned.status_code == 400
        assert (tmp_path / "dbos.sqlite").exists() and (tmp_path / "core.sqlite").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err[-3000:]
