"""The demo story through the core, against real servers (the dashboard tests' live sandbox): every beat's
flow finishes as the narration says, and the systems of record agree."""

from __future__ import annotations

from lockstep.story import estate_accounts, play_story
from mocks.erp.reference import normalize_tax_number
from tests.live import LiveSandbox


def test_estate_accounts_are_deterministic_distinct_and_valid() -> None:
    accounts = estate_accounts(30, seed=3)
    assert accounts == estate_accounts(30, seed=3) and accounts != estate_accounts(30, seed=4)
    assert len({a["name"] for a in accounts}) == 30
    for account in accounts:
        normalize_tax_number(account["country"], account["tax"])  # raises on a malformed number


def test_story_plays_every_beat_through_the_core(live: LiveSandbox) -> None:
    lines: list[str] = []
    seen = play_story({**live.urls, "core": live.core_url}, live.admin_token, pace=0, say=lines.append, estate=4)
    story = "\n".join(lines)
    assert seen["estate"] == {"deals": 5, "succeeded": 5}
    assert seen["lead_to_cash"]["status"] == "SUCCESS"
    assert seen["amendment"] == "SUCCESS"
    assert seen["failed_payment"] == {"failed": "SUCCESS", "at_risk": False, "recovered": "SUCCESS",
                                      "invoice": "paid"}
    assert "At_Risk__c=True" in story  # flagged while the card failed
    assert seen["merge"]["status"] == "SUCCESS" and seen["merge"]["resolved"] == seen["merge"]["master"]
    assert seen["reconcile"]["by_kind"].get("conflict", 0) >= 1
    assert "erp      conflict  name" in story
    assert f"{live.core_url}/ui" in story
