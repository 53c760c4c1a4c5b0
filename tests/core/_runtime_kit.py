"""Shared pieces of the runtime / intake / API tests (no tests here): runtimes on SQLite and PostgreSQL,
signed webhook bodies, and waiting for a flow.

DBOS is one per process, so each test module launches one runtime (module-scoped fixture), and tests keep
apart by unique business keys. PostgreSQL runtimes live in fresh schemas (DBOS, core, crosswalk), dropped
afterwards; they skip, with the reason, when no server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dbos import DBOS

from core.intake.envelopes import IntakeEvent, parse_event
from core.intake.signatures import sign
from core.runtime import Runtime
from core.settings import CoreSettings
from tests.core.conftest import _reachable_pg

SECRETS = {"crm": "whsec_test_crm", "erp": "whsec_test_erp", "billing": "whsec_test_billing", "cs": "whsec_test_cs"}
TERMINAL = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


def settings_for(backend: str, tmp: Path, **overrides: Any) -> tuple[CoreSettings, list[str]]:
    """Settings for a throwaway runtime, and the PostgreSQL schemas to drop afterwards."""
    base: dict[str, Any] = {f"{s}_webhook_secret": v for s, v in SECRETS.items()}
    base.update(data_dir=tmp, dbos_log_level="CRITICAL", queue_polling_interval_s=0.01)
    schemas: list[str] = []
    if backend == "postgres":
        url, why = _reachable_pg()
        if url is None:
            pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 ({why})")
        tag = uuid.uuid4().hex[:10]
        schemas = [f"dbos_t_{tag}", f"core_t_{tag}", f"xw_t_{tag}"]
        base.update(database_url=url, dbos_schema=schemas[0], db_schema=schemas[1], crosswalk_schema=schemas[2])
    base.update(overrides)
    return CoreSettings(**base), schemas


def drop_schemas(schemas: list[str]) -> None:
    url, _ = _reachable_pg()
    if not schemas or url is None:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def launched_runtime(backend: str, tmp: Path, **overrides: Any) -> Iterator[Runtime]:
    settings, schemas = settings_for(backend, tmp, **overrides)
    runtime = Runtime(settings).launch()
    try:
        yield runtime
    finally:
        runtime.destroy()
        drop_schemas(schemas)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def billing_body(event_type: str, obj_id: str, *, created: int, event_id: str | None = None,
                 obj: dict[str, Any] | None = None) -> bytes:
    """A Stripe-shaped event body."""
    kind = {"in": "invoice", "sub": "subscription", "cus": "customer"}.get(obj_id.split("_", 1)[0], "object")
    return json.dumps({
        "id": event_id or unique("evt"), "object": "event", "api_version": "2023-08-16", "created": created,
        "type": event_type, "livemode": False, "pending_webhooks": 1,
        "data": {"object": {"id": obj_id, "object": kind, **(obj or {})}},
    }).encode()


def billing_event(event_type: str, obj_id: str, *, created: int = 1_700_000_000, **kw: Any) -> IntakeEvent:
    return parse_event("billing", billing_body(event_type, obj_id, created=created, **kw))


def signed_headers(system: str, body: bytes, *, at: float | None = None, secret: str | None = None) -> dict[str, str]:
    ts = int(time.time() if at is None else at)
    return {"Content-Type": "application/json", **sign(system, body, secret or SECRETS[system], ts)}


def wait_for(workflow_id: str, *, timeout: float = 15.0, statuses: tuple[str, ...] = TERMINAL) -> Any:
    """Poll DBOS until the workflow reaches one of `statuses`; returns its status (fails on timeout)."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = DBOS.get_workflow_status(workflow_id)
        if status is not None and status.status in statuses:
            return status
        time.sleep(0.01)
    pytest.fail(f"workflow {workflow_id} did not reach {statuses} in {timeout} s (last: "
                f"{status.status if status else 'absent'})")


async def wait_async(workflow_id: str, **kw: Any) -> Any:
    """`wait_for` from async tests (DBOS refuses its blocking calls on a running event loop)."""
    return await asyncio.to_thread(wait_for, workflow_id, **kw)


async def dbos_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A blocking DBOS call from an async test, on a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)
