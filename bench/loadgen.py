"""A lean HTTP/1.1 keep-alive load generator on asyncio (uvloop when present).

httpx costs more CPU per request than the servers we measure, so a general client would benchmark itself.
This one writes pre-built requests and reads responses by Content-Length: just enough for our own servers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    head: bytes
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode() + b":"
        for line in self.head.split(b"\r\n"):
            if line.lower().startswith(wanted):
                return line[len(wanted):].strip().decode("latin-1")
        return None


# A step builds the next request from the previous reply (or None at the start of a cycle).
Step = Callable[[Reply | None], bytes]


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def build_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    body = await reader.readexactly(length) if length else b""
    return Reply(status, head, body)


async def _worker(host: str, port: int, steps: list[Step], deadline: float, result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            previous: Reply | None = None
            for step in steps:
                started = time.perf_counter()
                writer.write(step(previous))
                previous = await _read_response(reader)
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.requests += 1
                if previous.status >= 400:
                    result.errors += 1
    finally:
        writer.close()


def run_load(host: str, port: int, steps: list[Step], *, connections: int = 32, seconds: float = 5.0,
             warmup: float = 1.0) -> LoadResult:
    """Drive `connections` keep-alive connections through `steps` in a loop for `seconds`."""

    async def main() -> LoadResult:
        warm = LoadResult()
        await asyncio.gather(*(_worker(host, port, steps, time.perf_counter() + warmup, warm)
                               for _ in range(min(connections, 4))))
        result = LoadResult()
        started = time.perf_counter()
        await asyncio.gather(*(_worker(host, port, steps, started + seconds, result) for _ in range(connections)))
        result.seconds = time.perf_counter() - started
        return result

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(main())


def json_path(reply: Reply | None, *path: str | int) -> str:
    """A value from the reply's JSON body, e.g. json_path(r, "data", "records", 0, "Gsid")."""
    value = json.loads(reply.body or b"{}") if reply else {}
    for key in path:
        value = value[key]
    return str(value)
