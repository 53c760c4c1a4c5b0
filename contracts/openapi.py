"""OpenAPI snapshots: the vendor API of every mock, per API version, under contracts/openapi/<system>/<version>.json.

    python -m contracts.openapi            # (re)write the snapshots (`make openapi`)
    python -m contracts.openapi --check    # exit 1 when a mock's API changed while its version did not

A snapshot is the published shape of one API version. Changing what a version serves without declaring a
new version is the drift real vendors are blamed for, so `--check` (run by `make test`) fails on it; a
deliberate change is either a new version (mocks/<system>/versions.py) or a fidelity fix, re-snapshotted
with `make openapi` and reviewed in the diff.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from contracts.pactkit import SYSTEMS

__all__ = ["OPENAPI_DIR", "check", "generate", "load", "snapshot_path", "write"]

OPENAPI_DIR = Path(__file__).resolve().parent / "openapi"
CONTROL_PREFIX = "/_sandbox"


def snapshot_path(system: str, version: str, root: Path = OPENAPI_DIR) -> Path:
    return root / system / f"{version}.json"


def generate(system: str) -> dict[str, dict[str, Any]]:
    """version -> the vendor API's OpenAPI document on that version (the sandbox control API left out)."""
    from lockstep.systems import SYSTEMS as MOCKS
    from mocks.kernel.app import create_mock_app

    mock = MOCKS[system].build()
    base = create_mock_app(mock, admin_token="snapshot").openapi()
    out = {}
    for version in mock.versions.names():
        doc = mock.versions.openapi(base, version)
        doc["paths"] = {p: item for p, item in doc.get("paths", {}).items() if not p.startswith(CONTROL_PREFIX)}
        out[version] = doc
    return out


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n"


def load(system: str, version: str, root: Path = OPENAPI_DIR) -> dict[str, Any]:
    path = snapshot_path(system, version, root)
    if not path.exists():
        known = sorted(p.stem for p in (root / system).glob("*.json")) if (root / system).exists() else []
        raise FileNotFoundError(f"no OpenAPI snapshot for {system} {version}; known versions: "
                                f"{', '.join(known) or 'none (run make openapi)'}")
    return json.loads(path.read_text())


def write(root: Path = OPENAPI_DIR) -> list[Path]:
    written = []
    for system in SYSTEMS:
        for version, doc in generate(system).items():
            path = snapshot_path(system, version, root)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_dump(doc))
            written.append(path)
    return written


def check(root: Path = OPENAPI_DIR, systems: tuple[str, ...] = SYSTEMS) -> list[str]:
    """Problems: a snapshot that changed while its version did not, a version without a snapshot, a snapshot of
    a version the mock no longer serves."""
    from contracts.drift import classify

    problems = []
    for system in systems:
        fresh = generate(system)
        committed = {p.stem for p in (root / system).glob("*.json")} if (root / system).exists() else set()
        for version, doc in fresh.items():
            path = snapshot_path(system, version, root)
            if not path.exists():
                problems.append(f"{system} {version}: no snapshot (run make openapi and commit it)")
                continue
            old = json.loads(path.read_text())
            if _dump(old) != _dump(doc):
                changes = classify(old, doc)
                listed = "; ".join(str(c) for c in changes[:5]) or "documentation / metadata only"
                more = f" (+{len(changes) - 5} more)" if len(changes) > 5 else ""
                problems.append(f"{system} {version}: the API changed but its version did not: {listed}{more}. "
                                "Declare a new version in mocks/" + system + "/versions.py, or re-snapshot a "
                                "fidelity fix with make openapi")
        problems += [f"{system} {v}: snapshot of a version the mock no longer serves" for v in
                     sorted(committed - set(fresh))]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for path in write():
        print(f"wrote {path.relative_to(OPENAPI_DIR.parent.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
