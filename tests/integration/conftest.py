"""The integration harness: every mock + the core in this process (`lockstep.sandbox.Sandbox`).

One Sandbox for the whole `tests/integration` package (package scope: DBOS is a process-wide singleton, so it
is destroyed when the package is done and other packages may launch their own runtime afterwards).

- SQLite (default): the core's stores in a temp dir.
- PostgreSQL: `LOCKSTEP_TEST_CORE_BACKEND=postgres pytest tests/integration` runs the same suite with the core
  on PostgreSQL (LOCKSTEP_TEST_POSTGRES_URL, else postgres@ / root@127.0.0.1:5432/test), in fresh schemas
  dropped afterwards; it skips with the reason when no server answers. `pg_sandbox` is the same Sandbox when
  the suite runs on PostgreSQL, and skips otherwise (for tests that only make sense there).

Tests share the Sandbox's primary tenant set (the one the core is wired to): keep apart by unique business
data (`unique("Acme")`), and assert on the records you created. `await sandbox.tenant("name")` gives a fresh,
isolated tenant set (not wired to the core) for mock-only checks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lockstep.sandbox import Sandbox

BACKEND_ENV = "LOCKSTEP_TEST_CORE_BACKEND"
_PG_CANDIDATES = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")


def backend() -> str:
    value = os.environ.get(BACKEND_ENV, "sqlite").strip().lower() or "sqlite"
    if value in ("pg", "postgresql"):
        value = "postgres"
    if value not in ("sqlite", "postgres"):
        raise pytest.UsageError(f"{BACKEND_ENV} must be sqlite or postgres, not {value!r}")
    return value


def reachable_postgres() -> tuple[str | None, str]:
    """(url, why-not): LOCKSTEP_TEST_POSTGRES_URL if set (and only it), else the first candidate that answers."""
    explicit = os.environ.get("LOCKSTEP_TEST_POSTGRES_URL")
    errors = []
    for url in [explicit] if explicit else _PG_CANDIDATES:
        try:
            psycopg.connect(url, connect_timeout=3).close()
        except psycopg.Error as exc:
            errors.append(f"{url}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
            continue
        return url, ""
    return None, "; ".join(errors)


def core_settings(kind: str, tmp: Path) -> tuple[Any, list[str], str | None]:
    """CoreSettings for the sandbox, the PostgreSQL schemas to drop afterwards and the URL they live in."""
    from core.settings import CoreSettings

    base: dict[str, Any] = {"data_dir": tmp / "core", "dbos_log_level": "ERROR"}
    if kind == "sqlite":
        return CoreSettings(**base), [], None
    url, why = reachable_postgres()
    if url is None:
        pytest.skip(f"{BACKEND_ENV}=postgres but PostgreSQL is not reachable on 127.0.0.1:5432 ({why})")
    tag = uuid.uuid4().hex[:10]
    schemas = [f"dbos_it_{tag}", f"core_it_{tag}", f"xw_it_{tag}"]
    return CoreSettings(**base, database_url=url, dbos_schema=schemas[0], db_schema=schemas[1],
                        crosswalk_schema=schemas[2]), schemas, url


def drop_schemas(url: str | None, schemas: list[str]) -> None:
    if url is None or not schemas:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="package")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """All four mocks + the core, in-process, for the whole integration package (see the module doc)."""
    settings, schemas, url = core_settings(backend(), tmp_path_factory.mktemp("sandbox"))
    box = Sandbox.start(seed=0, core_settings=settings)
    try:
        yield box
    finally:
        box.close()
        drop_schemas(url, schemas)


@pytest.fixture
def pg_sandbox(sandbox: Sandbox) -> Sandbox:
    """The package Sandbox when it runs on PostgreSQL (LOCKSTEP_TEST_CORE_BACKEND=postgres); skips otherwise."""
    if sandbox.settings.backend != "postgresql":
        pytest.skip(f"the suite runs on SQLite; set {BACKEND_ENV}=postgres to run it on PostgreSQL")
    return sandbox


def unique(prefix: str = "it") -> str:
    """Unique business data, so tests sharing the sandbox's tenants never see each other's records."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
