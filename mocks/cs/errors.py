"""Gainsight's error vocabulary: domain code raises `CSError`, one renderer writes the envelope.

Every response, success or failure, wears Gainsight's envelope:

    {"result": false, "errorCode": "GSOBJ_1002", "errorDesc": "...", "requestId": "...", "data": null,
     "message": null}

Field-level codes (`GSOBJ_*`) follow Gainsight's published list for the Company / Custom Object APIs;
the request-level codes (`GS_*`) are this sandbox's own, since Gainsight does not publish them.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mocks.kernel.system import KernelRejection

__all__ = [
    "BATCH_LIMIT", "DUPLICATE", "FAULT", "INTERNAL", "INVALID_DATE", "INVALID_FIELD", "INVALID_GSID",
    "INVALID_REQUEST", "INVALID_STATE", "INVALID_VALUE", "METHOD_NOT_ALLOWED", "NOT_FOUND", "RATE_LIMITED",
    "REQUIRED", "TOO_LARGE", "UNAUTHORIZED", "UNKNOWN_ROUTE", "UNKNOWN_VERSION", "CSError", "envelope",
    "error_body", "handle_cs_error", "render_rejection",
]

# Field-level, as in Gainsight's "Error Codes for Company, Relationship, and Custom Object APIs".
INVALID_FIELD = "GSOBJ_1002"  # unknown field, or a value of the wrong type
INVALID_GSID = "GSOBJ_1004"  # the Gainsight id is invalid or missing
INVALID_DATE = "GSOBJ_1006"  # a date that does not parse
REQUIRED = "GSOBJ_1007"  # a required field is missing or null
INVALID_VALUE = "GSOBJ_1008"  # generic validation (range, picklist value)
DUPLICATE = "GSOBJ_1009"  # a unique field (ExternalId, Email) already taken
# Request-level (sandbox vocabulary, documented in the README).
UNAUTHORIZED = "GS_1101"
INVALID_REQUEST = "GS_2001"
UNKNOWN_VERSION = "GS_2002"
BATCH_LIMIT = "GS_2003"
TOO_LARGE = "GS_2004"
INVALID_STATE = "GS_2010"  # a lifecycle rule refused the change (closing a closed CTA ...)
NOT_FOUND = "GS_3004"
UNKNOWN_ROUTE = "GS_3001"
METHOD_NOT_ALLOWED = "GS_3002"
RATE_LIMITED = "GS_4029"
INTERNAL = "GS_5000"
FAULT = "GS_5003"


class CSError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, *, headers: dict[str, str] | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}
        self.field = field


def envelope(data: Any, request_id: str) -> dict[str, Any]:
    return {"result": True, "errorCode": None, "errorDesc": None, "requestId": request_id, "data": data,
            "message": None}


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    return {"result": False, "errorCode": code, "errorDesc": message, "requestId": request_id or str(uuid.uuid4()),
            "data": None, "message": None}


def _request_id(request: Request | None) -> str | None:
    if request is None:
        return None
    tenant = request.scope.get("lockstep.tenant")
    return tenant.state.next_request_id() if tenant is not None else None


async def handle_cs_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CSError)
    return JSONResponse(error_body(exc.code, exc.message, _request_id(request)), status_code=exc.status,
                        headers=exc.headers)


_KIND_CODES = {
    "unauthorized": UNAUTHORIZED,
    "rate_limited": RATE_LIMITED,
    "unknown_version": UNKNOWN_VERSION,
    "too_large": TOO_LARGE,
    "bad_request": INVALID_FIELD,
    "not_found": UNKNOWN_ROUTE,
    "method_not_allowed": METHOD_NOT_ALLOWED,
    "internal": INTERNAL,
}


def render_rejection(rejection: KernelRejection) -> Response:
    details = rejection.details
    headers: dict[str, str] = {}
    code = _KIND_CODES.get(rejection.kind, INTERNAL)
    message = rejection.message
    if rejection.kind == "unauthorized":
        message = "Invalid or missing access key. Send your Gainsight access key in the 'accesskey' header."
    elif rejection.kind == "rate_limited":
        retry = details.get("retry_after")
        headers["Retry-After"] = str(max(1, int(retry + 0.999))) if retry else "60"
        message = f"API rate limit exceeded. {message} Retry after {headers['Retry-After']} seconds."
    elif rejection.kind == "fault":
        code = details.get("code") or FAULT
        if rejection.status == 429:
            headers["Retry-After"] = "1"
    elif rejection.kind == "bad_request" and details.get("param"):
        message = f"Invalid field, please re-check data mapping ({message})"
    tenant = details.get("tenant")
    request_id = tenant.state.next_request_id() if tenant is not None else None
    return JSONResponse(error_body(code, message, request_id), status_code=rejection.status, headers=headers)
