"""The standing checks after every scenario, on the accounts the scenario made (the sandbox is shared):

- duplicates:  no system holds two live customers for one account (CRM accounts, active ERP customers,
               billing customers not marked merged, active CS companies - by the account's name)
- crosswalk:   every canonical id the scenario bound resolves, and each native id it resolves to exists
- stuck_flows: none of the scenario's flows is still ENQUEUED / PENDING, none is parked in the DLQ
- reconcile:   the core's reconcile finds nothing for the scenario's surviving accounts (beyond the
               findings the scenario allows, each with a reason)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lockstep.scenario.actions import ERP_RECORD, ok
from lockstep.scenario.checks import list_flows
from lockstep.scenario.results import InvariantResult

if TYPE_CHECKING:
    from lockstep.scenario.engine import ScenarioRun

__all__ = ["check_invariants"]


def _soql(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def _duplicates(run: ScenarioRun) -> str:
    t = run.target
    problems = []
    for binding, acct in run.accounts():
        name = acct["name"]
        crm = ok(await t.call("crm", "GET", f"{t.api_root('crm')}/query",
                              params={"q": f"SELECT Id FROM Account WHERE Name = '{_soql(name)}'"}), "CRM query")
        if crm["totalSize"] > 1:
            problems.append(f"crm: {crm['totalSize']} accounts named ${{{binding}.name}}")
        rows = ok(await t.call("erp", "GET", f"{ERP_RECORD}/customer", params={"q": f'companyName IS "{name}"'}),
                  "ERP customers")["items"]
        active = 0
        for row in rows:
            customer = ok(await t.call("erp", "GET", f"{ERP_RECORD}/customer/{row['id']}"), "ERP customer")
            active += not customer.get("isInactive")
        if active > 1:
            problems.append(f"erp: {active} active customers named ${{{binding}.name}}")
        query = {"select": ["Gsid", "Status"], "limit": 50, "offset": 0,
                 "where": {"conditions": [{"name": "Name", "operator": "EQ", "value": [name]}]}}
        companies = ok(await t.call("cs", "POST", "/v1/data/objects/query/Company", json=query), "CS query")
        live = [c for c in companies["data"]["records"] if c.get("Status") != "Inactive"]
        if len(live) > 1:
            problems.append(f"cs: {len(live)} active companies named ${{{binding}.name}}")
        if acct.get("canonical"):
            customers = await _billing_customers_of(run, acct)
            live_customers = [c for c in customers if (c.get("metadata") or {}).get("lockstep_status") != "merged"]
            if len(live_customers) > 1:
                problems.append(f"billing: {len(live_customers)} live customers for ${{{binding}}}")
    return "; ".join(problems)


async def _billing_customers_of(run: ScenarioRun, acct: dict[str, Any]) -> list[dict[str, Any]]:
    """Billing customers named after the account or claiming its canonical id (paged through the list)."""
    t = run.target
    if acct.get("clock"):  # a factory account: its customers live on its own test clock
        return ok(await t.call("billing", "GET", "/v1/customers", params={"test_clock": acct["clock"],
                                                                           "limit": 100}), "billing")["data"]
    out: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": 100, **({"starting_after": after} if after else {})}
        page = ok(await t.call("billing", "GET", "/v1/customers", params=params), "billing customers")
        out.extend(c for c in page["data"] if c.get("name") == acct["name"]
                   or (c.get("metadata") or {}).get("lockstep_account") == acct.get("canonical"))
        if not page.get("has_more") or not page["data"]:
            break
        after = page["data"][-1]["id"]
    return out


async def _native_exists(run: ScenarioRun, system: str, native: str) -> bool:
    t = run.target
    if system == "crm":
        path = f"{t.api_root('crm')}/sobjects/Account/{native}"
    elif system == "erp":
        path = f"{ERP_RECORD}/customer/{native}"
    elif system == "billing":
        response = await t.call("billing", "GET", f"/v1/customers/{native}")
        return response.status_code == 200 and not response.json().get("deleted")
    else:
        query = {"select": ["Gsid"], "limit": 1, "offset": 0,
                 "where": {"conditions": [{"name": "Gsid", "operator": "EQ", "value": [native]}]}}
        rows = ok(await t.call("cs", "POST", "/v1/data/objects/query/Company", json=query), "CS query")
        return bool(rows["data"]["records"])
    return (await t.call(system, "GET", path)).status_code == 200


async def _crosswalk(run: ScenarioRun) -> tuple[str, list[str]]:
    problems, survivors = [], []
    for binding, acct in run.accounts():
        canonical = acct.get("canonical")
        if not canonical:
            continue
        response = await run.target.core("GET", f"/crosswalk/{canonical}")
        if response.status_code != 200:
            problems.append(f"${{{binding}.canonical}} does not resolve ({response.status_code})")
            continue
        view = response.json()
        survivors.append(view["resolved"])
        for system, native in sorted(view["refs"].items()):
            if not await _native_exists(run, system, native):
                problems.append(f"${{{binding}}} -> {system} {native} does not exist in {system}")
    return "; ".join(problems), list(dict.fromkeys(survivors))


async def _stuck(run: ScenarioRun) -> str:
    tokens = run.tokens()
    mine = [f for f in await list_flows(run) if run.owns(f["workflow_id"], tokens)]
    stuck = [f"{f['workflow_id']} {f['status']}" for f in mine if f["status"] in ("ENQUEUED", "PENDING")]
    entries = ok(await run.target.core("GET", "/dlq", params={"status": "parked", "limit": 500}), "DLQ")["entries"]
    parked = [f"{e['business_key']} parked ({e['error_class']})" for e in entries
              if run.owns(e["business_key"], tokens)]
    return "; ".join(stuck + parked)


async def _reconcile(run: ScenarioRun, survivors: list[str]) -> str:
    if not survivors:
        return ""
    report = ok(await run.target.core("POST", "/reconcile", json={"accounts": survivors, "orphans": False}),
                "reconcile")
    allowed = run.loaded.scenario.invariants.allow_findings
    left = []
    for f in report["findings"]:
        if any((a.kind in (None, f["kind"])) and (a.system in (None, f["system"])) and (a.field in (None, f["field"]))
               for a in allowed):
            continue
        left.append(f"{f['kind']} {f['system']}" + (f" {f['field']}" if f.get("field") else "")
                    + f": expected {f['expected']!r}, actual {f['actual']!r}")
    left += [f"cannot read {e['system']}: {e['error']} {e['message']}" for e in report.get("errors", [])]
    return "; ".join(left)


async def check_invariants(run: ScenarioRun, skip_also: frozenset[str] = frozenset()) -> list[InvariantResult]:
    skip = set(run.loaded.scenario.invariants.skip) | skip_also
    out: list[InvariantResult] = []

    async def one(name: str, fn: Any) -> Any:
        if name in skip:
            out.append(InvariantResult(name, True, "skipped by the scenario", skipped=True))
            return None
        try:
            result = await fn()
        except Exception as exc:  # an unreadable system is a failed invariant, reported, not a crash
            out.append(InvariantResult(name, False, f"could not check: {type(exc).__name__}: {exc}"))
            return None
        detail, extra = result if isinstance(result, tuple) else (result, None)
        out.append(InvariantResult(name, not detail, run.bindings.mask(detail)))
        return extra

    await one("stuck_flows", lambda: _stuck(run))
    await one("duplicates", lambda: _duplicates(run))
    survivors = await one("crosswalk", lambda: _crosswalk(run))
    if survivors is None and "crosswalk" in skip:
        _, survivors = await _crosswalk(run)
    await one("reconcile", lambda: _reconcile(run, survivors or []))
    return out
