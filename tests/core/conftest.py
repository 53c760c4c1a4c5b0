"""Fixtures for core tests: crosswalks on a SQLite file and on the real PostgreSQL server (never mocked).

PostgreSQL: LOCKSTEP_TEST_POSTGRES_URL, else postgres@ or root@127.0.0.1:5432/test. Each test gets its own
schema (created by the crosswalk, dropped afterwards); tests skip with the reason when no server answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from core.crosswalk import Crosswalk

_PG_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
_pg_probe: dict[str, str | None] = {}


def _reachable_pg() -> tuple[str | None, str]:
    """(url, why-not): the first PostgreSQL URL that accepts a connection."""
    if "result" not in _pg_probe:
        # An explicit setting is the only candidate: falling back would test a server nobody asked for.
        explicit = os.environ.get("LOCKSTEP_TEST_POSTGRES_URL")
        errors = []
        for url in [explicit] if explicit else _PG_CANDIDATES:
            try:
                psycopg.connect(url, connect_timeout=3).close()
            except psycopg.Error as exc:
                errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
                continue
            _pg_probe["result"], _pg_probe["why"] = url, ""
            break
        else:
            _pg_probe["result"], _pg_probe["why"] = None, "; ".join(errors)
    return _pg_probe["result"], _pg_probe["why"] or ""


@dataclass(frozen=True)
class Store:
    """Where a crosswalk lives: enough to open a second handle on it (another thread, another process)."""

    url: str
    schema: str | None = None

    def open(self) -> Crosswalk:
        return Crosswalk(self.url, schema=self.schema)


@pytest.fixture
def pg_store() -> Iterator[Store]:
    url, why = _reachable_pg()
    if url is None:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 ({why})")
    schema = f"xw_test_{uuid.uuid4().hex[:12]}"
    yield Store(url, schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "crosswalk.db"))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue("sqlite_store" if request.param == "sqlite" else "pg_store")


@pytest.fixture
def xw(store: Store) -> Iterator[Crosswalk]:
    crosswalk = store.open()
    yield crosswalk
    crosswalk.close()
