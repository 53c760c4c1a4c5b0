"""Salesforce's error vocabulary: domain code raises `CrmError`, rendered in one place as the JSON array
`[{"message", "errorCode", "fields"}]` Salesforce REST answers with.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

__all__ = ["CrmError", "error_body", "error_response", "invalid_field", "not_found"]


class CrmError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}


def error_body(code: str, message: str, fields: list[str] | None = None) -> list[dict[str, Any]]:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return [item]


def error_response(status: int, code: str, message: str, fields: list[str] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(error_body(code, message, fields)).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def render(error: CrmError) -> Response:
    return error_response(error.status, error.code, error.message, error.fields, error.headers)


# ---- the common ones ------------------------------------------------------------------------------------

def not_found(message: str = "The requested resource does not exist") -> CrmError:
    return CrmError(404, "NOT_FOUND", message)


def invalid_field(obj: str, name: str) -> CrmError:
    return CrmError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj}", [name])


def json_parser_error(message: str) -> CrmError:
    return CrmError(400, "JSON_PARSER_ERROR", message)


def malformed_query(message: str) -> CrmError:
    return CrmError(400, "MALFORMED_QUERY", message)
