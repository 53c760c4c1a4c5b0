"""The core's own HTTP API: health, flows, traces, DLQ + replay, crosswalk, reconcile, webhooks.

`create_core_app(settings)` builds the app; nothing happens at import time. Without a `runtime` argument
the app launches its own Runtime (DBOS included) on startup and destroys it on shutdown; tests pass one
they launched themselves. Every error is `{"error": {"code", "message", ...}}` with a 4xx status; a 500
means a bug in the core, never bad input.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from core import dlq as dlq_mod
from core.crosswalk import UnknownCanonicalIdError
from core.intake.receivers import RuntimeDep, error
from core.intake.receivers import fast_route as fast_webhook_route
from core.intake.receivers import router as webhook_router
from core.intake.router import WORKFLOW_PREFIX, flow_specs
from core.model.ids import ENTITY_BY_PREFIX
from core.reconcile import ReconcileRequest
from core.reconcile import run as reconcile_run
from core.runtime import Runtime
from core.settings import CoreSettings
from core.trace import correlation_id_for
from core.ui import mount_ui

SystemName = Literal["crm", "erp", "billing", "cs"]

__all__ = ["create_core_app"]

FlowStatus = Literal["ENQUEUED", "PENDING", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"]
# Row ids are SQL BIGINT / SQLite INTEGER: a larger id is a 422, not an OverflowError (found by `make fuzz`).
MAX_ROW_ID = 2**63 - 1
_CANONICAL_ID = re.compile(r"^([a-z]{3})_[0-9A-HJKMNP-TV-Z]{26}$")
_TAGS = [
    {"name": "health", "description": "liveness and what the runtime runs on"},
    {"name": "flows", "description": "durable flows (DBOS workflows); the workflow id is the business key"},
    {"name": "trace", "description": "ordered steps of one business transaction across systems"},
    {"name": "dlq", "description": "parked flows and their replay"},
    {"name": "crosswalk", "description": "canonical id <-> native ids"},
    {"name": "reconcile", "description": "cross-system findings per account: missing, orphan, conflict"},
    {"name": "webhooks", "description": "signed webhooks from the systems of record"},
    {"name": "dashboard", "description": "the live dashboard at /ui: its event stream and sandbox console"},
]


class CrosswalkLinks(BaseModel):
    """Body of `POST /crosswalk/links`: one canonical record and its native ids, {system: native id}."""

    model_config = ConfigDict(extra="forbid")
    entity: str = Field(min_length=1, max_length=32, description="account, subscription, invoice, ...")
    refs: dict[str, str] = Field(min_length=1, max_length=8, description="system -> native id; the first is "
                                 "looked up (or minted), the others linked to it")


def create_core_app(settings: CoreSettings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime is not None else CoreSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        # DBOS refuses its blocking calls on a running event loop: launch / destroy on a worker thread.
        app.state.runtime = await asyncio.to_thread(Runtime(settings).launch) if owned else runtime
        try:
            yield
        finally:
            if owned:
                await asyncio.to_thread(app.state.runtime.destroy)

    app = FastAPI(title="Lockstep integration core", version="0.1.0", lifespan=lifespan, openapi_tags=_TAGS,
                  description="Keeps CRM, ERP, billing and CS in lockstep. " + (__doc__ or "").split("\n")[0])
    if runtime is not None:
        app.state.runtime = runtime  # usable without running the lifespan (plain ASGITransport)
    _install_error_handlers(app)
    app.include_router(webhook_router)
    app.router.routes.insert(0, fast_webhook_route)  # same handler, without FastAPI's per-request work
    _routes(app)
    mount_ui(app, settings)  # the dashboard at /ui (core/ui)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        return error(422, "invalid_request", "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['message']}"
                                                       for d in details), details=details)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(dlq_mod.DlqError)
    async def _dlq(_request: Request, exc: dlq_mod.DlqError) -> JSONResponse:
        return error(exc.status, {404: "dlq_not_found", 409: "dlq_not_parked"}.get(exc.status, "dlq_error"), str(exc))

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> JSONResponse:
        # Not bad input (that is a 4xx above): a fault in the core or its store. JSON all the same, and a 5xx,
        # so a webhook sender retries (the inbox makes the retry safe).
        return error(500, "internal_error", f"{type(exc).__name__}: the core failed; the request may be retried")

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))


# -- views -------------------------------------------------------------------------------------------------


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def flow_summary(status: Any) -> dict[str, Any]:
    business_key = dlq_mod.business_key_of(status.workflow_id)
    return {
        "workflow_id": status.workflow_id,
        "business_key": business_key,
        "flow": status.name.removeprefix(WORKFLOW_PREFIX),
        "status": status.status,
        "attempt": "original" if business_key == status.workflow_id else status.workflow_id[len(business_key) + 1:],
        "forked_from": getattr(status, "forked_from", None),
        "correlation_id": correlation_id_for(business_key),
        "created_at": _iso(status.created_at),
        "updated_at": _iso(status.updated_at),
        "error": None if status.error is None else f"{type(status.error).__name__}: {status.error}",
    }


def _step_view(step: Any) -> dict[str, Any]:
    err = step["error"]
    return {"step": step["function_id"], "name": step["function_name"], "status": "error" if err else "ok",
            "error": None if err is None else f"{type(err).__name__}: {err}",
            "started_at": _iso(step["started_at_epoch_ms"]), "completed_at": _iso(step["completed_at_epoch_ms"])}


def _is_attempt_of(workflow_id: str, business_key: str) -> bool:
    return workflow_id == business_key or workflow_id.startswith(business_key + dlq_mod.REPLAY_SEPARATOR)


def _routes(app: FastAPI) -> None:
    from dbos import DBOS

    @app.get("/health", tags=["health"], summary="Liveness, backend and registered flows")
    def health(runtime: RuntimeDep) -> dict[str, Any]:
        return {"status": "ok" if runtime.launched else "starting", "backend": runtime.settings.backend,
                "flows": {name: list(spec.triggers) for name, spec in sorted(flow_specs().items())},
                "inbox": runtime.inbox.counts(),
                # Which process answered (several core workers share the port: core/workers.py).
                "worker": {"index": runtime.settings.worker_index or 0, "of": runtime.settings.workers,
                           "pid": os.getpid(), "executor_id": runtime.settings.worker_executor_id or "local"}}

    @app.get("/flows", tags=["flows"], summary="List flows, newest first, by status and / or business key",
             responses={404: {"description": "no flow registered under that name"}})
    def list_flows(
        runtime: RuntimeDep,
        status: Annotated[FlowStatus | None, Query(description="DBOS workflow status")] = None,
        business_key: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
        flow: Annotated[str | None, Query(min_length=1, max_length=128, description="registered flow name")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    ) -> dict[str, Any]:
        specs = flow_specs()
        if flow is not None and flow not in specs:
            return error(404, "unknown_flow", f"no flow {flow!r}; registered: {', '.join(sorted(specs)) or 'none'}")
        names = [WORKFLOW_PREFIX + (flow or n) for n in ([flow] if flow else sorted(specs))]
        if not names:
            return {"flows": [], "count": 0}
        found = DBOS.list_workflows(name=names, status=status, workflow_id_prefix=business_key, limit=limit,
                                    offset=offset, sort_desc=True, load_input=False, load_output=False)
        rows = [flow_summary(s) for s in found if business_key is None or _is_attempt_of(s.workflow_id, business_key)]
        return {"flows": rows, "count": len(rows)}

    @app.get("/flows/{flow_id:path}", tags=["flows"], summary="One flow: status, DBOS steps, trace, DLQ entry",
             responses={404: {"description": "no such flow"}})
    def get_flow(runtime: RuntimeDep, flow_id: Annotated[str, PathParam(max_length=300)]) -> dict[str, Any]:
        status = DBOS.get_workflow_status(flow_id)
        if status is None or not status.name.startswith(WORKFLOW_PREFIX):
            return error(404, "flow_not_found", f"no flow with id {flow_id!r}")
        business_key = dlq_mod.business_key_of(flow_id)
        attempts = DBOS.list_workflows(workflow_id_prefix=business_key, load_input=False, load_output=False)
        letter = runtime.dlq.find(business_key)
        return {
            **flow_summary(status),
            "steps": [_step_view(s) for s in DBOS.list_workflow_steps(flow_id)],
            "trace": [t.to_dict() for t in runtime.trace.for_flow(flow_id)],
            "attempts": [flow_summary(a) for a in attempts if _is_attempt_of(a.workflow_id, business_key)],
            "dlq": None if letter is None else letter.to_dict(),
        }

    @app.get("/events", tags=["intake"], summary="Received events, newest first: status and the flows they went to")
    def list_events(
        runtime: RuntimeDep,
        system: Annotated[SystemName | None, Query()] = None,
        status: Annotated[Literal["received", "routed", "ignored", "stale"] | None, Query()] = None,
        event_type: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    ) -> dict[str, Any]:
        rows = runtime.inbox.list(system=system, status=status, event_type=event_type, limit=limit, offset=offset)
        return {"events": [e.to_dict() for e in rows], "count": len(rows)}

    @app.get("/events/{system}/{event_id}", tags=["intake"], summary="One received event (without its payload)",
             responses={404: {"description": "no such event was received"}})
    def get_event(runtime: RuntimeDep, system: SystemName,
                  event_id: Annotated[str, PathParam(min_length=1, max_length=255)]) -> dict[str, Any]:
        entry = runtime.inbox.get(system, event_id)
        if entry is None:
            return error(404, "event_not_found", f"no {system} event {event_id!r} was received")
        return entry.to_dict()

    @app.get("/trace/{correlation_id}", tags=["trace"], summary="Ordered steps of one business transaction",
             responses={404: {"description": "no steps for that correlation id"}})
    def get_trace(runtime: RuntimeDep, correlation_id: Annotated[str, PathParam(min_length=1, max_length=64)]
                  ) -> dict[str, Any]:
        steps = runtime.trace.for_correlation(correlation_id)
        if not steps:
            return error(404, "trace_not_found", f"no trace steps for correlation id {correlation_id!r}")
        return {"correlation_id": correlation_id, "steps": [s.to_dict() for s in steps],
                "systems": sorted({s.system for s in steps})}

    @app.get("/dlq", tags=["dlq"], summary="Parked flows (reason, error class and message, payload)")
    def list_dlq(
        runtime: RuntimeDep,
        status: Annotated[Literal["parked", "replaying", "resolved"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    ) -> dict[str, Any]:
        entries = runtime.dlq.list(status=status, limit=limit, offset=offset)
        return {"entries": [e.to_dict() for e in entries], "count": len(entries)}

    @app.get("/dlq/{dlq_id}", tags=["dlq"], summary="One parked flow",
             responses={404: {"description": "no such entry"}})
    def get_dlq(runtime: RuntimeDep, dlq_id: Annotated[int, PathParam(ge=1, le=MAX_ROW_ID)]) -> dict[str, Any]:
        return runtime.dlq.get(dlq_id).to_dict()

    @app.post("/dlq/{dlq_id}/replay", tags=["dlq"], status_code=202,
              summary="Replay a parked flow from the step that failed (a DBOS fork: new attempt id)",
              responses={404: {"description": "no such entry"}, 409: {"description": "not parked"}})
    def replay_dlq(runtime: RuntimeDep, dlq_id: Annotated[int, PathParam(ge=1, le=MAX_ROW_ID)]) -> dict[str, Any]:
        entry, attempt_id = dlq_mod.replay(runtime.dlq, dlq_id, queue_name=runtime.settings.flow_queue,
                                           app_version=runtime.settings.app_version)
        return {"entry": entry.to_dict(), "attempt_id": attempt_id}

    @app.get("/crosswalk/{canonical_id}", tags=["crosswalk"], summary="Native ids, aliases and merge history",
             responses={400: {"description": "not a canonical id"}, 404: {"description": "unknown canonical id"}})
    def get_crosswalk(runtime: RuntimeDep, canonical_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        match = _CANONICAL_ID.match(canonical_id)
        if match is None or match.group(1) not in ENTITY_BY_PREFIX:
            return error(400, "invalid_canonical_id",
                         f"{canonical_id!r} is not a canonical id (<prefix>_<26 Crockford base32>; prefixes: "
                         f"{', '.join(sorted(ENTITY_BY_PREFIX))})")
        xw = runtime.crosswalk
        try:
            survivor = xw.resolve(canonical_id)
            return {
                "id": canonical_id, "resolved": survivor, "entity": xw.entity(canonical_id),
                "refs": xw.refs(canonical_id),
                "aliases": [asdict(a) for a in xw.aliases(canonical_id)],
                "history": [asdict(h) for h in xw.history(canonical_id)],
            }
        except UnknownCanonicalIdError:
            return error(404, "canonical_id_not_found", f"no canonical id {canonical_id!r} in the crosswalk")

    @app.post("/crosswalk/links", tags=["crosswalk"], status_code=200,
              summary="Link native records that already exist (onboarding an estate, scenario set-up)",
              responses={400: {"description": "unknown entity / system, bad id"},
                         409: {"description": "a native id already belongs to another canonical id"}})
    def link_crosswalk(runtime: RuntimeDep, body: CrosswalkLinks) -> Any:
        from core.crosswalk import LinkConflictError

        xw = runtime.crosswalk
        try:
            (first_system, first_id), *rest = body.refs.items()
            canonical = xw.get_or_create(body.entity, first_system, first_id)
            for system, native_id in rest:
                canonical = xw.link(canonical, system, native_id)
            return {"id": canonical, "entity": body.entity, "refs": xw.refs(canonical)}
        except LinkConflictError as exc:
            return error(409, "link_conflict", str(exc))
        except ValueError as exc:
            return error(400, "invalid_link", str(exc))

    async def _reconcile(runtime: Runtime, accounts: list[str] | None, limit: int | None,
                         orphans: bool) -> dict[str, Any] | JSONResponse:
        from core import wiring

        for account in accounts or []:
            match = _CANONICAL_ID.match(account)
            if match is None or ENTITY_BY_PREFIX.get(match.group(1)) != "account":
                return error(400, "invalid_canonical_id", f"{account!r} is not a canonical account id "
                             "(acc_<26 Crockford base32>)")
        try:
            # Not the flows' connections: those belong to DBOS's event loop, this runs on the server's.
            connections = wiring.connections_for_this_loop()
        except RuntimeError as exc:
            return error(503, "no_connections", str(exc))
        try:
            report = await reconcile_run(runtime.crosswalk, connections, accounts=accounts, limit=limit,
                                         orphans=orphans)
        except UnknownCanonicalIdError as exc:
            return error(404, "canonical_id_not_found", str(exc).strip("'\""))
        return report.model_dump(mode="json")

    _reconcile_doc = ("Compares what CRM, ERP, billing and CS say about each canonical account: findings classed "
                      "missing / orphan / conflict with the owning system (core/ownership.yaml), plus read errors "
                      "and summary counts. Orphans come from scanning each system's account list.")

    @app.get("/reconcile", tags=["reconcile"], summary="Reconcile accounts across the systems of record",
             description=_reconcile_doc,
             responses={400: {"description": "not an account id"}, 404: {"description": "unknown account id"},
                        503: {"description": "no connections to the systems installed"}})
    async def reconcile(
        runtime: RuntimeDep,
        account: Annotated[list[str] | None, Query(max_length=500, description="canonical account id(s)")] = None,
        limit: Annotated[int | None, Query(ge=1, le=100_000, description="compare the first N accounts")] = None,
        orphans: Annotated[bool, Query(description="scan each system for unlinked records")] = True,
    ) -> Any:
        return await _reconcile(runtime, account, limit, orphans)

    @app.post("/reconcile", tags=["reconcile"], summary="Reconcile a (large) selection of accounts",
              description=_reconcile_doc,
              responses={400: {"description": "not an account id"}, 404: {"description": "unknown account id"},
                         503: {"description": "no connections to the systems installed"}})
    async def reconcile_selection(runtime: RuntimeDep, body: ReconcileRequest) -> Any:
        return await _reconcile(runtime, body.accounts, body.limit, body.orphans)
