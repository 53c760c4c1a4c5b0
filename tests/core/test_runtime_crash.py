"""Crash recovery: a core process is SIGKILLed in the middle of a flow, a new one starts on the same
database, and the flow finishes, exactly once (side effects counted in their own table).

The flow: effect "before" (a step) -> a step that blocks until a file appears -> effect "after". The first
process is killed while blocked; the second process recovers the workflow from DBOS's checkpoints: "before"
is not run again, the blocking step is, then "after" runs once.
Run as `python -m tests.core.test_runtime_crash <mode> <dir>` for the child processes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from dbos import DBOS

from core.intake.router import register_flow
from core.runtime import Runtime
from core.settings import CoreSettings

KEY_OBJ = "in_crash0001"
BUSINESS_KEY = f"crash:invoice:{KEY_OBJ}"
ROOT = Path(__file__).resolve().parents[2]


def _side(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30)
    conn.execute("CREATE TABLE IF NOT EXISTS effects (idempotency_key TEXT NOT NULL, at REAL NOT NULL)")
    return conn


@DBOS.step()
def crash_effect(side_db: str, idempotency_key: str) -> None:
    with _side(side_db) as conn:  # deliberately not idempotent: a second run would show as a second row
        conn.execute("INSERT INTO effects VALUES (?, ?)", (idempotency_key, time.time()))


@DBOS.step()
def crash_block(marker: str, go: str) -> None:
    Path(marker).touch()
    while not Path(go).exists():
        time.sleep(0.02)


def crash_flow(event: dict) -> str:
    paths = event["payload"]["data"]["object"]["metadata"]
    key = event["business_key"]
    crash_effect(paths["side"], f"{key}:before")
    crash_block(paths["marker"], paths["go"])
    crash_effect(paths["side"], f"{key}:after")
    return "finished"


register_flow(["billing:test.crash"], lambda e: f"crash:{e.aggregate_key}", crash_flow, name="crash_demo")


def _child(mode: str, work: Path) -> None:
    from tests.core._runtime_kit import billing_event

    settings = CoreSettings(data_dir=work / "core", dbos_log_level="CRITICAL", queue_polling_interval_s=0.01)
    runtime = Runtime(settings).launch()
    if mode == "start":
        meta = {"side": str(work / "side.sqlite"), "marker": str(work / "marker"), "go": str(work / "go")}
        runtime.router.start(billing_event("test.crash", KEY_OBJ, obj={"metadata": meta}))
        time.sleep(120)  # killed long before
        return
    deadline = time.monotonic() + 30
    status = DBOS.get_workflow_status(BUSINESS_KEY)
    while time.monotonic() < deadline and (status is None or status.status not in ("SUCCESS", "ERROR")):
        time.sleep(0.02)
        status = DBOS.get_workflow_status(BUSINESS_KEY)
    workflows = DBOS.list_workflows(workflow_id_prefix="crash:")
    print(json.dumps({"status": status.status if status else None,
                      "result": DBOS.retrieve_workflow(BUSINESS_KEY).get_result() if status else None,
                      "workflows": [w.workflow_id for w in workflows]}))
    runtime.destroy()


def _spawn(mode: str, work: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.core.test_runtime_crash", mode, str(work)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_flow_then_restart_finishes_the_flow_exactly_once(tmp_path: Path) -> None:
    first = _spawn("start", tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "marker").exists():
            assert first.poll() is None, f"first core exited early: {first.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "the flow never reached its blocking step"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    with _side(str(tmp_path / "side.sqlite")) as conn:
        assert conn.execute("SELECT idempotency_key FROM effects").fetchall() == [(f"{BUSINESS_KEY}:before",)]
    (tmp_path / "go").touch()  # the cause of the stall is gone

    second = _spawn("recover", tmp_path)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"status": "SUCCESS", "result": "finished", "workflows": [BUSINESS_KEY]}
    with _side(str(tmp_path / "side.sqlite")) as conn:
        rows = conn.execute("SELECT idempotency_key, COUNT(*) FROM effects GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [(f"{BUSINESS_KEY}:after", 1), (f"{BUSINESS_KEY}:before", 1)]


if __name__ == "__main__":
    _child(sys.argv[1], Path(sys.argv[2]))
