"""Runs consumer cases: each declares its interactions on a fresh V4 pact, then drives the REAL connector
against Pact's mock server (the Rust FFI) and checks what the connector made of the answers.

One Pact mock server per case: a case may need the same request answered differently than another case
does (a 404 here, a 200 there), and one server cannot tell those apart. The cases of one provider and
version are merged into one pact file (`write_file(overwrite=False)`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pact import Pact

from contracts.pactkit import CONSUMER, http_pact_path, provider_name

__all__ = ["Case", "ConsumerFailure", "record_http", "run_case"]


@dataclass(frozen=True)
class Case:
    """One connector behaviour: `declare(pact, version)` adds its interactions, `drive(client, version)`
    calls the connector's public method(s) and asserts on the result."""

    name: str
    declare: Callable[[Pact, str], None]
    drive: Callable[[Any, str], Awaitable[None]]


class ConsumerFailure(AssertionError):
    """The connector's requests did not match the contract (or it could not read the contracted answers)."""


def new_pact(system: str) -> Pact:
    return Pact(CONSUMER, provider_name(system)).with_specification("V4")


async def _drive(make_client: Callable[[str, str], Any], url: str, version: str, case: Case) -> None:
    client = make_client(url, version)
    try:
        await case.drive(client, version)
    finally:
        await client.aclose()


def run_case(system: str, version: str, case: Case, make_client: Callable[[str, str], Any],
             out_dir: Path | None) -> Pact:
    """Declare, serve, drive, check; merge into `out_dir`'s pact file when given."""
    pact = new_pact(system)
    case.declare(pact, version)
    try:
        with pact.serve(raises=False, verbose=False) as server:
            error: BaseException | None = None
            try:
                asyncio.run(_drive(make_client, str(server.url), version, case))
            except Exception as exc:
                error = exc
            mismatches = server.mismatches
    except Exception as exc:  # the FFI refusing the declared interactions
        raise ConsumerFailure(f"{system} {version} {case.name}: {exc}") from exc
    if mismatches or error is not None:
        lines = [f"{system} {version} case {case.name!r} broke its contract:"]
        lines += [f"  - {m}" for m in mismatches]
        if error is not None:
            lines.append(f"  - the connector raised {type(error).__name__}: {error}")
        raise ConsumerFailure("\n".join(lines)) from error
    if out_dir is not None:
        pact.write_file(http_pact_path(out_dir, system, version).parent, overwrite=False)
    return pact


def record_http(system: str, cases: list[Case], make_client: Callable[[str, str], Any], out_dir: Path,
                versions: tuple[str, ...]) -> dict[str, int]:
    """All cases for all versions of one provider; returns interactions written per version."""
    counts = {}
    for version in versions:
        target = http_pact_path(out_dir, system, version)
        if target.parent.exists():
            shutil.rmtree(target.parent)
        target.parent.mkdir(parents=True)
        for case in cases:
            run_case(system, version, case, make_client, out_dir)
        # Cases share some interactions (a read-back); the merged file holds each once.
        counts[version] = len(json.loads(target.read_text())["interactions"])
    return counts
