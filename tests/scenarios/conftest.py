"""One in-process Sandbox for the scenario-engine tests (package scope: DBOS is one per process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lockstep.sandbox import Sandbox
from lockstep.scenario.cli import packs_dir
from lockstep.scenario.loader import LoadedScenario, load_paths
from lockstep.scenario.target import Target

PACKS = packs_dir()


@pytest.fixture(scope="package")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from core.settings import CoreSettings

    settings = CoreSettings(data_dir=tmp_path_factory.mktemp("scenarios") / "core", dbos_log_level="CRITICAL")
    sandbox = Sandbox.start(seed=0, core_settings=settings)
    try:
        yield sandbox
    finally:
        sandbox.close()


@pytest.fixture
def target(box: Sandbox) -> Target:
    return Target(box, kind="in-process", owned=False)


def scenario(name: str) -> LoadedScenario:
    loaded, problems = load_paths([PACKS])
    assert not problems, problems
    [found] = [s for s in loaded if s.scenario.name == name]
    return found


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path
