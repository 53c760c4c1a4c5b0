"""HTTP receivers: POST /webhooks/{system}. Thin: read the raw body, call the intake service, render."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from core.intake.envelopes import EnvelopeError
from core.intake.service import process, verify_and_parse
from core.intake.signatures import SIGNATURE_HEADERS, SignatureError
from core.runtime import Runtime
from core.settings import SYSTEM_NAMES

__all__ = ["fast_route", "get_runtime", "handle_webhook", "router"]


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
router = APIRouter(tags=["webhooks"])


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


_ERROR_SCHEMA = {"description": "error", "content": {"application/json": {"example": {
    "error": {"code": "signature_mismatch", "message": "..."}}}}}


@router.post(
    "/webhooks/{system}",
    summary="Receive a signed webhook from a system of record",
    description=(
        "Verifies the vendor signature over the raw body (" + ", ".join(f"{k}: `{v}`" for k, v in
                                                                          SIGNATURE_HEADERS.items())
        + "; `t=<unix>,v1=<hex HMAC-SHA256>` with a 300 s tolerance), records the event in the inbox "
        "(a duplicate event id is acknowledged and dropped), ignores stale versions of an aggregate, and "
        "starts the flows it triggers, keyed by business key. 200 for every accepted delivery, whatever "
        "became of it (`status`: accepted / duplicate / stale / ignored)."
    ),
    responses={400: _ERROR_SCHEMA, 401: _ERROR_SCHEMA, 404: _ERROR_SCHEMA, 413: _ERROR_SCHEMA},
)
async def receive_webhook(
    request: Request,
    system: Annotated[str, Path(description="one of " + ", ".join(SYSTEM_NAMES))],
) -> Response:
    return await handle_webhook(request)


async def handle_webhook(request: Request) -> Response:
    """The receiver itself. Served by a plain Starlette route in front of the documented FastAPI one: every
    webhook goes through here, and FastAPI's per-request dependency solving cost more than the handler."""
    runtime: Runtime = request.app.state.runtime
    system = request.path_params["system"]
    if system not in SYSTEM_NAMES:
        return error(404, "unknown_system", f"no webhook receiver for {system!r}; systems: {', '.join(SYSTEM_NAMES)}")
    limit = runtime.settings.max_webhook_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return error(413, "body_too_large", f"webhook bodies are limited to {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        return error(413, "body_too_large", f"webhook bodies are limited to {limit} bytes")
    peer = request.client.host if request.client else None
    try:
        event = verify_and_parse(runtime, system, request.headers, body, peer=peer)
    except SignatureError as exc:
        return error(exc.status, f"signature_{exc.reason}", str(exc))
    except EnvelopeError as exc:
        return error(400, "malformed_event", str(exc))
    if runtime.intake is None:  # not launched through launch() (a bare runtime in a test): inline
        result = await run_in_threadpool(process, runtime, event)
    else:
        result = await runtime.intake.submit(event)
    return JSONResponse(result.to_dict(), status_code=200)


# Mounted first by the core app (see the handler's doc); the APIRoute above is what OpenAPI documents.
fast_route = Route("/webhooks/{system}", handle_webhook, methods=["POST"])
