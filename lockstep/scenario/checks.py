"""Expectations: fetch a source (a vendor call, the core's flows / DLQ / crosswalk / reconcile, webhook
deliveries, a binding), select into it with JMESPath, compare with each operator -> `Check`s."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import jmespath
from jmespath.exceptions import JMESPathError

from lockstep.scenario.actions import ActionError, ok
from lockstep.scenario.model import Expectation, FlowQuery
from lockstep.scenario.results import Check

if TYPE_CHECKING:
    from lockstep.scenario.engine import ScenarioRun

__all__ = ["evaluate", "list_flows"]

_MISSING = object()


async def list_flows(run: ScenarioRun, prefix: str | None = None, flow: str | None = None,
                     status: str | None = None, pages: int = 6) -> list[dict[str, Any]]:
    """Core flows, oldest first, filtered by workflow-id prefix / flow name / status (paged: newest 3000)."""
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    if flow:
        params["flow"] = flow
    if status:
        params["status"] = status
    for page in range(pages):
        rows = ok(await run.target.core("GET", "/flows", params={**params, "offset": page * 500}), "flows")["flows"]
        out.extend(r for r in rows if prefix is None or r["workflow_id"].startswith(prefix))
        if len(rows) < 500:
            break
    # Oldest first; created_at is only for ordering (never shown: it is wall-clock time).
    out.sort(key=lambda r: (r["created_at"] or "", r["workflow_id"]))
    return [{"workflow_id": r["workflow_id"], "flow": r["flow"], "status": r["status"], "attempt": r["attempt"],
             "error": r["error"]} for r in out]


async def fetch(run: ScenarioRun, exp: Expectation) -> Any:
    t, render = run.target, run.bindings.render
    kind = exp.source()
    if kind == "call":
        assert exp.call is not None
        call = exp.call
        response = await t.call(call.system, call.method, render(call.path), params=render(call.params),
                                json=render(call.json_body), form=render(call.form), headers=render(call.headers))
        run.saw(response)
        if response.status_code == 404:
            return None
        return ok(response, f"{call.system} {call.method} {render(call.path)}")
    if kind == "flows":
        query = exp.flows if isinstance(exp.flows, FlowQuery) else FlowQuery(prefix=str(exp.flows))
        return await list_flows(run, render(query.prefix), query.flow, query.status)
    if kind == "flow":
        response = await t.core("GET", f"/flows/{render(exp.flow)}")
        return None if response.status_code == 404 else ok(response, "flow")
    if kind == "dlq":
        assert exp.dlq is not None
        params: dict[str, Any] = {"limit": 500, **({"status": exp.dlq.status} if exp.dlq.status else {})}
        entries = ok(await t.core("GET", "/dlq", params=params), "DLQ")["entries"]
        prefix = render(exp.dlq.prefix) or ""
        keep = ("business_key", "flow", "status", "reason", "error_class", "error_message", "attempts")
        return [{k: e.get(k) for k in keep} for e in entries if e["business_key"].startswith(prefix)]
    if kind == "crosswalk":
        response = await t.core("GET", f"/crosswalk/{render(exp.crosswalk)}")
        return None if response.status_code == 404 else ok(response, "crosswalk")
    if kind == "deliveries":
        assert exp.deliveries is not None
        rows = ok(await t.control(exp.deliveries.system, "GET", "/deliveries", params={"limit": 1000}), "deliveries")
        return [r for r in rows if (exp.deliveries.event_type in (None, r["event_type"]))
                and (exp.deliveries.status in (None, r["status"]))]
    if kind == "journal":
        assert exp.journal is not None
        q = exp.journal
        params = {k: v for k, v in {"method": q.method, "status": q.status,
                                    "fault": None if q.fault is None else str(q.fault).lower()}.items()
                  if v is not None}
        rows = ok(await t.control(q.system, "GET", "/journal", params={**params, "limit": 5000}), "journal")
        needle = render(q.path_contains)
        return [{"method": r.get("method"), "path": r.get("path"), "status": r.get("status"), "fault": r.get("fault")}
                for r in rows if needle is None or needle in str(r.get("path", ""))]
    if kind == "reconcile":
        accounts = render(exp.reconcile)
        accounts = [accounts] if isinstance(accounts, str) else list(accounts)
        return ok(await t.core("POST", "/reconcile", json={"accounts": accounts, "orphans": False}), "reconcile")
    return render(exp.value)


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return str(expected) in actual
    if isinstance(actual, dict):
        if isinstance(expected, dict):
            return all(k in actual and _subset(actual[k], v) for k, v in expected.items())
        return expected in actual
    if isinstance(actual, list):
        return any(_subset(item, expected) for item in actual)
    return False


def _subset(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and _subset(actual[k], v) for k, v in expected.items())
    return _equal(actual, expected)


def _equal(actual: Any, expected: Any) -> bool:
    a, e = _num(actual), _num(expected)
    if a is not None and e is not None and not isinstance(actual, str) and not isinstance(expected, str):
        return math.isclose(a, e, rel_tol=0, abs_tol=1e-9)
    return bool(actual == expected)


def compare(op: str, actual: Any, expected: Any, tolerance: float) -> bool:
    if op == "equals":
        return _equal(actual, expected)
    if op == "not_equals":
        return not _equal(actual, expected)
    if op == "approx":
        a, e = _num(actual), _num(expected)
        return a is not None and e is not None and abs(a - e) <= tolerance
    if op == "contains":
        return _contains(actual, expected)
    if op == "not_contains":
        return not _contains(actual, expected)
    if op == "length":
        return isinstance(actual, list | dict | str) and len(actual) == expected
    if op == "matches":
        return actual is not None and re.search(str(expected), str(actual)) is not None
    if op == "exists":
        return (actual is not None) == bool(expected)
    if op == "one_of":
        return any(_equal(actual, x) for x in expected or [])
    a, e = _num(actual), _num(expected)
    if a is None or e is None:
        return False
    return {"gt": a > e, "gte": a >= e, "lt": a < e, "lte": a <= e}[op]


def describe(exp: Expectation) -> str:
    if exp.name:
        return exp.name
    kind = exp.source()
    if kind == "call" and exp.call is not None:
        where = f"{exp.call.system} {exp.call.method} {exp.call.path}"
    elif kind == "flows":
        where = f"flows {exp.flows.prefix if isinstance(exp.flows, FlowQuery) else exp.flows}"
    else:
        where = f"{kind} {getattr(exp, kind) if kind != 'value' else exp.value}"
    return f"{where}" + (f" at {exp.at}" if exp.at else "")


async def evaluate(run: ScenarioRun, exp: Expectation, line: int) -> list[Check]:
    """All checks of one expectation (an ActionError when the source could not be read)."""
    source = await fetch(run, exp)
    if exp.at:
        try:
            value = jmespath.search(run.bindings.render(exp.at), source)
        except JMESPathError as exc:
            raise ActionError(f"at {exp.at!r}: not a JMESPath expression ({exc})") from None
    else:
        value = source
    if exp.scale is not None and _num(value) is not None:
        value = round(float(value) * exp.scale, 6)
    name = describe(exp)
    out = []
    for op, expected in exp.ops().items():
        wanted = run.bindings.render(expected)
        good = compare(op, value, wanted, exp.tolerance)
        actual = value
        if op == "length" and isinstance(value, list | dict | str):
            # A length that holds is reported as the length (the items may carry ids no binding names);
            # one that fails shows the items too, to say what was there instead.
            actual = len(value) if good else {"length": len(value), "value": value}
        elif good and op in ("contains", "not_contains", "matches", "exists", "one_of"):
            # What held is the expectation itself; the whole value (an ERP memo with an invoice number, a
            # list of records) would carry details no binding names and make same-seed reports differ.
            actual = "(holds)"
        out.append(Check(name=name, source=exp.source(), at=exp.at, op=op, expected=wanted, actual=actual,
                         ok=good, line=line))
    return out
