"""Property-based API tests: Schemathesis over the CS OpenAPI of each version, in-process, seeded, bounded.

Checks: no 5xx, documented status codes, JSON content type, responses conform to the per-version schema.
Positive and negative (schema-violating) requests alike must get a documented answer, never a 500.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mocks.cs.system import cs_system
from mocks.kernel.app import create_mock_app
from tests.cs.conftest import ADMIN_TOKEN, KEY_A

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 6}


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi(version: str, mode: GenerationMode) -> None:
    # No rate limit here: the fuzzer makes far more than 200 calls a minute.
    app = create_mock_app(cs_system(limits=[]), admin_token=ADMIN_TOKEN, seed=3)
    schema = schemathesis.openapi.from_asgi(f"/openapi/{version}.json", app).exclude(path_regex="^/_sandbox")
    headers = {"accesskey": KEY_A, "X-Gainsight-Version": version}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    tenant = app.state.registry.create(KEY_A)
    app.state.system.seed(tenant, {"companies": 5})  # reads then answer with real records

    if mode is GenerationMode.NEGATIVE:
        # Only bodies and bounded query parameters can be violated; free-form path ids cannot.
        operations = [op for op in operations if op.body or op.query]
    exercised = 0
    for operation in operations:
        @settings(max_examples=EXAMPLES[mode], derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
            exercised += 1
        except Unsatisfiable:
            # Negative mode: an operation without parameters or body has nothing to violate.
            assert mode is GenerationMode.NEGATIVE
    assert exercised >= (len(operations) if mode is GenerationMode.POSITIVE else 10)
