"""Message-pact verification against the mocks' REAL event builders.

For each system: serve the mock on uvicorn, subscribe a capture server (also on a real socket) through the
control API, drive a scenario through the vendor API and the sandbox's user actions so the mock emits the
events the pact names, and hand each delivered body to the Pact verifier as the message for its
description. Every captured delivery must also pass the core's own signature check.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request

from contracts.pactkit import TOKENS, event_provider_name
from contracts.provider.verify import Failure, _failures, run_verifier, serve_mock
from core.intake import signatures
from mocks.kernel.serving import ServerThread

__all__ = ["EventVerification", "capture_events", "verify_events"]

Json = dict[str, Any]
SECRET = "whsec_contracts"


@dataclass
class Captured:
    body: bytes
    headers: dict[str, str]
    data: Json


@dataclass
class EventVerification:
    system: str
    interactions: int
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> str:
        head = (f"{self.system} events: {self.interactions - len({f.interaction for f in self.failures})}/"
                f"{self.interactions} messages pass")
        return "\n".join([head, *(f"  FAIL {f}" for f in self.failures)])


def _capture_app(received: list[Captured]) -> FastAPI:
    app = FastAPI()

    @app.post("/hooks")
    async def hook(request: Request) -> dict[str, bool]:
        body = await request.body()
        received.append(Captured(body, dict(request.headers), json.loads(body)))
        return {"received": True}

    return app


class Sandbox:
    """The vendor API and the control API of one served mock, as the scenarios use them."""

    def __init__(self, system: str, url: str, admin_token: str) -> None:
        self.system = system
        self.control = httpx.Client(base_url=f"{url}/_sandbox/tenants/{TOKENS[system]}",
                                    headers={"Lockstep-Admin-Token": admin_token}, timeout=30)
        auth = {"crm": {"Authorization": f"Bearer {TOKENS['crm']}"},
                "erp": {"Authorization": f"Bearer {TOKENS['erp']}"},
                "billing": {"Authorization": f"Bearer {TOKENS['billing']}"},
                "cs": {"accesskey": TOKENS["cs"]}}[system]
        self.api = httpx.Client(base_url=url, headers=auth, timeout=30)

    def ok(self, response: httpx.Response) -> Json:
        if response.status_code >= 400:
            raise RuntimeError(f"{self.system} scenario step {response.request.method} {response.request.url.path}: "
                               f"{response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}

    def seed(self, body: Json) -> Json:
        return self.ok(self.control.post("/seed", json=body))

    def action(self, body: Json) -> Json:
        return self.ok(self.control.post("/actions", json=body))

    def close(self) -> None:
        self.control.close()
        self.api.close()


# ---- scenarios: what a person and an integration do so the mock emits each event ---------------------------

def billing_scenario(s: Sandbox) -> None:
    prices = s.seed({"customers": 0})["prices"]
    form = s.api.post
    customer = s.ok(form("/v1/customers", data={"name": "Acme Corp", "email": "ap@acme.example"}))["id"]
    pm = s.ok(form("/v1/payment_methods/pm_card_visa/attach", data={"customer": customer}))["id"]
    s.ok(form(f"/v1/customers/{customer}", data={"invoice_settings[default_payment_method]": pm}))
    sub = s.ok(form("/v1/subscriptions", data={"customer": customer, "items[0][price]": prices["growth_monthly"]}))
    s.action({"action": "fail_next_charge", "customer": customer})
    changed = s.ok(form(f"/v1/subscriptions/{sub['id']}", data={
        "items[0][id]": sub["items"]["data"][0]["id"], "items[0][quantity]": "3",
        "proration_behavior": "always_invoice"}))
    s.action({"action": "pay_invoice", "invoice": changed["latest_invoice"]})
    for end in ("void", "mark_uncollectible"):
        s.ok(form("/v1/invoiceitems", data={"customer": customer, "amount": "1500", "currency": "usd",
                                            "description": "Training day"}))
        invoice = s.ok(form("/v1/invoices", data={"customer": customer, "collection_method": "send_invoice",
                                                  "days_until_due": "30", "pending_invoice_items_behavior": "include"}))
        s.ok(form(f"/v1/invoices/{invoice['id']}/finalize"))
        s.ok(form(f"/v1/invoices/{invoice['id']}/{end}"))


def crm_scenario(s: Sandbox) -> None:
    made = s.seed({"demo": False, "records": {
        "Account": [{"@ref": "a", "Name": "Acme Corp", "External_Id__c": "CUST-0001"},
                    {"@ref": "b", "Name": "ACME Corporation", "External_Id__c": "CUST-0002"}],
        "Opportunity": [{"AccountId": "@a", "Name": "Acme Corp - New Business", "StageName": "Negotiation/Review",
                         "Amount": 120000, "CloseDate": "2026-03-31"}]}})["created"]
    s.action({"action": "close_opportunity", "id": made["Opportunity"][0], "won": True})
    s.action({"action": "merge", "object": "Account", "master": made["Account"][0], "losers": [made["Account"][1]]})


def cs_scenario(s: Sandbox) -> None:
    company = s.seed({"companies": 0, "records": [{"Name": "Acme Corp", "ExternalId": "CUST-0001"}]})
    s.ok(s.api.post("/v2/cockpit/cta", json={"requests": [{
        "Name": "Renewal 2026", "CompanyId": company["records"][0]["Gsid"], "TypeName": "Renewal",
        "DueDate": "2026-12-01"}]}))


def erp_scenario(s: Sandbox) -> None:
    made = s.seed({"customers": 0, "records": {
        "customer": [{"companyName": "Acme Corp", "externalId": "CUST-0001", "subsidiary": {"id": "1"}}],
        "salesOrder": [{"entity": {"externalId": "CUST-0001"}, "externalId": "opp-0001",
                        "item": {"items": [{"item": {"externalId": "ITEM-SEAT"}, "quantity": 2}]}}],
        "invoice": [{"entity": {"externalId": "CUST-0001"}, "createdFrom": {"externalId": "opp-0001"},
                     "externalId": "in_0001"}]}})["created"]
    s.ok(s.api.patch(f"/services/rest/record/v1/customer/{made['customer'][0]}", json={"email": "ap@acme.example"}))
    s.action({"action": "record_payment", "invoice": made["invoice"][0]})


SCENARIOS: dict[str, Callable[[Sandbox], None]] = {
    "billing": billing_scenario, "crm": crm_scenario, "cs": cs_scenario, "erp": erp_scenario,
}


def _type_of(system: str, data: Json) -> str:
    if system == "billing":
        return str(data.get("type"))
    if system == "crm":
        return f"{data['payload']['ChangeEventHeader']['entityName']}ChangeEvent"
    return str(data.get("eventType"))


# Which captured event stands for a pact message: its type, plus what the message is about.
def _pick(system: str, description: str, events: list[Captured]) -> Captured | None:
    from contracts.consumer.messages import MESSAGES

    case = next(c for c in MESSAGES if c.system == system and c.description == description)
    candidates = [e for e in events if _type_of(system, e.data) == case.event_type]
    if case.event_type == "invoice.paid":
        candidates = [e for e in candidates if (e.data["data"]["object"].get("attempt_count") or 0) > 1]
    elif case.event_type == "customer.subscription.updated":
        candidates = [e for e in candidates if "items" in (e.data["data"].get("previous_attributes") or {})]
    elif case.event_type == "OpportunityChangeEvent":
        candidates = [e for e in candidates if e.data["payload"].get("StageName") == "Closed Won"]
    elif case.event_type == "AccountChangeEvent":
        candidates = [e for e in candidates if e.data["payload"]["ChangeEventHeader"]["changeType"] == "DELETE"]
    return candidates[0] if candidates else None


def capture_events(system: str, *, mutate: Any = None) -> tuple[list[Captured], list[str]]:
    """Run the system's scenario against a served mock; returns the deliveries and signature complaints."""
    received: list[Captured] = []
    token = secrets.token_urlsafe(16)
    with serve_mock(system, token, mutate) as mock, ServerThread(_capture_app(received)) as sink:
        sandbox = Sandbox(system, mock.url, token)
        try:
            sandbox.ok(sandbox.api.get({"crm": "/services/data", "erp": "/services/rest/record/v1/customer",
                                        "billing": "/v1/customers", "cs": "/v2/cockpit/cta"}[system]))
            sandbox.ok(sandbox.control.post("/webhooks/endpoints", json={"url": f"{sink.url}/hooks",
                                                                        "secret": SECRET}))
            SCENARIOS[system](sandbox)
            drained = sandbox.ok(sandbox.control.post("/webhooks/drain", params={"timeout": 20}))
            if not drained.get("drained"):
                raise RuntimeError(f"{system}: webhooks still pending after 20 s: {drained}")
        finally:
            sandbox.close()
    complaints = []
    for event in received:
        try:
            signatures.verify(system, event.headers, event.body, [SECRET], now=time.time())
        except signatures.SignatureError as exc:
            complaints.append(f"{_type_of(system, event.data)}: {exc}")
    return received, complaints


def verify_events(system: str, pact_file: Path, *, mutate: Any = None) -> EventVerification:
    from pact import Verifier

    started = time.perf_counter()
    pact = json.loads(pact_file.read_text())
    descriptions = [i["description"] for i in pact["interactions"]]
    events, complaints = capture_events(system, mutate=mutate)
    failures = [Failure("signature", None, c) for c in complaints]
    messages: dict[str, Any] = {}
    for description in descriptions:
        event = _pick(system, description, events)
        if event is None:
            failures.append(Failure(description, None, "the mock's scenario emitted no such event"))
            messages[description] = {"contents": b"{}", "metadata": None, "content_type": "application/json"}
        else:
            messages[description] = {"contents": event.body, "metadata": {"contentType": "application/json"},
                                     "content_type": "application/json"}
    verifier = (Verifier(event_provider_name(system), host="127.0.0.1").message_handler(messages)
                .add_source(pact_file).set_coloured_output(enabled=False)
                .state_handler(lambda state, action, parameters: None))
    failures += _failures(run_verifier(verifier), [])
    return EventVerification(system, len(descriptions), failures, time.perf_counter() - started)
