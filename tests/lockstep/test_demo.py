"""The demo story runs against real servers and tells what the systems of record say."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lockstep.demo import play_crm_demo, play_demo, seed_demo
from lockstep.systems import SYSTEMS
from mocks.kernel.app import create_mock_app
from mocks.kernel.serving import ServerThread

ADMIN = "demo-admin"


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    servers = {name: ServerThread(create_mock_app(SYSTEMS[name].build(), admin_token=ADMIN)).start()
               for name in SYSTEMS}
    try:
        yield {name: server.url for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


def test_demo_seeds_every_system_and_plays_the_billing_story(urls: dict[str, str]) -> None:
    seed_demo(urls, ADMIN)
    lines: list[str] = []
    seen = play_demo(urls, ADMIN, say=lines.append)
    assert seen["status"] == "active"
    story = "\n".join(lines)
    assert "renewal fails (attempt 1), the subscription is past_due" in story
    assert "leaves the invoice paid and the subscription active" in story
    assert seen["events"] > 10


def test_demo_merge_story_shows_the_loser_only_to_query_all(urls: dict[str, str]) -> None:
    seed_demo(urls, ADMIN)
    seen = play_crm_demo(urls, ADMIN, say=lambda line: None)
    assert seen["loser_visible"] == 0
    assert seen["merged"]["IsDeleted"] is True
    assert seen["merged"]["MasterRecordId"] == seen["master"]
