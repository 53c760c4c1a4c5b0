"""`lockstep serve core` and `lockstep serve locust`: the non-mock services, run the way docker-compose runs
them (one foreground process each, configured by environment).

- core: `python -m core` (LOCKSTEP_CORE_* settings), plus `--subscribe URL`: once the core answers, register
  its webhook endpoint (URL/webhooks/<system>, as the mocks reach it) on each system's tenant, retrying
  until the mocks answer (compose starts them in any order). Needs the mocks' admin token
  (LOCKSTEP_CORE_SANDBOX_ADMIN_TOKEN or LOCKSTEP_ADMIN_TOKEN).
- locust: Locust itself (`python -m locust`), every option from LOCUST_* environment variables (Locust's own
  configuration: LOCUST_MODE_MASTER, LOCUST_MODE_WORKER, LOCUST_MASTER_NODE_HOST, LOCUST_HOST, ...), with
  loadtests/smoke.py as the default locustfile (LOCUST_LOCUSTFILE or `-f` picks another).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from core.settings import CoreSettings

__all__ = ["serve_core", "serve_locust", "subscribe_when_ready"]

DEFAULT_LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadtests" / "smoke.py"
SUBSCRIBE_TIMEOUT_S = 300.0


def subscribe_when_ready(settings: CoreSettings, public_url: str, admin_token: str, *,
                         timeout: float = SUBSCRIBE_TIMEOUT_S, say: Callable[[str], None] = print) -> list[str]:
    """Wait for the core (its own /health) and each mock to answer, then subscribe the core's webhooks on each
    system's tenant. Returns the systems subscribed."""
    from core.settings import SYSTEM_NAMES
    from lockstep.runner import subscribe_core

    local = f"http://{_connectable(settings.host)}:{settings.port}"
    urls = {s: str(getattr(settings, f"{s}_url")) for s in SYSTEM_NAMES}
    keys = {s: str(getattr(settings, f"{s}_key")) for s in SYSTEM_NAMES}
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            if httpx.get(f"{local}/health", timeout=2).json().get("status") == "ok":
                done = subscribe_core(public_url, urls, admin_token, settings=settings, tenants=keys)
                say(f"lockstep core: subscribed {public_url}/webhooks/<system> on {', '.join(done)}")
                return done
        except (httpx.HTTPError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            say(f"lockstep core: could not subscribe to the systems' webhooks in {timeout:.0f} s ({last})")
            return []
        time.sleep(0.5)  # the mocks or the core are still starting; bounded by the deadline


def _connectable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def serve_core(*, host: str | None, port: int | None, subscribe: str | None) -> int:
    """The core in the foreground (as `python -m core`), optionally subscribing itself once up."""
    from pydantic import ValidationError

    from core.__main__ import serve_core as run
    from core.settings import CoreSettings

    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    token = os.environ.get("LOCKSTEP_CORE_SANDBOX_ADMIN_TOKEN") or os.environ.get("LOCKSTEP_ADMIN_TOKEN")
    if token and not os.environ.get("LOCKSTEP_CORE_SANDBOX_ADMIN_TOKEN"):
        overrides["sandbox_admin_token"] = token
    try:
        settings = CoreSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"LOCKSTEP_CORE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"core settings: {problems}", file=sys.stderr)
        return 2
    if subscribe:
        if not token:
            print("--subscribe needs the mocks' admin token: set LOCKSTEP_ADMIN_TOKEN", file=sys.stderr)
            return 2
        threading.Thread(target=subscribe_when_ready, args=(settings, subscribe.rstrip("/"), token),
                         name="lockstep-subscribe", daemon=True).start()
    print(f"lockstep core on http://{settings.host}:{settings.port}  (dashboard /ui, backend {settings.backend})",
          flush=True)
    run(settings)
    return 0


def serve_locust(args: Sequence[str]) -> int:
    """Locust in the foreground: this process becomes `python -m locust ...` (signals reach it directly)."""
    import importlib.util

    if importlib.util.find_spec("locust") is None:
        print("locust is not installed: pip install locust", file=sys.stderr)
        return 2
    argv = [sys.executable, "-m", "locust", *args]
    if "-f" not in args and "--locustfile" not in args and not os.environ.get("LOCUST_LOCUSTFILE"):
        argv[3:3] = ["-f", str(DEFAULT_LOCUSTFILE)]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return 0  # not reached
