"""Property-based API tests: Schemathesis over the ERP's own OpenAPI, in-process, seeded and bounded.

Both API versions: each run loads that version's document (`/openapi/<version>.json`) and pins the same
version on every request, so responses must conform to the drifted schema too. Checks: no 5xx,
documented status codes and content types, responses that validate against the schema.
(Driven with hypothesis directly: schemathesis' pytest plugin does not load under pytest 9.)
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from mocks.erp.versions import V2024_2, V2025_1
from tests.erp.conftest import ADMIN, TOKEN_A, client_for, make_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 6


def seeded_app() -> FastAPI:
    app = make_app()

    async def seed() -> None:
        async with client_for(app) as client:
            await client.get("/services/rest/record/v1/customer")
            seeded = await client.post(f"/_sandbox/tenants/{TOKEN_A}/seed", json={"customers": 5}, headers=ADMIN)
            assert seeded.status_code == 200

    asyncio.run(seed())
    return app


@pytest.mark.parametrize("version", [V2024_2, V2025_1])
def test_erp_api_conforms_to_its_openapi(version: str) -> None:
    schema = schemathesis.openapi.from_asgi(f"/openapi/{version}.json", seeded_app())
    headers = {"Authorization": f"Bearer {TOKEN_A}", "X-NetSuite-Version": version}
    # The vendor API only: the /_sandbox control API is the kernel's, with its own tests.
    operations = [op for op in (result.ok() for result in schema.get_all_operations())
                  if op.path.startswith("/services/")]
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
