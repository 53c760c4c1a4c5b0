"""Provider verification: replay a pact against a mock served by uvicorn on a real socket.

    result = verify_http("erp", pact_file, mock_version="2025.1")
    result.ok, result.failures   # [Failure(interaction, field, detail)]

The mock runs on an ephemeral port with its tenant pinned to `mock_version` (the vendor account's API
version); a second tiny server answers the verifier's provider-state calls by driving the mock's control
API and returning the generated ids for the pact's `${...}` expressions.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pact import Verifier

from contracts.pactkit import provider_name
from contracts.provider import states
from lockstep.systems import SYSTEMS
from mocks.kernel.app import create_mock_app
from mocks.kernel.serving import ServerThread

__all__ = ["Failure", "Verification", "quiet_fds", "run_verifier", "serve_mock", "verify_http"]


@contextlib.contextmanager
def quiet_fds() -> Iterator[None]:
    """The FFI verifier prints its report to the process's stdout (and pact's helper servers log to stderr);
    the same report is read back with `Verifier.output()`, so silence the file descriptors meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_verifier(verifier: Verifier) -> dict[str, Any]:
    """Runs the verification quietly; returns the FFI's JSON results (failures included, never raised)."""
    with quiet_fds(), contextlib.suppress(RuntimeError):
        verifier.verify()
    return verifier.results


@dataclass(frozen=True)
class Failure:
    interaction: str
    field: str | None
    detail: str

    def __str__(self) -> str:
        where = f" at {self.field}" if self.field else ""
        return f"{self.interaction}{where}: {self.detail}"


@dataclass
class Verification:
    system: str
    pact_version: str
    mock_version: str
    interactions: int
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> str:
        head = (f"{self.system}: pact for {self.pact_version} against the mock on {self.mock_version}: "
                f"{self.interactions - len({f.interaction for f in self.failures})}/{self.interactions} "
                f"interactions pass")
        return "\n".join([head, *(f"  FAIL {f}" for f in self.failures)])


def serve_mock(system: str, admin_token: str, mutate: Any = None) -> ServerThread:
    """The mock on a real socket; `mutate(app)` lets a test break it on purpose."""
    app = create_mock_app(SYSTEMS[system].build(), admin_token=admin_token)
    if mutate is not None:
        mutate(app)
    return ServerThread(app)


def _state_app(system: str, version: str, control: httpx.Client, errors: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/_pact/state")
    async def change_state(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("action", "setup") != "setup":
            return JSONResponse({})
        try:
            values = states.setup(control, system, version, body["state"], body.get("params"))
        except Exception as exc:  # reported as the interaction's failure, and kept for the report
            errors.append(f"{body.get('state')}: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=500)
        return JSONResponse(values)

    return app


def verify_http(system: str, pact_file: Path, *, mock_version: str, mutate: Any = None) -> Verification:
    pact = json.loads(pact_file.read_text())
    pact_version = pact_file.parent.name
    interactions = [i["description"] for i in pact["interactions"]]
    token = secrets.token_urlsafe(16)
    started = time.perf_counter()
    errors: list[str] = []
    with serve_mock(system, token, mutate) as mock, \
            httpx.Client(base_url=mock.url, headers={"Lockstep-Admin-Token": token}, timeout=30) as control, \
            ServerThread(_state_app(system, mock_version, control, errors)) as state_server:
        verifier = (Verifier(provider_name(system), host="127.0.0.1")
                    .add_transport(url=mock.url)
                    .add_source(pact_file)
                    .state_handler(f"{state_server.url}/_pact/state", body=True)
                    .set_request_timeout(30_000)
                    .set_coloured_output(enabled=False))
        results = run_verifier(verifier)
        output = verifier.output(strip_ansi=True)
    outcome = Verification(system, pact_version, mock_version, len(interactions),
                           failures=_failures(results, errors), seconds=time.perf_counter() - started, output=output)
    return outcome


def _description(name: str) -> str:
    """The verifier names an interaction "Verifying a pact between A and B Given S - D": keep "D (given S)"."""
    match = re.match(r"^Verifying a pact between .+? and .+?(?: Given (.+?))? - (.+)$", name)
    if not match:
        return name
    state, description = match.groups()
    return f"{description} (given {state})" if state else description


def _failures(results: dict[str, Any], state_errors: list[str]) -> list[Failure]:
    out: list[Failure] = []
    for error in results.get("errors") or []:
        interaction = _description(error.get("interaction") or "?")
        mismatch = error.get("mismatch") or {}
        mismatches = mismatch.get("mismatches") or []
        if not mismatches:
            out.append(Failure(interaction, None, mismatch.get("message") or json.dumps(mismatch)[:500]))
            continue
        for m in mismatches:
            kind = m.get("type")
            if kind == "BodyMismatch":
                out.append(Failure(interaction, m.get("path"), m.get("mismatch", "")))
            elif kind == "StatusMismatch":
                out.append(Failure(interaction, "status", f"expected {m.get('expected')}, got {m.get('actual')}"
                                   + (f" ({m.get('mismatch')})" if m.get("mismatch") else "")))
            elif kind == "HeaderMismatch":
                out.append(Failure(interaction, f"header {m.get('key')}", m.get("mismatch", "")))
            else:
                out.append(Failure(interaction, m.get("path") or m.get("key"), m.get("mismatch") or json.dumps(m)))
    out += [Failure("provider state", None, e) for e in state_errors]
    return out
