"""Unit tests of the flows' shared helpers: idempotency keys, ownership filtering and survivorship, error
unwrapping, crosswalk access, business keys of the two flows."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from core.connectors.errors import VendorError
from core.crosswalk import Crosswalk
from core.flows import _common as common
from core.flows._common import CompensatedError, Compensation, account_key, idem_key, owned, survive, unwrap
from core.intake.envelopes import IntakeEvent


def test_idempotency_keys_are_deterministic_per_business_key_and_step() -> None:
    assert idem_key("closed-won:006A", "erp.salesOrder") == idem_key("closed-won:006A", "erp.salesOrder")
    assert idem_key("closed-won:006A", "erp.salesOrder") != idem_key("closed-won:006A", "billing.subscription")
    assert idem_key("closed-won:006A", "x") != idem_key("closed-won:006B", "x")
    assert "/" not in idem_key("closed-won:006A", "erp.salesOrder")  # it travels in NetSuite eid: paths
    assert account_key("acc_1") == "account:acc_1"


def test_long_idempotency_keys_are_shortened_but_stay_distinct() -> None:
    a, b = idem_key("k" * 300, "step-a"), idem_key("k" * 300, "step-b")
    assert len(a) <= 200 and len(b) <= 200 and a != b
    with pytest.raises(ValueError):
        idem_key("", "step")


def test_owned_keeps_the_owners_fields_and_records_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        accepted = owned("account", "crm", {"name": "Acme", "tax_registration": "DE1", "currency": "EUR"})
    assert accepted == {"name": "Acme"}
    ignored = {r.ownership_ignored.field for r in caplog.records if hasattr(r, "ownership_ignored")}
    assert ignored == {"tax_registration", "currency"}


def test_survivorship_takes_each_field_from_its_owner_first_offer_wins() -> None:
    values, ignored = survive("account", {
        "crm": {"name": "Winner Inc", "legal_name": "from crm (not the owner)"},
        "erp": [{"legal_name": None, "tax_registration": None},   # the survivor's own ERP record: empty
                {"legal_name": "Loser GmbH", "tax_registration": "DE123456789"}],
        "billing": {"billing_email": "ap@winner.example", "name": "billing's name"},
    })
    assert values == {"name": "Winner Inc", "legal_name": "Loser GmbH", "tax_registration": "DE123456789",
                      "billing_email": "ap@winner.example"}
    assert {(i.system, i.field) for i in ignored} == {("crm", "legal_name"), ("billing", "name")}


def test_unwrap_returns_the_last_error_behind_dbos_max_retries() -> None:
    from dbos._error import DBOSMaxStepRetriesExceeded

    cause = VendorError("erp", 503, None, "down", retryable=True)
    wrapped = DBOSMaxStepRetriesExceeded("l2c.erp.salesOrder", 3, [VendorError("erp", 500, None, "x"), cause])
    assert unwrap(wrapped) is cause
    other = RuntimeError("x")
    assert unwrap(other) is other


def test_compensated_error_says_what_was_undone_and_is_not_retryable() -> None:
    err = CompensatedError("billing 402 card_declined", Compensation(["erp salesOrder 1001 deleted"], []))
    assert "card_declined" in str(err) and "1001 deleted" in str(err)
    assert err.retryable is False


def test_crosswalk_override_is_used_by_flows() -> None:
    xw = Crosswalk(":memory:")
    common.set_crosswalk(xw)
    try:
        assert common.crosswalk() is xw
    finally:
        common.set_crosswalk(None)
        xw.close()


def _crm_event(change: str, entity: str, payload: dict[str, Any]) -> IntakeEvent:
    header = {"entityName": entity, "changeType": change, "recordIds": ["REC1"], "transactionKey": "tx-1",
              "sequenceNumber": 2, "changedFields": list(payload)}
    return IntakeEvent("crm", "tx-1:2", f"{entity}ChangeEvent", f"{entity}:REC1", 1, None,
                       {"payload": {"ChangeEventHeader": header, **payload}})


def test_lead_to_cash_starts_only_on_a_close_won() -> None:
    from core.flows.lead_to_cash import business_key

    assert business_key(_crm_event("UPDATE", "Opportunity", {"StageName": "Closed Won", "IsWon": True})) == \
        "closed-won:REC1"
    assert business_key(_crm_event("UPDATE", "Opportunity", {"StageName": "Closed Lost"})) is None
    assert business_key(_crm_event("UPDATE", "Opportunity", {"Amount": 5})) is None
    assert business_key(_crm_event("CREATE", "Opportunity", {"StageName": "Closed Won"})) is None


def test_merge_business_key_is_the_crm_transaction() -> None:
    from core.flows.account_merge import business_key

    assert business_key(_crm_event("DELETE", "Account", {"MasterRecordId": "001M"})) == "account-merge:tx-1"
    assert business_key(_crm_event("DELETE", "Account", {})) is None  # a plain delete is no merge
    assert business_key(_crm_event("UPDATE", "Account", {"Name": "x"})) is None
