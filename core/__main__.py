"""`python -m core`: serve the integration core with uvicorn (default 127.0.0.1:8100; see CoreSettings).

Everything comes from `LOCKSTEP_CORE_*` settings: storage, port, and the systems of record it connects to
(`LOCKSTEP_CORE_BILLING_URL`, `_KEY`, `_VERSION`, ...; by default a local `lockstep up` and its demo tenants).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from core.settings import CoreSettings


def serve_core(settings: CoreSettings | None = None) -> int:
    """Run the core until interrupted: in this process (launching and destroying its own runtime), or, with
    `workers` > 1, as that many worker processes on one port (core/workers.py)."""
    import socket

    import uvicorn

    from core import wiring
    from core.api import create_core_app

    settings = settings or CoreSettings()
    if settings.workers > 1 and settings.worker_index is None:
        from core.workers import serve_workers

        return serve_workers(settings)
    _use_uvloop()
    endpoints = wiring.endpoints_from_settings(settings)
    connections = wiring.build_connections(endpoints)
    wiring.install(connections, endpoints=endpoints)
    try:
        server = uvicorn.Server(uvicorn.Config(create_core_app(settings), host=settings.host, port=settings.port,
                                               log_level=settings.log_level))
        # A worker serves the socket its supervisor bound (socket() reads the family off the fd itself).
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it shut down on
            server.run(sockets=None if settings.listen_fd is None else [socket.socket(fileno=settings.listen_fd)])
    finally:
        wiring.install(None)
        with contextlib.suppress(Exception):  # pools bound to uvicorn's (closed) loop have nothing left open
            asyncio.run(connections.aclose())
    return 0


def _use_uvloop() -> None:
    """Every event loop of this process on uvloop (shipped with uvicorn[standard]), not only uvicorn's: the
    flows run on DBOS's own background loop, which asks the policy for a new loop; there every outbound
    vendor call is loop work."""
    try:
        import uvloop
    except ImportError:  # plain uvicorn: asyncio's loop is slower, not wrong
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main() -> int:
    from pydantic import ValidationError

    try:
        settings = CoreSettings()
    except ValidationError as exc:  # a bad LOCKSTEP_CORE_* value: say which, no traceback
        problems = "; ".join(f"LOCKSTEP_CORE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"core settings: {problems}", file=sys.stderr)
        return 2
    return serve_core(settings)


if __name__ == "__main__":
    raise SystemExit(main())
