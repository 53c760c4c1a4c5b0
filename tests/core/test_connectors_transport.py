"""The connectors' aiohttp transport behind httpx (core/connectors/transport.py), over real loopback sockets:
requests and responses go through unchanged, and every way a connection fails is the httpx error a
connector's retry rules expect."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from core.connectors.transport import AiohttpTransport


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A small HTTP/1.1 server: /echo answers what it got, /slow never answers in time, /drop hangs up."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if target.startswith("/drop"):
                writer.close()
                return
            if target.startswith("/slow"):
                await asyncio.sleep(5)  # the fault under test: longer than the client's read timeout
            status, extra = (429, "Retry-After: 7\r\n") if target.startswith("/limited") else (200, "")
            payload = json.dumps({"method": method, "target": target, "body": body.decode(),
                                  "auth": headers.get("authorization"), "trace": headers.get("x-trace")}).encode()
            writer.write(f"HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\n{extra}"
                         f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@asynccontextmanager
async def _server() -> AsyncIterator[str]:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(base_url: str, **kw: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=AiohttpTransport(max_connections=2), **kw)  # type: ignore[arg-type]


def test_requests_and_responses_go_through_unchanged() -> None:
    async def main() -> None:
        async with _server() as url, _client(url, headers={"Authorization": "Bearer k"}) as client:
            got = await client.post("/echo", params={"a": "1 2"}, json={"x": 1}, headers={"X-Trace": "t1"})
            assert got.status_code == 200 and got.reason_phrase == "Whatever"
            assert got.json() == {"method": "POST", "target": "/echo?a=1+2", "body": '{"x":1}', "auth": "Bearer k",
                                  "trace": "t1"}
            limited = await client.get("/limited")
            assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
            # Keep-alive with a bound of 2: many requests, all answered, in order per request.
            answers = await asyncio.gather(*(client.get(f"/echo/{i}") for i in range(20)))
            assert [a.json()["target"] for a in answers] == [f"/echo/{i}" for i in range(20)]

    asyncio.run(main())


def test_a_refused_connection_is_a_connect_error() -> None:
    async def main() -> None:
        async with _client(f"http://127.0.0.1:{_closed_port()}") as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/echo")

    asyncio.run(main())


def test_no_answer_in_time_is_a_read_timeout() -> None:
    async def main() -> None:
        async with _server() as url, _client(url, timeout=httpx.Timeout(5, read=0.2)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/slow")

    asyncio.run(main())


def test_a_hang_up_without_an_answer_is_a_protocol_error() -> None:
    async def main() -> None:
        async with _server() as url, _client(url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/drop")
            assert (await client.get("/echo")).status_code == 200  # the next request gets a new connection

    asyncio.run(main())


def test_one_transport_serves_one_event_loop_after_another() -> None:
    """The core's connections outlive a loop in tests and harnesses: each loop gets its own session."""
    transport = AiohttpTransport(max_connections=2)

    async def once(url: str) -> int:
        client = httpx.AsyncClient(base_url=url, transport=transport)
        return (await client.get("/echo")).status_code

    async def main() -> tuple[int, int]:
        async with _server() as url:
            return await once(url), len(transport._sessions)

    assert asyncio.run(main()) == (200, 1)
    assert asyncio.run(main()) == (200, 1)  # the closed loop's session was dropped, a new one made

    async def close() -> None:
        await transport.aclose()

    asyncio.run(close())
    assert transport._sessions == {}
