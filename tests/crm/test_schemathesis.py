"""Property-based API test: Schemathesis drives the CRM's own OpenAPI in process, seeded and bounded.

Checks: no 5xx, documented status codes, declared content types, responses matching their schemas.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.crm.conftest import TOKEN_A, make_app

APP = make_app(daily_quota=1_000_000)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).include(path_regex="^/services/data")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_crm_api_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN_A}"}, checks=CHECKS)
