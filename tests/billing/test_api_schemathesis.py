"""Property-based API tests: schemathesis over billing's own OpenAPI document, in-process, seeded, bounded.

Every generated request (valid or not) must get an answer that is not a 5xx and that matches the
documented response schema (errors: the Stripe error envelope).
"""

from __future__ import annotations

import time

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from mocks.billing.openapi import billing_openapi
from tests.billing.conftest import KEY_A, make_app

# Creating or updating webhook endpoints would make the mock deliver to whatever URL was generated.
EXCLUDED = {("POST", "/v1/webhook_endpoints"), ("POST", "/v1/webhook_endpoints/{webhook_endpoint}")}
BUDGET_S = 60


@pytest.mark.parametrize("version", ["2023-08-16", "2026-10-28.endive"])
def test_fuzzed_requests_never_5xx_and_responses_conform(version: str) -> None:
    app = make_app()
    schema = schemathesis.openapi.from_dict(billing_openapi(version))
    schema.app = app
    headers = {"Authorization": f"Bearer {KEY_A}", "Stripe-Version": version}
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 40
    started = time.monotonic()
    tested = 0
    failures: list[str] = []
    for operation in operations:
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue

        @hypothesis.settings(max_examples=10, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @hypothesis.given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance],
                                   headers=headers)

        try:
            check()
        except Exception as exc:  # collect every operation's first failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: {str(exc)[:600]}")
        tested += 1
        assert time.monotonic() - started < BUDGET_S, "schemathesis run over budget"
    assert not failures, "\n\n".join(failures)
    assert tested == len(operations) - sum(1 for o in operations if (o.method.upper(), o.path) in EXCLUDED)
