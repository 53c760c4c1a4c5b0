"""pytest plugin (entry point `pytest11: lockstep`): the sandbox as fixtures, scenario files as test items.

Fixtures (all lazy: nothing starts unless a test asks):
- `lockstep_sandbox`  session-wide in-process Sandbox (all four mocks + the core), seeded by --lockstep-seed
- `lockstep_clients`  {system: httpx.AsyncClient} authenticated as the core-wired tenant
- `lockstep_core`     httpx.AsyncClient on the core's API (/flows, /dlq, /crosswalk, /reconcile)

    async def test_my_integration(lockstep_sandbox):
        await lockstep_sandbox.clients["billing"].post("/v1/customers", data={"name": "Acme"})
        await lockstep_sandbox.quiesce()

Scenario files become items when pytest is given `--lockstep-scenarios` (every *.yaml / *.yml collected), or
for files named `*.scenario.yaml` always. A malformed file is a collection error naming file, line and what is
wrong; a failing scenario shows expected vs actual; a `known_issue:` scenario is an xfail.

DBOS is one per process: the session sandbox is the only in-process one while it lives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ScenarioFile", "ScenarioItem"]

_SESSION: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lockstep", "Lockstep sandbox and scenarios")
    group.addoption("--lockstep-seed", type=int, default=0, help="seed for the sandbox and every scenario")
    group.addoption("--lockstep-scenarios", action="store_true", default=False,
                    help="collect every *.yaml / *.yml under the given paths as Lockstep scenarios")


def _sandbox(config: pytest.Config) -> Any:
    if "sandbox" not in _SESSION:
        from lockstep.sandbox import Sandbox

        box = Sandbox.start(seed=config.getoption("--lockstep-seed"))
        _SESSION["sandbox"] = box
        config.add_cleanup(_close)
    return _SESSION["sandbox"]


def _close() -> None:
    box = _SESSION.pop("sandbox", None)
    if box is not None:
        box.close()


@pytest.fixture(scope="session")
def lockstep_sandbox(pytestconfig: pytest.Config) -> Iterator[Any]:
    """All four mocks + the core in this process, for the whole session."""
    yield _sandbox(pytestconfig)


@pytest.fixture
def lockstep_clients(lockstep_sandbox: Any) -> dict[str, Any]:
    return dict(lockstep_sandbox.clients)


@pytest.fixture
def lockstep_core(lockstep_sandbox: Any) -> Any:
    return lockstep_sandbox.core


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    if parent.config.getoption("--lockstep-scenarios") or file_path.name.endswith((".scenario.yaml",
                                                                                   ".scenario.yml")):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFileProblem(Exception):
    pass


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from lockstep.scenario.loader import ScenarioFileError, load_file

        try:
            loaded = load_file(self.path)
        except ScenarioFileError as exc:
            raise ScenarioFileProblem("\n".join(exc.problems)) from None
        item = ScenarioItem.from_parent(self, name=loaded.scenario.name, loaded=loaded)
        item.extra_keyword_matches.update([*loaded.scenario.tags, loaded.pack])  # -k merge, -k payments
        yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioFileProblem):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ScenarioFailed(Exception):
    pass


class ScenarioItem(pytest.Item):
    def __init__(self, *, loaded: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.result: Any = None

    def runtest(self) -> None:
        from lockstep.scenario.engine import run_scenario
        from lockstep.scenario.reports import _failure_text
        from lockstep.scenario.target import Target

        sandbox = _sandbox(self.config)
        seed = self.config.getoption("--lockstep-seed") or self.loaded.scenario.seed or 0

        async def play() -> Any:
            target = Target(sandbox, kind="in-process", owned=False)
            try:
                return await run_scenario(self.loaded, target, seed=seed, timeline=False)
            finally:  # tenant-wide changes (faults, limits, drift, chaos) never leak into the next test
                problems = await target.restore()
                await target.quiet()
                if problems:
                    raise RuntimeError("could not restore tenant settings: " + "; ".join(problems))

        self.result = asyncio.run(play())
        if self.result.status == "xfail":
            pytest.xfail(f"known issue: {self.loaded.scenario.known_issue}")
        if not self.result.ok:
            raise ScenarioFailed(_failure_text(self.result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioFailed):
            return f"{self.loaded.path}:{self.result.failed_line}: scenario {self.name} {self.result.status}\n" \
                   f"{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, max(0, self.loaded.line_of(("name",)) - 1), f"scenario {self.name}"
