"""`python -m core`: serve the integration core with uvicorn (default 127.0.0.1:8100; see CoreSettings).

Everything comes from `LOCKSTEP_CORE_*` settings: storage, port, and the systems of record it connects to
(`LOCKSTEP_CORE_BILLING_URL`, `_KEY`, `_VERSION`, ...; by default a local `lockstep up` and its demo tenants).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from core.settings import CoreSettings


def serve_core(settings: CoreSettings | None = None) -> None:
    """Run the core in this process until interrupted (launches and destroys its own runtime)."""
    import uvicorn

    from core import wiring
    from core.api import create_core_app

    settings = settings or CoreSettings()
    _use_uvloop()
    endpoints = wiring.endpoints_from_settings(settings)
    connections = wiring.build_connections(endpoints)
    wiring.install(connections, endpoints=endpoints)
    try:
        uvicorn.run(create_core_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)
    finally:
        wiring.install(None)
        with contextlib.suppress(Exception):  # pools bound to uvicorn's (closed) loop have nothing left open
            asyncio.run(connections.aclose())


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
    serve_core(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
