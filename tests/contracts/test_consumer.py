"""Consumer side: the committed pacts are what the real connectors and intake produce today, and a
connector that changes its requests, or an intake that reads an event differently, breaks loudly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pact.error import PactVerificationError

from contracts.build import build, stale_files
from contracts.consumer import cs, erp
from contracts.consumer.harness import ConsumerFailure, run_case
from contracts.consumer.messages import MESSAGES, handle, record_messages
from contracts.pactkit import PACT_DIR, SYSTEMS, VERSIONS, event_pact_path, http_pact_path
from core.connectors import ErpClient


def test_committed_pacts_are_current(tmp_path: Path) -> None:
    # Runs every consumer case (the connectors against Pact's mock server) and every message case.
    counts = build(tmp_path)
    assert stale_files(PACT_DIR, tmp_path) == [], "run `make pacts` and commit contracts/pacts/"
    for system in SYSTEMS:
        for version in VERSIONS[system]:
            assert http_pact_path(PACT_DIR, system, version).exists()
            assert counts[system][version] >= 9, (system, version)
        assert event_pact_path(PACT_DIR, system).exists()


def test_a_stale_pact_is_named(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    record_messages(fresh)
    committed = tmp_path / "committed"
    for path in fresh.rglob("*.json"):
        target = committed / path.relative_to(fresh)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text().replace("invoice.voided", "invoice.deleted", 1))
    stale = stale_files(committed, fresh)
    assert stale == ["billing/events/lockstep-core-lockstep-mock-billing-events.json: differs from a fresh build "
                     "(run make pacts)"]


class RenamingErpClient(ErpClient):
    """A connector 'refactor' that sends `e_mail` where NetSuite expects `email`."""

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        body = kwargs.get("json")
        if isinstance(body, dict) and "email" in body:
            kwargs["json"] = {("e_mail" if k == "email" else k): v for k, v in body.items()}
        return await super()._request(method, path, **kwargs)


def test_a_connector_sending_a_renamed_field_breaks_its_contract() -> None:
    case = next(c for c in erp.CASES if c.name == "update_customer")

    def make_client(url: str, version: str) -> ErpClient:
        return RenamingErpClient(base_url=url, token="contracts-erp", api_version=version,
                                 retry=erp.make_client(url, version).retry)

    with pytest.raises(ConsumerFailure) as caught:
        run_case("erp", "2024.2", case, make_client, None)
    message = str(caught.value)
    assert "case 'update_customer' broke its contract" in message
    assert "PATCH /services/rest/record/v1/customer/eid:CUST-0001" in message
    assert "e_mail" in message and "email" in message


def test_a_connector_that_cannot_read_the_contracted_answer_fails() -> None:
    # The v1 connector against the v2 contract: the body has CsmId / Stage codes the v1 mapping refuses.
    case = next(c for c in cs.CASES if c.name == "get_company")
    with pytest.raises(ConsumerFailure) as caught:
        run_case("cs", "v2", case, lambda url, version: cs.make_client(url, "v1"), None)
    assert "SchemaDriftError" in str(caught.value) and "company" in str(caught.value)


def test_message_handler_runs_the_real_intake() -> None:
    paid = next(c for c in MESSAGES if c.event_type == "invoice.paid")
    body = (b'{"id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1767225600, "data": '
            b'{"object": {"id": "in_1", "object": "invoice", "status": "paid", "attempt_count": 2, '
            b'"customer": "cus_1"}}}')
    assert sorted(handle(paid, body)) == [("failed_payment", "failed-payment:in_1:paid"),
                                          ("invoice_sync", "invoice-sync:in_1:paid")]
    # A first-attempt payment is not a recovery: the failed-payment flow must not start.
    with pytest.raises(AssertionError, match="starts flows"):
        handle(paid, body.replace(b'"attempt_count": 2', b'"attempt_count": 1'))


def test_a_message_the_core_reads_differently_fails_verification(tmp_path: Path) -> None:
    from contracts.consumer import messages

    wrong = replace(next(c for c in MESSAGES if c.event_type == "invoice.finalized"),
                    flows={"failed_payment": "failed-payment:"})
    with pytest.raises(PactVerificationError) as caught:
        messages._declare("billing", [wrong]).verify(lambda body, _m: handle(wrong, body or b""), "Async")
    [error] = caught.value.errors
    assert error.description == "a billing invoice.finalized event"
    assert "starts flows ['invoice_sync'], expected ['failed_payment']" in str(error.error)
