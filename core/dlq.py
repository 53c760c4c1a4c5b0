"""The dead-letter queue: flows that failed for good, parked with why, and replayed once the cause is fixed.

A flow is parked when an exception escapes it (a step's retries are exhausted, or the error is not
retryable: schema drift, a business-rule refusal). The flow runner writes the entry in a DBOS step, so it
survives a crash, and the workflow then ends in DBOS status ERROR. One entry per business key: parking the
same flow again (a replay that failed too) updates it and keeps the count of attempts.

Replay = a DBOS *fork*: a new workflow `<business key>~replay-<n>` that starts at the step that failed and
reuses the recorded outputs of the steps before it (so nothing that already happened is done twice; the
idempotency keys of those writes cover the rest). The original attempt stays untouched in DBOS as the
record of what went wrong. When the fork finishes, the runner marks the entry resolved.
(Why not resume: DBOS resumes only cancelled / dead-lettered workflows, not ERROR ones, and a failed step's
error is itself a recorded output that a plain re-run would replay.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Engine, Index, Integer, MetaData, String, Table, Text, select, update

from core.crosswalk.db import UtcDateTime

__all__ = ["DeadLetter", "DeadLetters", "DlqError", "NotParkedError", "UnknownDeadLetterError", "replay_id_for"]

PARKED, REPLAYING, RESOLVED = "parked", "replaying", "resolved"
REPLAY_SEPARATOR = "~replay-"


def replay_id_for(business_key: str, attempt: int) -> str:
    return f"{business_key}{REPLAY_SEPARATOR}{attempt}"


def business_key_of(workflow_id: str) -> str:
    return workflow_id.split(REPLAY_SEPARATOR, 1)[0]


class DlqError(Exception):
    status = 400


class UnknownDeadLetterError(DlqError, KeyError):
    status = 404

    def __str__(self) -> str:
        return f"no dead letter {self.args[0]!r}"


class NotParkedError(DlqError):
    status = 409


@dataclass(frozen=True)
class DeadLetter:
    id: int
    business_key: str
    flow: str
    correlation_id: str | None
    reason: str
    error_class: str
    error_message: str
    payload: dict[str, Any]
    status: str
    attempts: int  # replays started so far
    failed_attempt_id: str  # the workflow id (original or replay) whose failure parked it
    last_replay_id: str | None
    parked_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["parked_at"], out["updated_at"] = self.parked_at.isoformat(), self.updated_at.isoformat()
        return out


def define_table(md: MetaData) -> Table:
    return Table(
        "dlq",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("business_key", String(255), nullable=False, unique=True),
        Column("flow", String(128), nullable=False),
        Column("correlation_id", String(64), nullable=True),
        Column("reason", String(255), nullable=False),
        Column("error_class", String(255), nullable=False),
        Column("error_message", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("status", String(16), nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("failed_attempt_id", String(255), nullable=False),
        Column("last_replay_id", String(255), nullable=True),
        Column("parked_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Index("dlq_status", "status"),
    )


def reason_for(exc: BaseException) -> str:
    """A short, stable classification; an exception may carry its own (`dlq_reason = "schema drift"`)."""
    own = getattr(exc, "dlq_reason", None)
    if isinstance(own, str) and own:
        return own
    if type(exc).__name__ == "DBOSMaxStepRetriesExceeded":
        return "step retries exhausted"
    return "non-retryable error"


def error_parts(exc: BaseException) -> tuple[str, str]:
    """(error class, message). Exhausted retries name the step's last error, which is the useful one."""
    underlying = getattr(exc, "errors", None)
    if type(exc).__name__ == "DBOSMaxStepRetriesExceeded" and underlying:
        last = underlying[-1]
        cls = type(last)
        return f"{cls.__module__}.{cls.__qualname__}", f"{exc}; last error: {last}"[:4000]
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}", str(exc)[:4000]


class DeadLetters:
    def __init__(self, engine: Engine, table: Table, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._t = table
        self._clock = clock or (lambda: datetime.now(UTC))

    def park(self, *, business_key: str, flow: str, attempt_id: str, correlation_id: str | None,
             exc: BaseException, payload: dict[str, Any]) -> DeadLetter:
        """Park (or re-park) the flow of `business_key` after attempt `attempt_id` failed with `exc`."""
        error_class, message = error_parts(exc)
        now = self._clock()
        values = {"flow": flow, "correlation_id": correlation_id, "reason": reason_for(exc)[:255],
                  "error_class": error_class[:255], "error_message": message, "status": PARKED,
                  "failed_attempt_id": attempt_id, "updated_at": now}
        with self._engine.begin() as conn:
            found = conn.execute(update(self._t).where(self._t.c.business_key == business_key).values(**values))
            if found.rowcount == 0:
                body = json.dumps(payload, default=str)
                conn.execute(self._t.insert().values(business_key=business_key, payload=body, attempts=0,
                                                     parked_at=now, **values))
        return self.by_key(business_key)

    def begin_replay(self, dlq_id: int) -> tuple[DeadLetter, str]:
        """Claim a parked entry for replay: (entry before the claim, the new attempt's workflow id).
        Only one caller wins a claim (compare-and-set on status + attempts)."""
        entry = self.get(dlq_id)
        if entry.status != PARKED:
            raise NotParkedError(f"dead letter {dlq_id} is {entry.status}, not parked: nothing to replay")
        new_id = replay_id_for(entry.business_key, entry.attempts + 1)
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(self._t)
                .where(self._t.c.id == dlq_id, self._t.c.status == PARKED, self._t.c.attempts == entry.attempts)
                .values(status=REPLAYING, attempts=entry.attempts + 1, last_replay_id=new_id,
                        updated_at=self._clock())
            )
        if claimed.rowcount != 1:
            raise NotParkedError(f"dead letter {dlq_id} is being replayed by another request")
        return entry, new_id

    def abandon_replay(self, dlq_id: int, attempts: int) -> None:
        """Undo a claim whose fork could not be started (the entry goes back to parked)."""
        with self._engine.begin() as conn:
            conn.execute(update(self._t).where(self._t.c.id == dlq_id)
                         .values(status=PARKED, attempts=attempts, updated_at=self._clock()))

    def resolve(self, business_key: str, attempt_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(self._t).where(self._t.c.business_key == business_key)
                         .values(status=RESOLVED, last_replay_id=attempt_id, updated_at=self._clock()))

    def get(self, dlq_id: int) -> DeadLetter:
        return self._one(self._t.c.id == dlq_id, dlq_id)

    def by_key(self, business_key: str) -> DeadLetter:
        return self._one(self._t.c.business_key == business_key, business_key)

    def find(self, business_key: str) -> DeadLetter | None:
        try:
            return self.by_key(business_key)
        except UnknownDeadLetterError:
            return None

    def list(self, *, status: str | None = None, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        query = select(self._t).order_by(self._t.c.id).limit(limit).offset(offset)
        if status is not None:
            query = query.where(self._t.c.status == status)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    def _one(self, where: Any, key: object) -> DeadLetter:
        with self._engine.connect() as conn:
            row = conn.execute(select(self._t).where(where)).mappings().first()
        if row is None:
            raise UnknownDeadLetterError(key)
        return _row(row)


def _row(row: Any) -> DeadLetter:
    data = dict(row)
    data["payload"] = json.loads(data["payload"])
    return DeadLetter(**data)


# -- replay -----------------------------------------------------------------------------------------------

PARK_STEP = "lockstep.park"


def restart_step(workflow_id: str) -> int:
    """Where a replay of the failed attempt `workflow_id` starts: the last step that failed before the flow
    was parked (steps before it keep their recorded outputs). If no step failed (the flow's own code raised),
    the park step: every step the flow ran is reused and its code runs again from there."""
    from dbos import DBOS

    steps = DBOS.list_workflow_steps(workflow_id)
    park = [s["function_id"] for s in steps if s["function_name"] == PARK_STEP]
    limit = park[0] if park else None
    failed = [s["function_id"] for s in steps if s["error"] is not None and s["function_name"] != PARK_STEP
              and (limit is None or s["function_id"] < limit)]
    if failed:
        return max(failed)
    if limit is not None:
        return limit
    return max((s["function_id"] for s in steps), default=0) + 1


def replay(letters: DeadLetters, dlq_id: int, *, queue_name: str, app_version: str | None) -> tuple[DeadLetter, str]:
    """Fork the failed attempt of a parked flow as `<business key>~replay-<n>` (see the module doc).
    Returns the entry (now `replaying`) and the new attempt's workflow id; the runner resolves the entry
    when that attempt succeeds, or parks it again."""
    from dbos import DBOS, SetWorkflowID

    entry, new_id = letters.begin_replay(dlq_id)
    try:
        start = restart_step(entry.failed_attempt_id)
        with SetWorkflowID(new_id):
            DBOS.fork_workflow(entry.failed_attempt_id, start, application_version=app_version, queue_name=queue_name)
    except BaseException:
        letters.abandon_replay(dlq_id, entry.attempts)
        raise
    return letters.get(dlq_id), new_id
