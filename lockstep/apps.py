"""App factories for `uvicorn --factory` (benchmarks, docker-compose), one per system."""

from __future__ import annotations

from fastapi import FastAPI

from lockstep.systems import SYSTEMS
from mocks.kernel.app import create_mock_app


def billing_app() -> FastAPI:
    return create_mock_app(SYSTEMS["billing"].build())
