"""The dashboard's server side against a live sandbox: the page and its files, the SSE feed, the sandbox
console (clock, faults, versions, the close-won action) and its errors, the account list."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.api import create_core_app
from core.settings import CoreSettings
from mocks.kernel.serving import free_port
from tests.live import LiveSandbox

DEADLINE_S = 60.0


def sse_events(response: httpx.Response) -> Iterator[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) for each server-sent event of a streaming response."""
    event_id, name, data = None, "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event_id, name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])


def test_page_and_its_files_are_served(live: LiveSandbox) -> None:
    with httpx.Client(base_url=live.core_url, timeout=10) as client:
        page = client.get("/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/ui/static/app.js">' in page.text
        for name, kind in (("app.js", "javascript"), ("api.js", "javascript"), ("style.css", "text/css")):
            asset = client.get(f"/ui/static/{name}")
            assert asset.status_code == 200 and kind in asset.headers["content-type"], name
        assert client.get("/ui/static/nope.js").status_code == 404
        assert client.get("/").headers["location"] == "/ui"


def test_stream_delivers_a_new_flow_live_and_resumes_from_last_event_id(live: LiveSandbox) -> None:
    with httpx.Client(base_url=live.core_url, timeout=httpx.Timeout(10, read=DEADLINE_S)) as client:
        with client.stream("GET", "/ui/api/stream", params={"backlog": 0}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            made = client.post("/ui/api/sandbox/actions/close-won", json={"account": "Streamline GmbH",
                                                                          "country": "Germany",
                                                                          "tax_registration": "DE987654321"})
            assert made.status_code == 202, made.text
            key = made.json()["business_key"]
            seen: dict[str, list[Any]] = {"event": [], "trace": [], "flow": []}
            deadline = time.monotonic() + DEADLINE_S
            last_id = None
            for event_id, name, data in sse_events(stream):
                seen.setdefault(name, []).append(data)
                if name == "trace":
                    last_id = event_id
                if name == "flow" and data["workflow_id"] == key and data["status"] == "SUCCESS":
                    break
                assert time.monotonic() < deadline, f"no SUCCESS for {key} on the stream; saw {list(seen)}"
        assert any(e["system"] == "crm" and e["type"] == "OpportunityChangeEvent" for e in seen["event"])
        assert {t["system"] for t in seen["trace"] if t["flow_id"] == key} >= {"crm", "erp", "billing", "cs"}
        seqs = [t["seq"] for t in seen["trace"]]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))

        # A reconnect with Last-Event-ID gets only trace steps after it.
        assert last_id is not None
        cut = int(last_id) - 3
        with client.stream("GET", "/ui/api/stream", headers={"Last-Event-ID": str(cut)}) as stream:
            for _, name, data in sse_events(stream):
                if name == "trace":
                    assert data["seq"] == cut + 1
                    break

        accounts = client.get("/ui/api/accounts").json()["accounts"]
        assert any(set(a["refs"]) == {"crm", "erp", "billing", "cs"} for a in accounts)


def test_sandbox_console_moves_clocks_pins_versions_and_refuses_bad_input(live: LiveSandbox) -> None:
    with httpx.Client(base_url=f"{live.core_url}/ui/api", timeout=30) as client:
        view = client.get("/sandbox").json()
        assert view["enabled"] is True and set(view["presets"]) == {"flaky", "slow", "down", "reject"}
        assert all(s["reachable"] for s in view["systems"].values()), view
        before = view["systems"]["billing"]["clock"]["now"]
        moved = client.post("/sandbox/billing/clock/advance", json={"by": "1d"}).json()
        assert moved["now"] == before + 86_400

        pinned = view["systems"]["cs"]["pinned_version"]
        other = next(v for v in view["systems"]["cs"]["versions"] if v != pinned)
        assert client.put("/sandbox/cs/version", json={"api_version": other}).json()["api_version"] == other
        assert client.get("/sandbox").json()["systems"]["cs"]["api_version"] == other
        assert client.put("/sandbox/cs/version", json={"api_version": pinned}).status_code == 200

        flaky = client.put("/sandbox/crm/faults", json={"preset": "flaky"}).json()
        assert flaky["preset"] == "flaky" and flaky["rules"][0]["status"] == 503
        assert client.get("/sandbox").json()["systems"]["crm"]["preset"] == "flaky"
        assert client.put("/sandbox/crm/faults", json={"preset": None}).json() == {"system": "crm", "rules": [],
                                                                          "preset": None}

        bad = client.put("/sandbox/erp/faults", json={"preset": "meteor"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_preset"
        assert client.put("/sandbox/sap/faults", json={"preset": None}).status_code == 422
        refused = client.post("/sandbox/erp/clock/advance", json={"by": "soon"})
        assert refused.status_code == 400 and "not a duration" in refused.json()["error"]["message"]
        both = client.post("/sandbox/erp/clock/advance", json={"by": "1d", "to": 0})
        assert both.status_code == 400 and both.json()["error"]["code"] == "invalid_request"
        version = client.put("/sandbox/erp/version", json={"api_version": "1999.1"})
        assert version.status_code == 400 and version.json()["error"]["code"] == "sandbox_refused"


@pytest.mark.parametrize("token", [None, "some-token"])
async def test_sandbox_console_without_a_token_or_without_mocks_says_why(token: str | None) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = CoreSettings(sandbox_admin_token=token, crm_url=dead, erp_url=dead, billing_url=dead, cs_url=dead)
    app = create_core_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://core") as client:
        view = (await client.get("/ui/api/sandbox")).json()
        action = await client.post("/ui/api/sandbox/actions/close-won", json={})
        advance = await client.post("/ui/api/sandbox/crm/clock/advance", json={"by": "1d"})
    if token is None:
        assert view["enabled"] is False and "only observes" in view["reason"]
        assert action.status_code == advance.status_code == 409
        assert action.json()["error"]["code"] == "sandbox_disabled"
    else:
        assert view["enabled"] is True and not view["systems"]["crm"]["reachable"]
        assert "did not answer" in view["systems"]["crm"]["error"]
        assert action.status_code == advance.status_code == 502
        assert advance.json()["error"]["code"] == "sandbox_unreachable"
