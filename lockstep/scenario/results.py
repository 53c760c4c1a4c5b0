"""What a run produces: per scenario its steps, checks (expected vs actual), invariants and timeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "Event", "InvariantResult", "ScenarioResult", "StepResult", "SuiteResult"]

# passed / failed (a check did not hold) / error (the scenario could not run: a call failed, a timeout) /
# xfail (a known issue failed as expected) / xpass (a known issue passed: the bug is fixed, drop the mark)
STATUSES = ("passed", "failed", "error", "xfail", "xpass")


@dataclass
class Check:
    """One expectation: what was looked at, the operator, what was expected and what was found."""

    name: str
    source: str
    at: str | None
    op: str
    expected: Any
    actual: Any
    ok: bool
    line: int = 0


@dataclass
class StepResult:
    index: int
    kind: str
    line: int
    title: str
    status: str = "passed"  # passed | failed | error | skipped
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0


@dataclass
class InvariantResult:
    name: str
    ok: bool
    detail: str = ""
    skipped: bool = False


@dataclass
class Event:
    """One line of the cross-system timeline: `lane` is a system, core or scenario."""

    at: float  # epoch seconds (wall clock; the timeline is for reading, never for deciding)
    lane: str
    kind: str  # call | action | clock | fault | limit | drift | chaos | await | expect | flow | step | webhook
    text: str
    status: str = "ok"


@dataclass
class ScenarioResult:
    id: str
    name: str
    pack: str
    file: str
    description: str
    tags: list[str]
    seed: int
    exclusive: bool
    known_issue: str | None
    status: str = "passed"
    message: str = ""  # the first failure, in one paragraph (expected vs actual)
    failed_line: int = 0
    steps: list[StepResult] = field(default_factory=list)
    invariants: list[InvariantResult] = field(default_factory=list)
    timeline: list[Event] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """xpass is ok too: a known issue that did not reproduce (a race that went the good way, or a fix
        landed) must not fail the suite; reports flag it so the mark can be dropped once fixed for good."""
        return self.status in ("passed", "xfail", "xpass")

    def to_dict(self, *, timeline: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not timeline:
            out.pop("timeline")
        return out


@dataclass
class SuiteResult:
    target: str
    seed: int
    scenarios: list[ScenarioResult] = field(default_factory=list)
    duration_s: float = 0.0
    concurrency: int = 1
    workers: int = 1
    problems: list[str] = field(default_factory=list)  # files that could not be loaded

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.scenarios)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for s in self.scenarios:
            out[s.status] += 1
        return out
