"""`lockstep contracts verify`: every contract check, a consumer x provider x version matrix, JUnit XML.

Rows:
- consumer: the committed pacts equal a fresh build (the connectors still keep them);
- http: each provider's pact for version P verified against its mock serving version M, for every P x M.
  P == M must pass (the gate); P != M says whether a connector pinned to P survives an account upgraded to
  M (a drift report when not; path-versioned APIs such as Salesforce's pass);
- events: each message pact verified against the mock's real webhook deliveries;
- openapi: every snapshot still matches its mock (no change without a new version).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from contracts.pactkit import CONSUMER, PACT_DIR, SYSTEMS, VERSIONS, event_pact_path, http_pact_path, provider_name

__all__ = ["Row", "junit_xml", "render_matrix", "run_all"]


@dataclass
class Row:
    kind: str  # consumer | http | events | openapi
    provider: str
    pact_version: str
    mock_version: str
    interactions: int
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    gating: bool = True
    failed: int = 0  # interactions with at least one failure

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def name(self) -> str:
        if self.kind == "http":
            return f"{self.provider} pact {self.pact_version} vs mock {self.mock_version}"
        return f"{self.provider} {self.kind}"


def run_all(systems: tuple[str, ...] = SYSTEMS, *, pact_dir: Path = PACT_DIR, consumer: bool = True,
            openapi: bool = True) -> list[Row]:
    from contracts.provider.events import verify_events
    from contracts.provider.verify import verify_http

    rows: list[Row] = []
    if consumer:
        from contracts.build import build, stale_files

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="lockstep-pacts-") as tmp:
            try:
                counts = build(Path(tmp), systems)
                stale = [s for s in stale_files(pact_dir, Path(tmp)) if s.split("/", 1)[0] in systems]
            except AssertionError as exc:  # a connector broke its contract
                counts, stale = {}, [str(exc)]
        total = sum(sum(v.values()) for v in counts.values())
        rows.append(Row("consumer", CONSUMER, "-", "-", total, stale, time.perf_counter() - started))
    for system in systems:
        for pact_version in VERSIONS[system]:
            for mock_version in VERSIONS[system]:
                result = verify_http(system, http_pact_path(pact_dir, system, pact_version), mock_version=mock_version)
                rows.append(Row("http", system, pact_version, mock_version, result.interactions,
                                [str(f) for f in result.failures], result.seconds,
                                gating=pact_version == mock_version,
                                failed=len({f.interaction for f in result.failures})))
        events = verify_events(system, event_pact_path(pact_dir, system))
        rows.append(Row("events", system, "-", "-", events.interactions, [str(f) for f in events.failures],
                        events.seconds, failed=len({f.interaction for f in events.failures})))
    if openapi:
        from contracts.openapi import check

        started = time.perf_counter()
        problems = check(systems=systems)
        rows.append(Row("openapi", "snapshots", "-", "-", sum(len(VERSIONS[s]) for s in systems), problems,
                        time.perf_counter() - started))
    return rows


def render_matrix(rows: list[Row]) -> str:
    lines = [f"{'consumer':<14} {'provider':<26} {'pact':<18} {'mock':<18} {'result':<22} {'time':>6}"]
    for row in rows:
        provider = provider_name(row.provider) if row.kind == "http" else (
            f"{provider_name(row.provider)}-events" if row.kind == "events" else row.provider)
        passed = f"{max(row.interactions - row.failed, 0)}/{row.interactions}"
        if row.ok:
            result = f"pass ({row.interactions})" if row.kind != "openapi" else f"pass ({row.interactions} docs)"
        elif row.gating:
            result = f"FAIL ({passed})" if row.kind in ("http", "events") else "FAIL"
        else:
            result = f"drift ({passed} pass)"
        lines.append(f"{CONSUMER:<14} {provider:<26} {row.pact_version:<18} {row.mock_version:<18} {result:<22} "
                     f"{row.seconds:>5.1f}s")
    gate = [r for r in rows if r.gating and not r.ok]
    drift = [r for r in rows if not r.gating and not r.ok]
    lines.append("")
    lines.append(f"{len(rows) - len(gate) - len(drift)} pass, {len(gate)} fail, {len(drift)} expected drift "
                 "(a connector pinned to one version against an account on another)")
    for row in gate + drift:
        label = "FAIL" if row.gating else "drift"
        lines.append(f"{label}: {row.name}")
        lines += [f"    {f}" for f in row.failures[:25]]
        if len(row.failures) > 25:
            lines.append(f"    ... {len(row.failures) - 25} more")
    return "\n".join(lines)


def junit_xml(rows: list[Row]) -> str:
    suites = ET.Element("testsuites", name="lockstep contracts")
    for kind in ("consumer", "http", "events", "openapi"):
        members = [r for r in rows if r.kind == kind]
        if not members:
            continue
        failures = sum(1 for r in members if r.gating and not r.ok)
        suite = ET.SubElement(suites, "testsuite", name=f"contracts.{kind}", tests=str(len(members)),
                              failures=str(failures), errors="0", skipped="0",
                              time=f"{sum(r.seconds for r in members):.3f}")
        for row in members:
            case = ET.SubElement(suite, "testcase", classname=f"contracts.{kind}.{row.provider}", name=row.name,
                                 time=f"{row.seconds:.3f}")
            if row.failures and row.gating:
                failure = ET.SubElement(case, "failure", message=row.failures[0][:500], type="ContractFailure")
                failure.text = "\n".join(row.failures)
            elif row.failures:
                out = ET.SubElement(case, "system-out")
                out.text = "expected drift (informational):\n" + "\n".join(row.failures)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
