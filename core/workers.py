"""Several core processes behind one port (`LOCKSTEP_CORE_WORKERS=N`): the supervisor.

Why: a core is one Python process, so one GIL. On a month-end burst it saturates one CPU while the machine
has more. N workers each run a whole core (intake, flows, API) on the same store; the DBOS flow queue lives
in that store, so a flow one worker's intake enqueues runs on whichever worker has room for it.

How:
- The supervisor binds the listening socket once; each worker inherits it (its fd in
  `LOCKSTEP_CORE_LISTEN_FD`) and the kernel spreads accepted connections over them.
- Worker 0 starts first and alone: it creates the core's tables and runs DBOS's migrations, so no two
  processes race on a schema. The others start once it answers `/health`.
- Each worker has its own stable DBOS executor id (`CoreSettings.worker_executor_id`). DBOS recovers at
  launch the unfinished flows of its own executor id, so a worker that dies is started again under the same
  number and resumes its own flows; the others go on meanwhile.
- Each worker keeps to 1/N of every vendor's client-side limits (core/wiring.py), so together they hold the
  vendor's budget.
- SIGTERM / SIGINT are passed on to every worker, which shuts down like a single core; then the supervisor
  returns.

Works with SQLite (WAL: the files are shared by the processes of one machine) and with PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from types import FrameType

import httpx

from core.settings import CoreSettings

__all__ = ["Supervisor", "serve_workers", "worker_env"]

_log = logging.getLogger("lockstep.core.workers")

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
# A worker that stayed up this long counts as healthy again: its next exit restarts it at the first backoff.
STABLE_AFTER_S = 30.0


def worker_env(settings: CoreSettings, index: int, fd: int) -> dict[str, str]:
    """The environment of worker `index`: every setting of the supervisor spelled as `LOCKSTEP_CORE_*` (so a
    worker is configured exactly like its supervisor, however the supervisor got its settings), plus the
    worker's number and the socket it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSTEP_CORE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"LOCKSTEP_CORE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env["LOCKSTEP_CORE_WORKER_INDEX"] = str(index)
    env["LOCKSTEP_CORE_LISTEN_FD"] = str(fd)
    return env


class Supervisor:
    """Starts `settings.workers` core processes on one socket, restarts one that exits, stops them all."""

    def __init__(self, settings: CoreSettings, sock: socket.socket, *, startup_timeout: float = 90.0) -> None:
        self.settings = settings
        self.sock = sock
        self.startup_timeout = startup_timeout
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.restarts: dict[int, int] = {}
        self._started_at: dict[int, float] = {}
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        fd = self.sock.fileno()
        proc = subprocess.Popen([sys.executable, "-m", "core"], env=worker_env(self.settings, index, fd),
                                pass_fds=(fd,))
        self.procs[index] = proc
        self._started_at[index] = time.monotonic()
        return proc

    def start(self) -> None:
        """Worker 0 alone until it is healthy (it owns schema set-up), then the others."""
        first = self.spawn(0)
        self._wait_healthy(first)
        for index in range(1, self.settings.workers):
            self.spawn(index)
        _log.info("core: %d workers on %s", self.settings.workers, self.url)

    def _wait_healthy(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2) as client:
            while not self._stopping.is_set():
                if proc.poll() is not None:
                    raise RuntimeError(f"core worker 0 exited with {proc.returncode} while starting")
                try:
                    if client.get(f"{self.url}/health").json().get("status") == "ok":
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"core worker 0 did not answer {self.url}/health in {self.startup_timeout} s")
                self._stopping.wait(0.1)

    def watch(self, poll_s: float = 0.5) -> None:
        """Until stop(): a worker that exits is started again (same number: it recovers its own flows)."""
        while not self._stopping.wait(poll_s):
            for index, proc in list(self.procs.items()):
                if proc.poll() is None or self._stopping.is_set():
                    continue
                if time.monotonic() - self._started_at[index] > STABLE_AFTER_S:
                    self.restarts[index] = 0
                tries = self.restarts.get(index, 0)
                delay = RESTART_BACKOFF_S[min(tries, len(RESTART_BACKOFF_S) - 1)]
                _log.warning("core worker %d exited with %s; starting it again in %.1f s", index,
                             proc.returncode, delay)
                self.restarts[index] = tries + 1
                if not self._stopping.wait(delay):
                    self.spawn(index)

    def stop(self) -> None:
        self._stopping.set()

    def shutdown(self, timeout: float = 60.0) -> None:
        """SIGTERM to every worker (each destroys its runtime), then wait; a worker still up is killed."""
        self._stopping.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def serve_workers(settings: CoreSettings) -> int:
    """Serve the core as `settings.workers` processes until SIGTERM / SIGINT."""
    sock = socket.create_server((settings.host, settings.port), backlog=2048)
    sock.set_inheritable(True)
    supervisor = Supervisor(settings, sock)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        supervisor.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        supervisor.start()
        supervisor.watch()
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"core: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.shutdown()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
