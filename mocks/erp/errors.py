"""NetSuite's REST error vocabulary: domain code raises `ErpError`, one renderer builds the envelope.

The envelope is the one NetSuite's REST web services send (RFC 9457 problem details with Oracle
extensions)::

    {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1", "title": "Bad Request",
     "status": 400, "o:errorDetails": [{"detail": "...", "o:errorCode": "USER_ERROR",
                                        "o:errorPath": "companyName"}]}

served as `application/vnd.oracle.resource+json; type=error`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from mocks.kernel.system import KernelRejection

__all__ = [
    "ERROR_MEDIA_TYPE",
    "ErpError",
    "bad_value",
    "error_body",
    "error_response",
    "not_found",
    "render_rejection",
    "user_error",
]

ERROR_MEDIA_TYPE = "application/vnd.oracle.resource+json; type=error"

_RFC9110 = "https://www.rfc-editor.org/rfc/rfc9110.html#section-"
# status -> (type URL, title)
PROBLEMS: dict[int, tuple[str, str]] = {
    400: (_RFC9110 + "15.5.1", "Bad Request"),
    401: (_RFC9110 + "15.5.2", "Unauthorized"),
    403: (_RFC9110 + "15.5.4", "Forbidden"),
    404: (_RFC9110 + "15.5.5", "Not Found"),
    405: (_RFC9110 + "15.5.6", "Method Not Allowed"),
    409: (_RFC9110 + "15.5.10", "Conflict"),
    412: (_RFC9110 + "15.5.13", "Precondition Failed"),
    413: (_RFC9110 + "15.5.14", "Content Too Large"),
    415: (_RFC9110 + "15.5.16", "Unsupported Media Type"),
    429: ("https://www.rfc-editor.org/rfc/rfc6585.html#section-4", "Too Many Requests"),
    500: (_RFC9110 + "15.6.1", "Internal Server Error"),
    502: (_RFC9110 + "15.6.3", "Bad Gateway"),
    503: (_RFC9110 + "15.6.4", "Service Unavailable"),
    504: (_RFC9110 + "15.6.5", "Gateway Timeout"),
}

# The code NetSuite uses when nothing more specific applies, by status.
DEFAULT_CODES = {
    400: "USER_ERROR",
    401: "INVALID_LOGIN",
    403: "INSUFFICIENT_PERMISSION",
    404: "NONEXISTENT_ID",
    405: "METHOD_NOT_ALLOWED",
    412: "PRECONDITION_FAILED",
    413: "INVALID_CONTENT",
    429: "CONCURRENCY_LIMIT_EXCEEDED",
    500: "UNEXPECTED_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

INVALID_LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > "
    "Users/Roles > User Management > View Login Audit Trail."
)
CONCURRENCY_DETAIL = "Concurrent request limit exceeded. Request blocked."


class ErpError(Exception):
    """One NetSuite error: HTTP status, `o:errorCode`, detail, and where it points (field or query param)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        path: str | None = None,
        query_param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path
        self.query_param = query_param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.detail, path=self.path, query_param=self.query_param)


def error_body(status: int, code: str, detail: str, *, path: str | None = None,
               query_param: str | None = None) -> dict[str, Any]:
    type_url, title = PROBLEMS.get(status, (_RFC9110 + "15", "Error"))
    item: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path is not None:
        item["o:errorPath"] = path
    if query_param is not None:
        item["o:errorQueryParam"] = query_param
    return {"type": type_url, "title": title, "status": status, "o:errorDetails": [item]}


def error_response(error: ErpError) -> Response:
    return Response(json.dumps(error.body()), status_code=error.status, media_type=ERROR_MEDIA_TYPE,
                    headers=error.headers or None)


def user_error(detail: str, path: str | None = None) -> ErpError:
    return ErpError(400, "USER_ERROR", detail, path=path)


def bad_value(path: str, detail: str | None = None) -> ErpError:
    return ErpError(400, "INVALID_VALUE",
                    detail or f"Invalid value for the resource or sub-resource field '{path}'. "
                              "Provide a valid value.", path=path)


def not_found(record_type: str, record_id: str) -> ErpError:
    return ErpError(404, "NONEXISTENT_ID",
                    f"The record instance does not exist. Provide a valid record instance ID. "
                    f"({record_type} {record_id})", path="id")


def _rejection_error(rejection: KernelRejection) -> ErpError:
    kind, status, details = rejection.kind, rejection.status, rejection.details
    if kind == "unauthorized":
        return ErpError(401, "INVALID_LOGIN", INVALID_LOGIN_DETAIL)
    if kind == "rate_limited":
        policy = details.get("policy")
        headers = {}
        retry_after = details.get("retry_after")
        if retry_after:
            headers["Retry-After"] = str(int(retry_after) + 1)
        if policy is None or getattr(policy, "kind", None) == "concurrency":
            return ErpError(429, "CONCURRENCY_LIMIT_EXCEEDED", CONCURRENCY_DETAIL, headers=headers)
        return ErpError(429, "REQUEST_LIMIT_EXCEEDED", "Request limit exceeded. Request blocked.", headers=headers)
    if kind == "unknown_version":
        return ErpError(400, "INVALID_PARAMETER", f"Unknown NetSuite REST version: {details.get('version')!r}.")
    if kind == "too_large":
        return ErpError(413, "INVALID_CONTENT", rejection.message)
    if kind == "not_found":
        return ErpError(404, "NONEXISTENT_ID", rejection.message)
    if kind == "method_not_allowed":
        return ErpError(405, "METHOD_NOT_ALLOWED", rejection.message)
    if kind == "bad_request":
        return ErpError(400, "INVALID_CONTENT", rejection.message, path=details.get("param"))
    if kind == "internal":
        return ErpError(500, "UNEXPECTED_ERROR", "An unexpected error occurred. Error ID: " +
                        str(details.get("error", "unknown")))
    # Injected faults (and anything new): the vendor's usual code for the status.
    code = details.get("code") or DEFAULT_CODES.get(status, "UNEXPECTED_ERROR")
    detail = rejection.message
    if code == "CONCURRENCY_LIMIT_EXCEEDED" and detail.startswith("Injected fault"):
        detail = CONCURRENCY_DETAIL
    return ErpError(status, code, detail)


def render_rejection(rejection: KernelRejection) -> Response:
    return error_response(_rejection_error(rejection))
