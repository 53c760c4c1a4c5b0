"""App factories for `uvicorn --factory` (benchmarks, docker-compose), one per system.

The admin token comes from LOCKSTEP_ADMIN_TOKEN (see mocks.kernel.app).
"""

from __future__ import annotations

from fastapi import FastAPI

from lockstep.systems import SYSTEMS
from mocks.kernel.app import create_mock_app


def mock_app(name: str) -> FastAPI:
    return create_mock_app(SYSTEMS[name].build())


def billing_app() -> FastAPI:
    return mock_app("billing")


def crm_app() -> FastAPI:
    return mock_app("crm")


def erp_app() -> FastAPI:
    return mock_app("erp")


def cs_app() -> FastAPI:
    return mock_app("cs")
