"""Regenerate the consumer pacts (`make pacts`), or check the committed ones are current (`--check`).

    python -m contracts.build              # writes contracts/pacts/
    python -m contracts.build --check      # exit 1 and name the stale files when a rebuild would differ

Every consumer case runs the real connector against Pact's mock server, so a rebuild also proves the
connectors still keep their contracts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from contracts.pactkit import PACT_DIR, SYSTEMS, VERSIONS

__all__ = ["build", "main", "normalized", "stale_files"]


def build(out_dir: Path, systems: tuple[str, ...] = SYSTEMS) -> dict[str, dict[str, int]]:
    """All HTTP pacts (per system and version) and message pacts; returns interaction counts."""
    import importlib

    from contracts.consumer.harness import record_http
    from contracts.consumer.messages import record_messages

    counts: dict[str, dict[str, int]] = {}
    for system in systems:
        module = importlib.import_module(f"contracts.consumer.{system}")
        counts[system] = record_http(system, module.CASES, module.make_client, out_dir, VERSIONS[system])
    for system, n in record_messages(out_dir).items():
        if system in systems:
            counts.setdefault(system, {})["events"] = n
    return counts


def normalized(path: Path) -> Any:
    """A pact's content without what varies by tool version (the FFI's metadata) or by merge order."""
    data = json.loads(path.read_text())
    data.get("metadata", {}).pop("pactRust", None)
    data["interactions"] = sorted(data.get("interactions", []), key=lambda i: json.dumps(i, sort_keys=True))
    return data


def stale_files(committed: Path, fresh: Path) -> list[str]:
    """Pact files that differ between the committed tree and a fresh build (missing / extra / changed)."""
    old = {p.relative_to(committed).as_posix() for p in committed.rglob("*.json")}
    new = {p.relative_to(fresh).as_posix() for p in fresh.rglob("*.json")}
    out = [f"{name}: not committed (run make pacts)" for name in sorted(new - old)]
    out += [f"{name}: committed but no longer generated" for name in sorted(old - new)]
    out += [f"{name}: differs from a fresh build (run make pacts)" for name in sorted(old & new)
            if normalized(committed / name) != normalized(fresh / name)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PACT_DIR, help="where to write (default: contracts/pacts)")
    parser.add_argument("--check", action="store_true", help="compare a fresh build with --out; write nothing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.check:
        with tempfile.TemporaryDirectory(prefix="lockstep-pacts-") as tmp:
            build(Path(tmp))
            stale = stale_files(args.out, Path(tmp))
        if stale:
            print("stale pact files:\n" + "\n".join(f"  {s}" for s in stale), file=sys.stderr)
            return 1
        print(f"pacts are current ({time.perf_counter() - started:.1f}s)")
        return 0
    counts = build(args.out)
    for system, per in counts.items():
        print(f"{system}: " + ", ".join(f"{k}: {v} interactions" for k, v in per.items()))
    print(f"pacts written to {args.out} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
