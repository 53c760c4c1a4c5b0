"""`LOCKSTEP_CORE_WORKERS=2`: one port, two core processes (core/workers.py). Both answer; a worker that is
killed is started again under its own number (so it recovers its own flows); SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.connectors.base import Limits
from core.settings import CoreSettings
from core.workers import worker_env

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _workers_seen(url: str, want: int, *, exclude: set[int] = frozenset(), tries: int = 400) -> dict[int, dict]:
    """pid -> worker info, asking /health on fresh connections until `want` distinct pids (not in `exclude`)
    answered, or `tries` requests were made."""
    seen: dict[int, dict] = {}
    for _ in range(tries):
        try:
            worker = httpx.get(f"{url}/health", timeout=2).json()["worker"]
        except (httpx.TransportError, KeyError, ValueError):
            time.sleep(0.05)  # a worker (re)starting: ask again
            continue
        if worker["pid"] not in exclude:
            seen[worker["pid"]] = worker
        if len(seen) >= want:
            break
    return seen


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOCKSTEP_CORE_DATA_DIR": str(tmp_path),
           "LOCKSTEP_CORE_PORT": str(port), "LOCKSTEP_CORE_LOG_LEVEL": "warning", "LOCKSTEP_CORE_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "core"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_two_workers_answer_one_port_and_a_killed_one_comes_back(
        two_workers: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = two_workers
    deadline = time.monotonic() + DEADLINE_S
    seen: dict[int, dict] = {}
    while len(seen) < 2:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"two workers never answered: {seen}"
        seen.update(_workers_seen(url, 2, tries=50))
    assert sorted(w["index"] for w in seen.values()) == [0, 1]
    assert {w["executor_id"] for w in seen.values()} == {"local", "local-w1"}
    assert all(w["of"] == 2 for w in seen.values())

    victim = next(pid for pid, w in seen.items() if w["index"] == 1)
    os.kill(victim, signal.SIGKILL)
    back: dict[int, dict] = {}
    while not any(w["index"] == 1 for w in back.values()):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline + DEADLINE_S, "worker 1 was not started again"
        back.update(_workers_seen(url, 1, exclude=set(seen), tries=50))
    [restarted] = [w for w in back.values() if w["index"] == 1]
    assert restarted["executor_id"] == "local-w1" and restarted["pid"] != victim

    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    for pid in (*seen, restarted["pid"]):
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_a_worker_is_configured_like_its_supervisor(tmp_path: Path) -> None:
    settings = CoreSettings(data_dir=tmp_path, workers=3, coalesce_events=True, port=9999)
    env = worker_env(settings, 2, 7)
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        child = CoreSettings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert child.worker_index == 2 and child.listen_fd == 7 and child.workers == 3
    assert child.coalesce_events is True and child.port == 9999 and child.data_dir == tmp_path
    assert child.worker_executor_id == "local-w2" and settings.worker_executor_id is None


def test_workers_share_each_vendor_limit() -> None:
    assert Limits(max_in_flight=4).share(2) == Limits(max_in_flight=2)
    assert Limits(max_in_flight=5).share(2).max_in_flight == 2  # together 4, never above 5
    assert Limits(max_in_flight=1).share(3).max_in_flight == 1  # one request each at least
    billing = Limits(rate_per_s=18.0, burst=5).share(2)
    assert billing.rate_per_s == 9.0 and billing.burst == 2
    assert Limits(rate_per_s=18.0, burst=5).share(1) == Limits(rate_per_s=18.0, burst=5)


def test_each_worker_connects_with_its_share_of_the_vendor_limits(tmp_path: Path) -> None:
    from core.wiring import CLIENT_CLASSES, endpoints_from_settings

    shared = endpoints_from_settings(CoreSettings(data_dir=tmp_path, workers=2))
    for system, cls in CLIENT_CLASSES.items():
        assert shared[system].options["limiter"].limits == cls.default_limits.share(2)
    alone = endpoints_from_settings(CoreSettings(data_dir=tmp_path))
    assert all("limiter" not in ep.options for ep in alone.values())  # the connector's own defaults
