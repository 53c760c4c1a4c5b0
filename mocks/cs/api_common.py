"""What every CS route does the same way: find the tenant, answer in Gainsight's envelope, cap batches."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.responses import Response

from mocks.cs.errors import BATCH_LIMIT, INVALID_REQUEST, CSError, envelope
from mocks.cs.schemas import MAX_BATCH, ErrorEnvelope

__all__ = ["ERRORS", "check_batch", "ctx", "ok"]

# Documented on every route: Gainsight answers all of these in its error envelope.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in ((400, "Bad request (GSOBJ_* / GS_2xxx)"), (401, "Invalid or missing access key"),
                         (404, "Record or route not found"), (405, "Method not allowed"),
                         (413, "Payload too large"), (429, "Rate limit exceeded (Retry-After)"))
}


def ctx(request: Request) -> tuple[Any, Any, str]:
    """(tenant, state, API version) of the request, as resolved by the kernel middleware."""
    tenant = request.scope["lockstep.tenant"]
    return tenant, tenant.state, request.scope["lockstep.version"]


class _Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def ok(state: Any, data: Any, status: int = 200) -> Response:
    return _Json(envelope(data, state.next_request_id()), status_code=status)


def check_batch(rows: list[Any], what: str = "records") -> None:
    if len(rows) > MAX_BATCH:
        raise CSError(BATCH_LIMIT, f"A maximum of {MAX_BATCH} {what} can be processed per API call; got "
                                   f"{len(rows)}. Use the Bulk API for larger loads.")
    if not rows:
        raise CSError(INVALID_REQUEST, f"At least one entry is required in {what}")
