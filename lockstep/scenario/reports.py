"""Reports: JSON (seed-stable: durations aside, the same seed gives the same document), JUnit XML (for CI),
and one self-contained HTML file with a cross-system timeline per scenario and expected vs actual on failure.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from lockstep.scenario.results import ScenarioResult, SuiteResult

__all__ = ["LANES", "html_report", "json_report", "junit_report", "strip_durations", "write_reports"]

LANES = ("scenario", "crm", "erp", "billing", "cs", "core")
REPORT_VERSION = 1


def json_report(suite: SuiteResult) -> dict[str, Any]:
    """The run as a JSON document. No timeline (its interleaving depends on scheduling); ids are shown as the
    bindings that hold them."""
    return {
        "version": REPORT_VERSION,
        "target": suite.target,
        "seed": suite.seed,
        "workers": suite.workers,
        "ok": suite.ok,
        "counts": suite.counts(),
        "problems": suite.problems,
        "duration_s": suite.duration_s,
        "scenarios": [s.to_dict() for s in suite.scenarios],
    }


def strip_durations(doc: Any) -> Any:
    """`doc` without any `duration_s` (what two runs with one seed may differ in)."""
    if isinstance(doc, dict):
        return {k: strip_durations(v) for k, v in doc.items() if k != "duration_s"}
    if isinstance(doc, list):
        return [strip_durations(v) for v in doc]
    return doc


def _short(value: Any, limit: int = 2000) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + " ..."


def _failure_text(s: ScenarioResult) -> str:
    lines = [s.message]
    for step in s.steps:
        for c in step.checks:
            if not c.ok:
                lines.append(f"  line {c.line}: {c.name}\n    {c.op}: expected {_short(c.expected, 500)}\n"
                             f"    actual: {_short(c.actual, 500)}")
    for inv in s.invariants:
        if not inv.ok:
            lines.append(f"  invariant {inv.name}: {inv.detail}")
    return "\n".join(lines)


def junit_report(suite: SuiteResult) -> str:
    counts = suite.counts()
    root = ET.Element("testsuites", name="lockstep scenarios", tests=str(len(suite.scenarios)),
                      failures=str(counts["failed"]), errors=str(counts["error"] + len(suite.problems)),
                      time=f"{suite.duration_s:.3f}")
    packs: dict[str, list[ScenarioResult]] = {}
    for s in suite.scenarios:
        packs.setdefault(s.pack, []).append(s)
    if suite.problems:
        bad = ET.SubElement(root, "testsuite", name="scenario files", tests=str(len(suite.problems)),
                            errors=str(len(suite.problems)), failures="0", skipped="0")
        for problem in suite.problems:
            case = ET.SubElement(bad, "testcase", classname="scenario files", name=problem.split(":", 1)[0])
            ET.SubElement(case, "error", message=problem).text = problem
    for pack, rows in packs.items():
        node = ET.SubElement(root, "testsuite", name=pack, tests=str(len(rows)),
                             failures=str(sum(r.status == "failed" for r in rows)),
                             errors=str(sum(r.status == "error" for r in rows)),
                             skipped=str(sum(r.status == "xfail" for r in rows)),
                             time=f"{sum(r.duration_s for r in rows):.3f}")
        for r in rows:
            case = ET.SubElement(node, "testcase", classname=f"scenarios.{pack}", name=r.name, file=r.file,
                                 line=str(r.failed_line or 1), time=f"{r.duration_s:.3f}")
            if r.status == "failed":
                ET.SubElement(case, "failure", message=r.message[:500]).text = _failure_text(r)
            elif r.status == "error":
                ET.SubElement(case, "error", message=r.message[:500]).text = _failure_text(r)
            elif r.status == "xfail":
                ET.SubElement(case, "skipped", message=f"known issue: {r.known_issue}").text = _failure_text(r)
            elif r.status == "xpass":
                ET.SubElement(case, "system-out").text = f"known issue did not reproduce: {r.known_issue}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:20px}
main{padding:18px 28px}.counts span{display:inline-block;margin-right:14px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.passed{background:#1f8a4c}.failed{background:#c0392b}.error{background:#8e44ad}.xfail{background:#b9770e}
.xpass{background:#2471a3}.ok{color:#1f8a4c}.bad{color:#c0392b}
details.sc{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:8px 0;padding:6px 12px}
details.sc>summary{cursor:pointer;font-weight:600}details.sc>summary small{font-weight:400;color:#5b6573}
table{border-collapse:collapse;width:100%;margin:8px 0}td,th{border:1px solid #e3e6ea;padding:3px 6px;
vertical-align:top;font-size:12.5px}th{background:#eef1f4;text-align:left}
table.tl{table-layout:fixed}.tl td{width:15.6%;word-break:break-word}.tl td.t,.tl th:first-child{width:6%;
color:#5b6573;white-space:nowrap}.ev{border-left:3px solid #1f8a4c;padding-left:4px}
.ev.failed,.ev.error{border-color:#c0392b}.ev.clock{border-color:#2471a3}.ev.fault,.ev.chaos,.ev.drift,.ev.limit
{border-color:#b9770e}pre{white-space:pre-wrap;background:#fbf3f2;border:1px solid #f0d5d1;padding:8px;margin:6px 0}
code{background:#eef1f4;padding:0 3px;border-radius:3px}.exp td:nth-child(3),.exp td:nth-child(4){font-family:
ui-monospace,Menlo,monospace;max-width:420px;word-break:break-word}
"""


def _e(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else _short(value, 1500))


def _timeline(s: ScenarioResult) -> str:
    if not s.timeline:
        return "<p>No events recorded.</p>"
    t0 = s.timeline[0].at
    rows = ["<table class=tl><tr><th>+s</th>" + "".join(f"<th>{lane}</th>" for lane in LANES) + "</tr>"]
    for ev in s.timeline:
        lane = ev.lane if ev.lane in LANES else "scenario"
        cells = "".join(
            f"<td><div class='ev {ev.kind} {ev.status}'><b>{_e(ev.kind)}</b> {_e(ev.text)}</div></td>" if lane == name
            else "<td></td>" for name in LANES)
        rows.append(f"<tr><td class=t>{ev.at - t0:.2f}</td>{cells}</tr>")
    return "".join(rows) + "</table>"


def _checks(s: ScenarioResult) -> str:
    rows = []
    for step in s.steps:
        for c in step.checks:
            rows.append(f"<tr><td>{c.line}</td><td>{_e(c.name)}{' <code>' + _e(c.at) + '</code>' if c.at else ''}"
                        f"</td><td>{_e(c.op)} {_e(c.expected)}</td><td>{_e(c.actual)}</td>"
                        f"<td class={'ok' if c.ok else 'bad'}>{'ok' if c.ok else 'FAILED'}</td></tr>")
    if not rows:
        return ""
    return ("<table class=exp><tr><th>line</th><th>check</th><th>expected</th><th>actual</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _scenario_html(s: ScenarioResult) -> str:
    steps = "".join(f"<tr><td>{st.index + 1}</td><td>{st.line}</td><td>{_e(st.kind)}</td><td>{_e(st.title)}</td>"
                    f"<td class={'ok' if st.status == 'passed' else 'bad'}>{st.status}</td>"
                    f"<td>{st.duration_s:.2f}s</td></tr>" for st in s.steps)
    invariants = "".join(f"<li class={'ok' if i.ok else 'bad'}>{_e(i.name)}: "
                         f"{'skipped' if i.skipped else 'ok' if i.ok else _e(i.detail)}</li>" for i in s.invariants)
    failure = f"<pre>{_e(_failure_text(s))}</pre>" if s.status in ("failed", "error", "xfail") else ""
    known = f"<p><b>Known issue:</b> {_e(s.known_issue)}</p>" if s.known_issue else ""
    return (f"<details class=sc {'open' if s.status in ('failed', 'error') else ''}><summary>"
            f"<span class='badge {s.status}'>{s.status}</span> {_e(s.pack)} / {_e(s.name)} "
            f"<small>{s.duration_s:.2f}s · seed {s.seed}{' · exclusive' if s.exclusive else ''} · "
            f"{_e(', '.join(s.tags))}</small></summary>"
            f"<p>{_e(s.description)}</p><p><code>{_e(s.file)}</code></p>{known}{failure}"
            f"<h4>Steps</h4><table><tr><th>#</th><th>line</th><th>kind</th><th>step</th><th>status</th><th>time</th>"
            f"</tr>{steps}</table><h4>Checks</h4>{_checks(s) or '<p>none</p>'}"
            f"<h4>Invariants</h4><ul>{invariants or '<li>not reached</li>'}</ul>"
            f"<h4>Timeline</h4>{_timeline(s)}</details>")


def html_report(suite: SuiteResult) -> str:
    counts = suite.counts()
    summary = "".join(f"<span><span class='badge {k}'>{k}</span> {v}</span>" for k, v in counts.items() if v)
    problems = "".join(f"<pre>{_e(p)}</pre>" for p in suite.problems)
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(_scenario_html(s) for s in suite.scenarios)
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Lockstep scenarios</title>"
            f"<style>{_CSS}</style></head><body><header><h1>Lockstep scenarios</h1>"
            f"<div>{len(suite.scenarios)} scenarios · target {_e(suite.target)} · seed {suite.seed} · "
            f"{suite.duration_s:.1f}s · {suite.workers} worker(s) x concurrency {suite.concurrency} · {made}"
            "</div></header><main>"
            f"<p class=counts>{summary}</p>{problems}{body}</main></body></html>")


def write_reports(suite: SuiteResult, *, json_path: Path | None = None, junit_path: Path | None = None,
                  html_path: Path | None = None) -> list[Path]:
    written = []
    for path, render in ((json_path, lambda: json.dumps(json_report(suite), indent=2, default=str)),
                         (junit_path, lambda: junit_report(suite)), (html_path, lambda: html_report(suite))):
        if path is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(), encoding="utf-8")
        written.append(path)
    return written
