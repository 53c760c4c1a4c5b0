"""A live sandbox for the dashboard and story tests (the `live` fixture, registered in tests/conftest.py):
the four mocks on real uvicorn servers (ephemeral ports, seeded demo tenants) and the core as its own process
(`python -m core`), wired and subscribed the way `lockstep up` does, with the sandbox admin token so the
dashboard's console can drive the mocks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lockstep.demo import seed_demo
from lockstep.runner import CoreOptions, CoreServer
from lockstep.systems import SYSTEMS
from mocks.kernel.app import create_mock_app
from mocks.kernel.serving import ServerThread, free_port

ADMIN_TOKEN = "ui-test-admin-token"
REPORTS = Path(__file__).resolve().parents[2] / "reports" / "ui"


@dataclass
class LiveSandbox:
    core_url: str
    urls: dict[str, str]
    admin_token: str


@pytest.fixture(scope="session")
def live() -> Iterator[LiveSandbox]:
    servers: list[ServerThread] = []
    core: CoreServer | None = None
    try:
        for entry in SYSTEMS.values():
            app = create_mock_app(entry.build(), admin_token=ADMIN_TOKEN, seed=0)
            servers.append(ServerThread(app).start())
        urls = {name: server.url for name, server in zip(SYSTEMS, servers, strict=True)}
        seed_demo(urls, ADMIN_TOKEN)
        options = CoreOptions(port=free_port(), mock_ports={n: s.port for n, s in zip(SYSTEMS, servers, strict=True)},
                              settings={"sandbox_admin_token": ADMIN_TOKEN})
        core = CoreServer(options, host="127.0.0.1", ca_bundle=None).start()
        core.subscribe(urls, ADMIN_TOKEN)
        yield LiveSandbox(core_url=core.url, urls=urls, admin_token=ADMIN_TOKEN)
    finally:
        if core is not None:
            core.stop()
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def reports_dir() -> Path:
    REPORTS.mkdir(parents=True, exist_ok=True)
    return REPORTS
