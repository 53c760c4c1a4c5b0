"""Serving apps on real sockets: uvicorn in a background thread (tests, benches) or in the foreground."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """Runs one ASGI app under uvicorn in a daemon thread; `with ServerThread(app) as s: s.url`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 15.0,
                 **uvicorn_options: Any) -> None:
        self.host = host
        self.port = port or free_port(host)
        options = {"log_level": "warning", "lifespan": "on", **uvicorn_options}
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, **options))
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn:{self.port}", daemon=True)
        self.startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        scheme = "https" if self.server.config.ssl_certfile else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        # Wait on uvicorn's own readiness flag, not a fixed sleep.
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"uvicorn on {self.url} exited during startup")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"uvicorn on {self.url} did not start within {self.startup_timeout}s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
