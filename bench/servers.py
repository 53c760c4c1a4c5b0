"""Start an app factory under uvicorn[standard] (uvloop + httptools, one worker) in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import TracebackType

import httpx

from mocks.kernel.serving import free_port


class ServerProcess:
    def __init__(self, factory: str, *, env: dict[str, str] | None = None, health: str = "/openapi.json") -> None:
        self.port = free_port()
        self.health = health
        self.cmd = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
                    "--port", str(self.port), "--loop", "uvloop", "--http", "httptools",
                    "--log-level", "warning", "--no-access-log"]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(self.cmd, env=self.env)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {' '.join(self.cmd)}")
            try:
                if httpx.get(self.url + self.health, timeout=1).status_code < 500:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not start: {' '.join(self.cmd)}")
            time.sleep(0.05)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
