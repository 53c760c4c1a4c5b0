"""The dashboard the core serves at /ui: a static page (plain HTML, ES modules, CSS; no build step), a live
feed of the core's work as server-sent events, and a console for the sandbox the core runs against.

    mount_ui(app, settings)

- `/ui` the page, `/ui/static/*` its files (package data under core/ui/static).
- `/ui/api/stream` server-sent events: `trace` (every outbound call of every flow, from the trace log),
  `event` (webhooks received by intake), `flow` (a flow started or changed status), `dlq` (parked, replaying,
  resolved). Resumable: the browser's `Last-Event-ID` is the trace cursor.
- `/ui/api/sandbox/...` the mocks' /_sandbox control APIs (clock, faults, API versions, user actions), reached
  with `LOCKSTEP_CORE_SANDBOX_ADMIN_TOKEN`; without it the dashboard only observes.

Everything else the page shows comes from the core's own API (/flows, /dlq, /crosswalk, /reconcile).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from core.settings import CoreSettings
from core.ui.accounts import accounts_router
from core.ui.sandbox import sandbox_router
from core.ui.stream import stream_router

__all__ = ["STATIC_DIR", "mount_ui"]

STATIC_DIR = Path(__file__).parent / "static"


def mount_ui(app: FastAPI, settings: CoreSettings) -> None:
    @app.get("/ui", include_in_schema=False)
    async def index() -> FileResponse:
        # no-cache: a page edited on disk shows on the next reload (the files are small)
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui")

    app.include_router(stream_router(settings), prefix="/ui/api", tags=["dashboard"])
    app.include_router(accounts_router(), prefix="/ui/api", tags=["dashboard"])
    app.include_router(sandbox_router(settings), prefix="/ui/api/sandbox", tags=["dashboard"])
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
