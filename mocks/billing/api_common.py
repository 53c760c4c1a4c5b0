"""Response plumbing shared by billing's routes, error handler and kernel-rejection renderer.

Plain dicts in, bytes out: orjson when installed (much faster), the standard library otherwise. Every
response carries a `Request-Id` (`req_` + 14 base62 characters) like Stripe's.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

from starlette.responses import Response

from mocks.billing.errors import BillingError

try:  # optional speed-up; the output is the same JSON
    import orjson

    def dumps(data: Any) -> bytes:
        return orjson.dumps(data)
except ImportError:  # pragma: no cover - depends on the environment
    _encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

    def dumps(data: Any) -> bytes:
        return _encoder.encode(data).encode("utf-8")


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Request ids are diagnostics, not state: a per-process random prefix plus a counter keeps them unique
# without touching any tenant's seeded RNG.
_PREFIX = "".join(_BASE62[b % 62] for b in os.urandom(6))
_COUNTER = itertools.count(1)


def request_id() -> str:
    n = next(_COUNTER)
    digits = []
    for _ in range(8):
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    return "req_" + _PREFIX + "".join(reversed(digits))


def json_response(data: Any, status: int = 200, version: str | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    return raw_response(dumps(data), status, version, headers)


def raw_response(body: bytes, status: int = 200, version: str | None = None,
                 headers: dict[str, str] | None = None) -> Response:
    out = {"Request-Id": request_id()}
    if version is not None:
        out["Stripe-Version"] = version
    if headers:
        out.update(headers)
    return Response(body, status_code=status, media_type="application/json", headers=out)


def error_response(error: BillingError, version: str | None = None) -> Response:
    return json_response(error.body(), error.status, version, error.headers or None)
