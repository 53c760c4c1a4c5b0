"""Message pacts: every webhook / event type the core consumes, handled by the REAL intake code.

The handler is what the core runs on a verified webhook body: `core.intake.parse_event` (identity, type,
aggregate, version) and the router's flow matching (`Router.matches`: which registered flows the event
starts, under which business key). Each message states what the core must make of it, so a body the
intake misreads, or one that no longer starts the flow it used to, fails here.

Signatures are not part of the message contract (they are time-bound HMACs over the raw bytes; the intake's
signature tests cover them), and the renewal flow's business key needs the runtime's crosswalk, so a
`cs:cta.created` message is checked for its envelope and aggregate, not for the flow it may start.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pact import Pact, match
from pact.error import PactVerificationError

from contracts.pactkit import CONSUMER, event_pact_path, event_provider_name
from core.flows import load_all
from core.intake.envelopes import parse_event
from core.intake.router import FlowSpec, Router, flow_specs

__all__ = ["MESSAGES", "MessageCase", "handle", "record_messages"]

Json = dict[str, Any]
EPOCH = 1767225600
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
ISO_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


@dataclass(frozen=True)
class MessageCase:
    system: str
    event_type: str
    description: str
    state: str
    body: Callable[[], Json]
    # What the core must make of it: the aggregate's kind, and the flows it starts (business-key prefixes).
    aggregate: str | None
    flows: dict[str, str] = field(default_factory=dict)
    params: Json = field(default_factory=dict)


# ---- billing (Stripe events) ---------------------------------------------------------------------------

def _stripe_event(event_type: str, obj: Json, previous: Json | None = None) -> Json:
    data: Json = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": match.regex("evt_1Pz0rggUxzrFFSZl", regex=r"^evt_\w+$"), "object": "event",
            "type": event_type, "created": match.int(EPOCH), "data": data}


def _invoice(status: str, attempts: int = 1) -> Json:
    return {"id": match.regex("in_n3dtdyfWPJ8zCa", regex=r"^in_\w+$"), "object": "invoice",
            "status": status, "attempt_count": match.int(attempts),
            "customer": match.regex("cus_BJ6is0NU5DLXvS", regex=r"^cus_\w+$")}


def _billing(event_type: str, status: str, flows: dict[str, str], attempts: int = 1,
             state: str = "an invoice went through its lifecycle") -> MessageCase:
    return MessageCase("billing", event_type, f"a billing {event_type} event", state,
                       lambda: _stripe_event(event_type, _invoice(status, attempts)), "invoice", flows,
                       {"type": event_type})


def _subscription_updated() -> Json:
    item = {"id": match.regex("si_ojEL7FiKGUemwy", regex=r"^si_\w+$"), "quantity": match.int(3),
            "price": {"id": match.regex("price_oF4rRxkAiFIKUe", regex=r"^price_\w+$")}}
    previous = {"items": {"data": match.each_like({"id": match.regex("si_ojEL7FiKGUemwy", regex=r"^si_\w+$"),
                                                   "quantity": match.int(1)})}}
    obj = {"id": match.regex("sub_f2r4HyvO4TEc9l", regex=r"^sub_\w+$"), "object": "subscription",
           "customer": match.regex("cus_BJ6is0NU5DLXvS", regex=r"^cus_\w+$"),
           "status": match.regex("active", regex="^(active|trialing|past_due)$"),
           "items": {"data": match.each_like(item)}}
    return _stripe_event("customer.subscription.updated", obj, previous)


INVOICE_SYNC = "invoice-sync:"
BILLING = [
    _billing("invoice.finalized", "open", {"invoice_sync": INVOICE_SYNC}),
    _billing("invoice.paid", "paid", {"invoice_sync": INVOICE_SYNC, "failed_payment": "failed-payment:"},
             attempts=2, state="an invoice was paid after a failed attempt"),
    _billing("invoice.payment_failed", "open", {"invoice_sync": INVOICE_SYNC, "failed_payment": "failed-payment:"},
             state="an invoice payment failed"),
    _billing("invoice.updated", "open", {"invoice_sync": INVOICE_SYNC}, state="an invoice payment failed"),
    _billing("invoice.voided", "void", {"invoice_sync": INVOICE_SYNC}, state="an invoice was voided"),
    _billing("invoice.marked_uncollectible", "uncollectible", {"invoice_sync": INVOICE_SYNC},
             state="an invoice was marked uncollectible"),
    MessageCase("billing", "customer.subscription.updated", "a billing customer.subscription.updated event "
                "with changed items", "a subscription's quantity changed", _subscription_updated, "subscription",
                {"amendment": "amendment:"}, {"type": "customer.subscription.updated"}),
]


# ---- CRM (Change Data Capture) --------------------------------------------------------------------------

def _cdc(entity: str, change: str, fields: Json, changed: list[str]) -> Json:
    header = {"entityName": entity, "recordIds": match.each_like(match.regex("0065j0uVXo8TrqeAMC",
                                                                             regex=r"^\w{15,18}$")),
              "changeType": change, "transactionKey": match.regex("a1b2c3d4-0000-1111-2222-333344445555", regex=UUID),
              "sequenceNumber": match.int(1), "commitNumber": match.int(7), "commitTimestamp": match.int(EPOCH * 1000),
              # The core needs these among the changed fields; the vendor lists more (LastModifiedDate ...).
              "changedFields": match.array_containing(list(changed)) if changed else match.type([])}
    return {"payload": {"ChangeEventHeader": header, **fields}, "event": {"replayId": match.int(1)}}


CRM = [
    MessageCase("crm", "OpportunityChangeEvent", "a CRM change event for an opportunity closed won",
                "an opportunity was closed won",
                lambda: _cdc("Opportunity", "UPDATE", {"StageName": "Closed Won", "IsWon": True},
                             ["StageName", "IsWon"]),
                "Opportunity", {"lead_to_cash": "closed-won:"}),
    MessageCase("crm", "AccountChangeEvent", "a CRM change event for an account merged into another",
                "two accounts were merged",
                lambda: _cdc("Account", "DELETE", {"MasterRecordId": match.regex("0015j0zrrebr2vnAAA",
                                                                                 regex=r"^\w{15,18}$")}, []),
                "Account", {"account_merge": "account-merge:"}),
]


# ---- ERP and CS -------------------------------------------------------------------------------------------

def _erp(event_type: str, record_type: str) -> Json:
    return {"eventId": match.regex("6f1c6a52-7a57-4f0e-9c65-4e6574537569", regex=UUID), "eventType": event_type,
            "recordType": record_type, "recordId": match.regex("101", regex=r"^\d+$"),
            "timestamp": match.regex("2026-01-01T00:00:00Z", regex=ISO_TIME)}


def _cta() -> Json:
    return {"eventId": match.regex("evt_0000000001", regex=r"^evt_\d+$"), "eventType": "cta.created",
            "occurredAt": match.regex("2026-01-01T00:00:00Z", regex=ISO_TIME),
            "data": {"cta": {"Gsid": match.regex("1S01QZ94R4JPX6YQD2QMFNEFTI1634NQQ7NT", regex=r"^\w+$"),
                             "CompanyId": match.regex("1P02C4DEK88GJRJBZYWJPOVB2YXFMOKUMND2", regex=r"^\w+$"),
                             "TypeName": match.str("Renewal"),
                             "DueDate": match.regex("2026-12-01", regex=r"^\d{4}-\d{2}-\d{2}$")}}}


OTHERS = [
    MessageCase("erp", "customer.updated", "an ERP customer.updated event", "a customer was edited",
                lambda: _erp("customer.updated", "customer"), "customer"),
    MessageCase("erp", "invoice.updated", "an ERP invoice.updated event", "an invoice was paid",
                lambda: _erp("invoice.updated", "invoice"), "invoice"),
    MessageCase("cs", "cta.created", "a CS cta.created event for a renewal CTA", "a renewal CTA was opened",
                _cta, "cta"),
]

MESSAGES: list[MessageCase] = [*BILLING, *CRM, *OTHERS]


# ---- the handler --------------------------------------------------------------------------------------------

def handle(case: MessageCase, body: bytes | str) -> list[tuple[str, str]]:
    """Run the intake on `body` and check what it made of it; returns (flow, business key) pairs."""
    raw = body.encode() if isinstance(body, str) else body
    event = parse_event(case.system, raw)
    if event.event_type != case.event_type:
        raise AssertionError(f"{case.description}: the intake read type {event.event_type!r}, "
                             f"expected {case.event_type!r}")
    if case.aggregate is not None and not (event.aggregate_key or "").startswith(case.aggregate + ":"):
        raise AssertionError(f"{case.description}: aggregate {event.aggregate_key!r} is not a {case.aggregate}")
    load_all()
    matched = [(spec.name, key) for spec, key in Router(queue_name="contracts", flows=_core_flows).matches(event)]
    got = {name: key for name, key in matched}
    if set(got) != set(case.flows):
        raise AssertionError(f"{case.description}: starts flows {sorted(got)}, expected {sorted(case.flows)}")
    for name, prefix in case.flows.items():
        if not re.match(re.escape(prefix), got[name]):
            raise AssertionError(f"{case.description}: flow {name} got business key {got[name]!r}, "
                                 f"expected one starting {prefix!r}")
    return matched


def _core_flows() -> dict[str, FlowSpec]:
    """The core's own flows (core/flows): a process may also hold flows registered by tests or plug-ins."""
    return {name: spec for name, spec in flow_specs().items() if spec.fn.__module__.startswith("core.flows.")}


def record_messages(out_dir: Path) -> dict[str, int]:
    """One message pact per system; returns messages written per system."""
    counts: dict[str, int] = {}
    for system in sorted({c.system for c in MESSAGES}):
        target = event_pact_path(out_dir, system)
        if target.parent.exists():
            shutil.rmtree(target.parent)
        target.parent.mkdir(parents=True)
        cases = [c for c in MESSAGES if c.system == system]
        pact = _declare(system, cases)
        for case in cases:
            # Verified one at a time so each body meets the case that states what the core makes of it.
            try:
                _declare(system, [case]).verify(lambda body, _meta, case=case: handle(case, body or b""), "Async")
            except PactVerificationError as exc:
                raise AssertionError("; ".join(str(e) for e in exc.errors)) from exc
        pact.write_file(target.parent, overwrite=True)
        counts[system] = len(cases)
    return counts


def _declare(system: str, cases: list[MessageCase]) -> Pact:
    pact = Pact(CONSUMER, event_provider_name(system)).with_specification("V4")
    for case in cases:
        (pact.upon_receiving(case.description, "Async").given(case.state, case.params)
         .with_body(case.body(), "application/json").with_metadata({"contentType": "application/json"}))
    return pact
