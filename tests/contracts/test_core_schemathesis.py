"""Schemathesis over the core's own API, in-process (ASGI) with a real runtime (DBOS on SQLite), seeded and
bounded: every operation's responses must be documented, schema-conformant and never a 5xx. Then the
stateful phase: the core's document carries no OpenAPI links, so this test declares the links a client
follows (the DLQ -> one entry; flows -> one flow -> its trace; a replay -> the new attempt) and lets
Schemathesis chain the calls.

`LOCKSTEP_FUZZ_EXAMPLES` raises the number of examples (`make fuzz`).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from dbos import DBOS
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from contracts.pactkit import SYSTEMS, TOKENS, VERSIONS
from core import trace, wiring
from core.api import create_core_app
from core.connectors import ClientLimiter, Limits
from core.intake.router import register_flow
from core.runtime import Runtime
from core.wiring import SystemEndpoint, build_connections
from lockstep.apps import mock_app
from tests.core._runtime_kit import billing_body, launched_runtime, signed_headers, unique, wait_for

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("LOCKSTEP_FUZZ_EXAMPLES", "10"))
BROKEN = "fuzz:broken"


class FuzzParkError(Exception):
    dlq_reason = "business rule"


@DBOS.step()
def _fuzz_step(key: str) -> str:
    trace.record("erp", "PUT /services/rest/record/v1/invoice/eid:fuzz", "204")
    if key.startswith(BROKEN):
        raise FuzzParkError("customer is on credit hold")
    return "ok"


def _fuzz_flow(event: dict[str, Any]) -> str:
    return _fuzz_step(event["business_key"])


register_flow(["billing:invoice.voided"], lambda e: f"fuzz:{e.aggregate_key}"
              if not (e.payload["data"]["object"].get("metadata") or {}).get("broken")
              else f"{BROKEN}:{e.aggregate_key}", _fuzz_flow, name="contracts_fuzz_demo")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    # Reconcile reads every system: give the core connections to in-process mocks (else it answers 503).
    # No client-side limiter: the calls come from the test client's event loop, not the flows' one.
    endpoints = {system: SystemEndpoint(base_url=f"http://{system}.mock", credential=TOKENS[system],
                                        api_version=VERSIONS[system][0],
                                        transport=httpx.ASGITransport(app=mock_app(system)),
                                        options={"limiter": ClientLimiter(Limits())})
                 for system in SYSTEMS}
    wiring.install(build_connections(endpoints))
    try:
        for runtime in launched_runtime("sqlite", Path(tmp_path_factory.mktemp("core-fuzz"))):
            app = create_core_app(runtime=runtime)
            _seed(app, runtime)
            yield app
    finally:
        wiring.install(None)


def _seed(app: FastAPI, runtime: Runtime) -> None:
    """A finished flow and a parked one, so flows, traces and the DLQ have something to show."""
    client = TestClient(app)
    for broken in (False, True):
        invoice = unique("in")
        body = billing_body("invoice.voided", invoice, created=int(time.time()),
                            obj={"metadata": {"broken": "yes"} if broken else {}})
        answer = client.post("/webhooks/billing", content=body, headers=signed_headers("billing", body))
        assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text
        wait_for(answer.json()["flows"][0]["workflow_id"])
    assert runtime.dlq.list(limit=1), "the broken flow must be parked"


def _schema(app: FastAPI, *, links: bool) -> Any:
    raw = copy.deepcopy(app.openapi())
    if links:
        _add_links(raw)
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = app  # calls go to the app in-process, as from_asgi would
    return schema


def _add_links(doc: dict[str, Any]) -> None:
    paths = doc["paths"]

    def link(path: str, method: str, status: str, name: str, operation: str, parameters: dict[str, str]) -> None:
        response = paths[path][method]["responses"][status]
        response.setdefault("links", {})[name] = {"operationId": operation, "parameters": parameters}

    ops = {(p, m): op.get("operationId") for p, item in paths.items() for m, op in item.items()}
    get_dlq_entry = ops[("/dlq/{dlq_id}", "get")]
    get_flow = ops[("/flows/{flow_id}", "get")]
    link("/dlq", "get", "200", "entry", get_dlq_entry, {"dlq_id": "$response.body#/entries/0/id"})
    link("/dlq/{dlq_id}/replay", "post", "202", "attempt", get_flow, {"flow_id": "$response.body#/attempt_id"})
    link("/flows", "get", "200", "flow", get_flow, {"flow_id": "$response.body#/flows/0/workflow_id"})
    link("/flows/{flow_id}", "get", "200", "trace", ops[("/trace/{correlation_id}", "get")],
         {"correlation_id": "$response.body#/correlation_id"})


def test_core_api_conforms_to_its_openapi(app: FastAPI) -> None:
    schema = _schema(app, links=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failure, reported together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


def test_core_api_stateful_links(app: FastAPI) -> None:
    schema = _schema(app, links=True)
    machine = schema.as_state_machine()
    # No shrinking phase: the core's state moves on between runs (every replay is a new DBOS fork), which
    # shrinking would misread as a flaky strategy; a failure is reported as generated.
    run_state_machine_as_test(machine, settings=settings(
        max_examples=max(3, EXAMPLES // 2), stateful_step_count=5, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck)))
