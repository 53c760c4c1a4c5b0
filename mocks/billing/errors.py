"""Stripe's error vocabulary: domain code raises BillingError, one handler renders the envelope."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

# The four types in Stripe's published spec.
INVALID_REQUEST = "invalid_request_error"
CARD_ERROR = "card_error"
IDEMPOTENCY_ERROR = "idempotency_error"
API_ERROR = "api_error"


class BillingError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
        if self.param is not None:
            err["param"] = self.param
        if self.decline_code is not None:
            err["decline_code"] = self.decline_code
        err.update(self.extra)
        return {"error": err}


def missing(kind: str, obj_id: str, param: str = "id") -> BillingError:
    return BillingError(f"No such {kind}: '{obj_id}'", status=404, code="resource_missing", param=param)


def invalid(message: str, param: str | None = None, code: str | None = None) -> BillingError:
    return BillingError(message, status=400, param=param, code=code)


def render(error: BillingError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)
