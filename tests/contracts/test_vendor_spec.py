"""The billing pact's expectations hold against Stripe's own published spec (2023-08-16), not just the mock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.pactkit import PACT_DIR, http_pact_path
from contracts.vendor_spec import DEFAULT_STRIPE_SPEC, spec_gaps

pytestmark = pytest.mark.skipif(not DEFAULT_STRIPE_SPEC.exists(), reason="fidelity spec not available")
PACT = http_pact_path(PACT_DIR, "billing", "2023-08-16")


def test_billing_pact_only_expects_what_stripe_documents() -> None:
    assert spec_gaps(PACT) == {}


def test_an_expectation_stripe_does_not_document_is_named(tmp_path: Path) -> None:
    pact = json.loads(PACT.read_text())
    for interaction in pact["interactions"]:
        if interaction["description"] == "a request for a subscription":
            body = interaction["response"]["body"]["content"]
            body["items"]["data"][0]["current_period_end"] = 1769904000  # the endive shape, not 2023-08-16
            body["cancel_at_period_end"] = "no"
    broken = tmp_path / "pact.json"
    broken.write_text(json.dumps(pact))
    gaps = spec_gaps(broken)
    assert list(gaps) == ["a request for a subscription"]
    assert sorted(gaps["a request for a subscription"]) == [
        "$.cancel_at_period_end: string where the spec has boolean",
        "$.items.data[].current_period_end: not in the spec's response"]
