"""The engine against an in-process sandbox: the smoke scenarios pass; breaking a flow on purpose makes its
scenario fail with a readable expected vs actual; the same seed gives the same JSON report; reports render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from core.connectors.billing import BillingClient
from core.connectors.erp import ErpClient
from lockstep.scenario.engine import run_scenario, run_suite, select
from lockstep.scenario.loader import load_file, load_paths
from lockstep.scenario.reports import html_report, json_report, junit_report, strip_durations, write_reports
from lockstep.scenario.results import ScenarioResult
from lockstep.scenario.target import Target
from tests.scenarios.conftest import PACKS, scenario, write


def failed_checks(result: ScenarioResult) -> list[Any]:
    return [c for step in result.steps for c in step.checks if not c.ok]


async def test_the_smoke_scenarios_pass_with_every_invariant(target: Target) -> None:
    loaded, _ = load_paths([PACKS])
    smoke = select(loaded, tags=["smoke"])
    assert len(smoke) >= 4
    suite = await run_suite(smoke, target, seed=3, concurrency=4)
    for result in suite.scenarios:
        assert result.status == "passed", f"{result.id}: {result.message}"
        assert [i.name for i in result.invariants] == ["stuck_flows", "duplicates", "crosswalk", "reconcile"]
        assert all(i.ok and not i.skipped for i in result.invariants), result.invariants
        assert any(c.ok for step in result.steps for c in step.checks)


async def test_no_credit_hold_breaks_the_dunning_scenario_readably(target: Target,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKSTEP_CORE_CREDIT_HOLD_AFTER_FAILURES", "99")  # the flow never reaches the threshold
    result = await run_scenario(scenario("failed_payment_dunning_to_credit_hold"), target, seed=1)
    assert result.status == "failed", result.message
    [check] = failed_checks(result)
    assert check.name == "the ERP customer is on credit hold"
    assert check.expected == ["ON", True] and check.actual == ["AUTO", False]
    assert check.line == 27  # where the expectation starts in the file
    assert "the ERP customer is on credit hold: equals expected ['ON', True], actual ['AUTO', False]" in result.message
    assert result.message.startswith("step 7 (expect), line 22:")


async def test_an_amendment_that_never_reaches_the_erp_fails_readably(target: Target,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async def forget_the_amendment(self: ErpClient, record_id: str, **_: Any) -> Any:
        return await self.get_sales_order(record_id)

    monkeypatch.setattr(ErpClient, "amend_sales_order", forget_the_amendment)
    result = await run_scenario(scenario("amendment_upgrade_mid_term_with_proration"), target, seed=1)
    assert result.status == "failed"
    names = {c.name: c for c in failed_checks(result)}
    check = names["the ERP order is amended to the new annual value"]
    assert check.expected == [2400.0, 20, 120.0] and check.actual == [1200.0, 10, 120.0]
    assert "expected [2400.0, 20, 120.0], actual [1200.0, 10, 120.0]" in result.message


async def test_a_merge_that_leaves_subscriptions_behind_fails_readably(target: Target,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async def keep_the_subscription(self: BillingClient, subscription_id: str, *_: Any, **__: Any) -> Any:
        return await self.get_subscription(subscription_id)

    monkeypatch.setattr(BillingClient, "update_subscription", keep_the_subscription)
    result = await run_scenario(scenario("merge_two_way"), target, seed=1)
    assert result.status == "failed"
    check = {c.name: c for c in failed_checks(result)}["the loser's subscription now belongs to the survivor"]
    # ids are shown as the bindings that hold them, plus the value for the failed check's expectation
    assert check.actual == "${b.canonical}"
    assert check.expected.startswith("${a.canonical} = 'acc_")


async def test_a_broken_invariant_fails_the_scenario(target: Target, tmp_path: Path) -> None:
    """A scenario whose own checks pass still fails when it leaves a duplicate customer behind."""
    path = write(tmp_path, "dupe.yaml", """\
name: leaves_a_duplicate
setup:
  - account: a
    subscribe: false
steps:
  - act:
      system: erp
      method: POST
      path: ${api.erp}/customer
      json: {companyName: "${a.name}", subsidiary: {id: "1"}}
  - expect:
      - value: ok
        equals: ok
""")
    result = await run_scenario(load_file(path), target, seed=1)
    assert result.status == "failed"
    assert "invariant duplicates: erp: 2 active customers named ${a.name}" in result.message


async def test_the_same_seed_gives_the_same_json_report(target: Target) -> None:
    loaded, _ = load_paths([PACKS])
    chosen = [i for i in loaded if i.scenario.name in ("failed_payment_recovered", "merge_two_way",
                                                        "l2c_lost_opportunity_starts_nothing")]
    first = await run_suite(chosen, target, seed=42, concurrency=3)
    second = await run_suite(chosen, target, seed=42, concurrency=3)
    a, b = (json.dumps(strip_durations(json_report(s)), sort_keys=True) for s in (first, second))
    assert first.ok and a == b
    # ...and no native id leaked into it (they differ between the two runs by construction)
    for binding in ("${a.crm}", "${a.canonical}", "${renewal}"):
        assert binding in a or binding not in json.dumps(json_report(first))
    assert "acc_" not in a and "cus_" not in a


def test_reports_render_failures_as_expected_vs_actual(tmp_path: Path) -> None:
    from lockstep.scenario.results import Check, Event, InvariantResult, StepResult, SuiteResult

    bad = ScenarioResult(id="p/s", name="s", pack="p", file="p/s.yaml", description="d <b>", tags=["t"], seed=1,
                         exclusive=False, known_issue=None, status="failed", message="step 1 (expect), line 9: x",
                         failed_line=9)
    bad.steps = [StepResult(0, "expect", 9, "expect 1 check(s)", "failed",
                            [Check("hold", "call", "creditHoldOverride", "equals", "ON", "AUTO", False, 10)])]
    bad.invariants = [InvariantResult("duplicates", True)]
    bad.timeline = [Event(1.0, "billing", "clock", "test clock of a +32d"), Event(1.5, "erp", "call", "PATCH x")]
    suite = SuiteResult(target="in-process", seed=1, scenarios=[bad], duration_s=1.0)
    root = ET.fromstring(junit_report(suite))
    [case] = root.iter("testcase")
    failure = case.find("failure")
    assert failure is not None and "equals: expected ON" in failure.text and "actual: AUTO" in failure.text
    page = html_report(suite)
    assert "<script" not in page and "http" not in page.split("<style>")[0]  # self-contained
    assert "d &lt;b&gt;" in page and "test clock of a +32d" in page and "FAILED" in page
    written = write_reports(suite, json_path=tmp_path / "r.json", junit_path=tmp_path / "j.xml",
                            html_path=tmp_path / "r.html")
    assert [p.name for p in written] == ["r.json", "j.xml", "r.html"]
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["failed"] == 1
