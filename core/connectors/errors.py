"""The connectors' typed error tree. Flows decide on these types, never on status codes or vendor bodies.

    ConnectorError
    ├── VendorError(system, status, code, message, retryable)   the vendor answered with an error
    │   ├── RateLimitedError   429s, Salesforce's spent daily quota (retry_after when the vendor said)
    │   ├── NotFoundError      the record does not exist
    │   └── ConflictError      a uniqueness / state conflict (duplicate external id, 300 multiple matches ...)
    └── SchemaDriftError(system, object, field, detail)        the vendor's shape or version is not the pinned one

`retryable` tells the caller whether the same call may succeed later unchanged (after the connector's own
retries gave up). A `SchemaDriftError` is never retryable: the flow is parked until a person re-pins the
connector or fixes the mapping; wrong data is never returned instead.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "ConnectorError",
    "NotFoundError",
    "RateLimitedError",
    "SchemaDriftError",
    "VendorError",
]


class ConnectorError(Exception):
    """Base of everything a connector raises on purpose."""

    system: str
    retryable: bool = False


class VendorError(ConnectorError):
    """The vendor answered with an error (or could not be reached: status 0)."""

    def __init__(
        self,
        system: str,
        status: int,
        code: str | None,
        message: str,
        *,
        retryable: bool = False,
        field: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(f"{system} {status} {code or '-'}: {message}")
        self.system = system
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        # The field the vendor blamed, when it named one (Stripe `param`, NetSuite `o:errorPath` ...).
        self.field = field
        # How many attempts the connector made before giving up.
        self.attempts = attempts


class RateLimitedError(VendorError):
    """Too many requests: a 429, NetSuite's concurrency governance, or Salesforce's spent daily quota."""

    def __init__(self, system: str, status: int, code: str | None, message: str, *,
                 retry_after: float | None = None, attempts: int = 1) -> None:
        super().__init__(system, status, code, message, retryable=True, attempts=attempts)
        self.retry_after = retry_after


class NotFoundError(VendorError):
    def __init__(self, system: str, status: int, code: str | None, message: str, *, attempts: int = 1) -> None:
        super().__init__(system, status, code, message, retryable=False, attempts=attempts)


class ConflictError(VendorError):
    def __init__(self, system: str, status: int, code: str | None, message: str, *, field: str | None = None,
                 attempts: int = 1) -> None:
        super().__init__(system, status, code, message, retryable=False, field=field, attempts=attempts)


class SchemaDriftError(ConnectorError):
    """A response lacks, renames or retypes a field the pinned mapping expects, or the vendor speaks another
    API version than the pinned one (or does not know the pinned one)."""

    retryable = False

    def __init__(self, system: str, object: str, field: str | None, detail: str, *,
                 pinned: str | None = None, served: str | None = None) -> None:
        where = f"{object}.{field}" if field else object
        super().__init__(f"schema drift in {system} {where}: {detail}")
        self.system = system
        self.object = object
        self.field = field
        self.detail = detail
        # The version the connector pinned and the one the vendor answered with, when known.
        self.pinned = pinned
        self.served = served
