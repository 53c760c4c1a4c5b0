"""Provider side: each mock, on a real socket, honours the committed pacts of its own API version; the
webhooks it really sends honour the message pacts; a pact of one version against a mock pinned to another
fails with a report naming the interactions and fields; a mock whose answers break is caught."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from contracts.pactkit import PACT_DIR, SYSTEMS, VERSIONS, event_pact_path, http_pact_path
from contracts.provider.events import verify_events
from contracts.provider.verify import verify_http

PAIRS = [(system, version) for system in SYSTEMS for version in VERSIONS[system]]


@pytest.mark.parametrize(("system", "version"), PAIRS, ids=[f"{s}-{v}" for s, v in PAIRS])
def test_mock_honours_the_pact_of_its_version(system: str, version: str) -> None:
    result = verify_http(system, http_pact_path(PACT_DIR, system, version), mock_version=version)
    assert result.interactions >= 9
    assert result.ok, result.report()


@pytest.mark.parametrize("system", SYSTEMS)
def test_mock_webhooks_honour_the_message_pact(system: str) -> None:
    result = verify_events(system, event_pact_path(PACT_DIR, system))
    assert result.ok, result.report()


def _failing(result: Any) -> dict[str, set[str | None]]:
    out: dict[str, set[str | None]] = {}
    for failure in result.failures:
        out.setdefault(failure.interaction, set()).add(failure.field)
    return out


def test_erp_drift_names_interactions_and_fields_and_the_new_mapping_passes() -> None:
    old, new = VERSIONS["erp"]
    drifted = verify_http("erp", http_pact_path(PACT_DIR, "erp", old), mock_version=new)
    failing = _failing(drifted)
    given = "(given an ERP customer exists)"
    assert failing[f"a request for a customer by external id {given}"] == {"$.creditHoldOverride"}
    assert failing["a request for a sales order with its lines (given an ERP sales order exists)"] == {"$.status"}
    assert failing["a request for an invoice with its lines (given an ERP invoice exists)"] == {"$.status"}
    assert failing[f"a credit hold placed on a customer {given}"] == {"status"}
    assert "6/11 interactions pass" in drifted.report()
    # The connector's 2025.1 mapping keeps the contract with the upgraded account.
    assert verify_http("erp", http_pact_path(PACT_DIR, "erp", new), mock_version=new).ok


def test_billing_drift_names_the_moved_fields() -> None:
    old, new = VERSIONS["billing"]
    result = verify_http("billing", http_pact_path(PACT_DIR, "billing", old), mock_version=new)
    failing = _failing(result)
    assert "header Stripe-Version" in failing["a request for a customer (given a billing customer with a default "
                                              "card exists)"]
    details = " ".join(str(f) for f in result.failures)
    assert "missing the following keys: current_period_end, current_period_start" in details
    assert "missing the following keys: charge, paid, payment_intent" in details


def test_path_versioned_crm_survives_an_org_upgrade() -> None:
    # Salesforce serves every version at its own path: a v59.0 connector keeps working on a v60.0 org.
    old, new = VERSIONS["crm"]
    assert verify_http("crm", http_pact_path(PACT_DIR, "crm", old), mock_version=new).ok


def drop_response_field(field: str, path_part: str) -> Callable[[FastAPI], None]:
    """A deliberately broken mock: JSON answers on paths containing `path_part` lose `field`."""

    def mutate(app: FastAPI) -> None:
        inner = app.build_middleware_stack

        def build() -> Any:
            asgi = inner()

            async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
                if scope["type"] != "http" or path_part not in scope["path"]:
                    await asgi(scope, receive, send)
                    return
                start: dict[str, Any] = {}
                chunks: list[bytes] = []

                async def capture(message: dict[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        start.update(message)
                        return
                    chunks.append(message.get("body", b""))
                    if message.get("more_body"):
                        return
                    body = b"".join(chunks)
                    try:
                        data = json.loads(body)
                        data.pop(field, None)
                        body = json.dumps(data).encode()
                    except (ValueError, AttributeError):
                        pass
                    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                    headers.append((b"content-length", str(len(body)).encode()))
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": body})

                await asgi(scope, receive, capture)

            return broken

        app.build_middleware_stack = build  # type: ignore[method-assign]

    return mutate


def test_a_mock_answer_missing_a_field_is_caught_precisely() -> None:
    result = verify_http("erp", http_pact_path(PACT_DIR, "erp", "2024.2"), mock_version="2024.2",
                         mutate=drop_response_field("isOnCreditHold", "/customer/"))
    failing = _failing(result)
    assert set(failing) == {"a request for a customer by external id (given an ERP customer exists)",
                            "a request for a customer by internal id (given an ERP customer exists)"}
    details = [str(f) for f in result.failures]
    assert any("missing the following keys: isOnCreditHold" in d for d in details), details


def test_a_mock_event_missing_a_field_is_caught_precisely(monkeypatch: pytest.MonkeyPatch) -> None:
    import mocks.crm.events as crm_events

    original = crm_events.ChangeEvents.emit

    def emit(self: Any, tx: Any, obj: str, change_type: str, record_ids: list[str], values: dict[str, Any],
             changed_fields: list[str] | None = None) -> Any:
        # A broken CDC builder: the stage change is no longer listed among the changed fields.
        return original(self, tx, obj, change_type, record_ids, values,
                        [f for f in changed_fields or [] if f != "StageName"])

    monkeypatch.setattr(crm_events.ChangeEvents, "emit", emit)
    result = verify_events("crm", event_pact_path(PACT_DIR, "crm"))
    assert {f.interaction for f in result.failures} == {
        "a CRM change event for an opportunity closed won (given an opportunity was closed won)"}
    assert any(f.field == "$.payload.ChangeEventHeader.changedFields" for f in result.failures), result.report()
