"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser download).

Loads /ui, closes a deal from the sandbox console and watches its lead-to-cash flow arrive live over SSE,
parks a flow in the DLQ with a fault toggle, clears the fault and replays it from the page. Screenshots are
kept under reports/ui/ (CI artifacts). Skips, saying why, only when no chromium is installed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.live import LiveSandbox

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
TIMEOUT_MS = 60_000  # a flow through four mocks plus DBOS checkpoints; CI machines are slow and shared


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def page(live: LiveSandbox):  # type: ignore[no-untyped-def]
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium found (/usr/bin/chromium): `apt-get install -y chromium` (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--headless=new", "--disable-gpu",
                                                   "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1500, "height": 1250})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live.core_url}/ui")
        yield page
        context.close()
        browser.close()
        assert not errors, f"the page raised: {errors}"


def test_dashboard_shows_a_flow_live_and_replays_a_dead_letter(page, live: LiveSandbox, reports_dir: Path
                                                               ) -> None:  # type: ignore[no-untyped-def]
    expect = sync_api.expect
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.locator("#sandbox .system")).to_have_count(4)
    expect(page.locator("#lanes-head div")).to_have_text(["time", "core", "crm", "erp", "billing", "cs"])

    # 1. A sales rep closes a deal in the CRM (from the console); the flow appears live and succeeds.
    button = page.locator("#close-won")
    assert button.get_attribute("data-last-flow") is None
    button.click()
    expect(button).to_have_attribute("data-last-flow", re.compile(r"^closed-won:"))
    flow_id = button.get_attribute("data-last-flow")
    assert flow_id and flow_id.startswith("closed-won:")
    flow_row = page.locator(f'#flows tr[data-flow-id="{flow_id}"]')
    expect(flow_row).to_be_visible()
    expect(flow_row).to_have_attribute("data-status", "SUCCESS")
    # The timeline has the CRM's change event (inbound) and the core's writes into ERP, billing and CS.
    expect(page.locator('#timeline .row[data-kind="event"][data-lane="crm"]').first).to_be_visible()
    for lane in ("erp", "billing", "cs"):
        expect(page.locator(f'#timeline .row[data-kind="call"][data-lane="{lane}"][data-flow="{flow_id}"]')
               .first).to_be_attached()
    detail = page.locator("#flow-detail")
    expect(detail).to_have_attribute("data-flow-id", flow_id)
    expect(detail).to_have_attribute("data-status", "SUCCESS")
    expect(detail.locator("li.ok").first).to_be_visible()
    page.screenshot(path=str(reports_dir / "dashboard-flow.png"), full_page=True)

    # 2. The ERP starts rejecting writes; the next deal's flow parks in the DLQ.
    page.select_option('#sandbox .system[data-system="erp"] select.faults', "reject")
    expect(page.locator('#sandbox .system[data-system="erp"]')).to_have_class("system erp faulty")
    first_deal = flow_id
    button.click()
    expect(button).not_to_have_attribute("data-last-flow", first_deal)
    parked_key = button.get_attribute("data-last-flow")
    parked = page.locator(f'#dlq .card[data-status="parked"]:has-text("{parked_key}")')
    expect(parked).to_be_visible()
    expect(parked).to_contain_text("Injected fault (400)")
    dlq_id = parked.get_attribute("data-dlq-id")
    page.screenshot(path=str(reports_dir / "dashboard-dlq-parked.png"), full_page=True)

    # 3. Faults cleared, the parked flow is replayed from the page and resolves.
    page.select_option('#sandbox .system[data-system="erp"] select.faults', "")
    expect(page.locator('#sandbox .system[data-system="erp"]')).to_have_class("system erp")
    page.locator(f'#dlq .card[data-dlq-id="{dlq_id}"] button.replay').click()
    expect(page.locator(f'#dlq .card[data-dlq-id="{dlq_id}"]')).to_have_attribute("data-status", "resolved")
    replayed = page.locator(f'#flows tr[data-flow-id="{parked_key}~replay-1"]')
    expect(replayed).to_have_attribute("data-status", "SUCCESS")
    page.screenshot(path=str(reports_dir / "dashboard-dlq-replayed.png"), full_page=True)

    # The page told the truth: the core's own API agrees.
    entry = httpx.get(f"{live.core_url}/dlq/{dlq_id}", timeout=10).json()
    assert entry["status"] == "resolved" and entry["last_replay_id"]
    assert httpx.get(f"{live.core_url}/flows/{entry['last_replay_id']}", timeout=10).json()["status"] == "SUCCESS"
