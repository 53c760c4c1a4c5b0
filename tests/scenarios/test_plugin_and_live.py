"""The pytest plugin in a child pytest (its own process: DBOS is one per process), and the packs against
`lockstep up` servers (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.scenarios.conftest import PACKS, write

GOOD = """\
name: plugin_lost_deal
tags: [plugin]
setup:
  - deal: d
steps:
  - do: {action: close_lost, args: {deal: d}}
  - expect:
      - name: no lead-to-cash flow
        flows: "${d.flow}"
        length: 0
"""
FAILING = GOOD.replace("plugin_lost_deal", "plugin_wrong").replace("length: 0", "length: 3")
KNOWN = FAILING.replace("plugin_wrong", "plugin_known").replace("tags: [plugin]", "known_issue: a bug\ntags: [plugin]")
FIXTURE_TEST = """\
async def test_fixtures_reach_every_system(lockstep_sandbox, lockstep_clients, lockstep_core):
    made = await lockstep_clients["billing"].post("/v1/customers", data={"name": "Plugin"})
    assert made.status_code == 200
    await lockstep_sandbox.quiesce()
    assert (await lockstep_core.get("/health")).json()["status"] == "ok"
"""


def test_the_plugin_collects_scenarios_and_offers_the_sandbox_as_fixtures(tmp_path: Path) -> None:
    write(tmp_path, "good.scenario.yaml", GOOD)
    write(tmp_path, "wrong.scenario.yaml", FAILING)
    write(tmp_path, "known.scenario.yaml", KNOWN)
    write(tmp_path, "broken.scenario.yaml", "name: x\nsteps:\n  - advance: {system: sap, by: 1d}\n")
    write(tmp_path, "not_a_scenario.yaml", "just: config\n")  # not collected: no --lockstep-scenarios
    write(tmp_path, "test_fixtures.py", FIXTURE_TEST)
    write(tmp_path, "pytest.ini", "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
                           "--continue-on-collection-errors", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    out = done.stdout
    assert "1 failed, 2 passed, 1 xfailed, 1 error" in out, out[-3000:]
    assert "broken.scenario.yaml:3: steps[0].advance.system: Input should be" in out, out[-3000:]
    assert "wrong.scenario.yaml:7: scenario plugin_wrong failed" in out, out[-3000:]
    assert "no lead-to-cash flow" in out and "length: expected 3" in out
    assert "PASSED good.scenario.yaml::plugin_lost_deal" in out
    assert "PASSED test_fixtures.py::test_fixtures_reach_every_system" in out


def _wait_healthy(url: str, deadline: float) -> None:
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered")
        time.sleep(0.2)


@pytest.mark.slow
def test_the_packs_pass_against_lockstep_up_servers(tmp_path: Path) -> None:
    """`lockstep up --port-offset 200` (ports 8300-8304) in a child process, then `lockstep run --target local`."""
    env = {**os.environ, "LOCKSTEP_ADMIN_TOKEN": "scenario-live-test", "PACT_DO_NOT_TRACK": "true"}
    server = subprocess.Popen([sys.executable, "-m", "lockstep.cli", "up", "--port-offset", "200",
                               "--state-dir", str(tmp_path / "state")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        for port in (8300, 8301, 8302, 8303, 8304):
            _wait_healthy(f"http://127.0.0.1:{port}/health" if port == 8300
                          else f"http://127.0.0.1:{port}/_sandbox/health", deadline)
        # Every invariant, reconcile included (POST /reconcile on a live core answered 500 before the API got
        # connections of its own event loop).
        done = subprocess.run([sys.executable, "-m", "lockstep.cli", "run", str(PACKS), "--target", "local",
                               "--port-offset", "200", "--report-dir", str(tmp_path / "reports")],
                              capture_output=True, text=True, timeout=900, env=env, check=False)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert "OK:" in done.stdout and (tmp_path / "reports" / "report.html").exists()
        report = json.loads((tmp_path / "reports" / "report.json").read_text())
        checked = [i for s in report["scenarios"] for i in s["invariants"] if i["name"] == "reconcile"]
        assert checked and not any(i["skipped"] for i in checked)
        account = httpx.post("http://127.0.0.1:8300/crosswalk/links", json={"entity": "account",
                                                                          "refs": {"crm": "001LIVEPROBE0001"}})
        probe = httpx.post("http://127.0.0.1:8300/reconcile", json={"accounts": [account.json()["id"]],
                                                                      "orphans": False})
        assert probe.status_code == 200, probe.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


@pytest.mark.slow
def test_every_pack_passes_in_process_in_two_workers(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "lockstep.cli", "run", str(PACKS), "--workers", "2",
                           "--report-dir", str(tmp_path)], capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
