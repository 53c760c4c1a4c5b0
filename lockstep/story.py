"""The demo story through the integration core, paced for a person watching the dashboard.

`play_story(urls, admin_token, pace=2.5)` (what `lockstep up --demo` plays when the core runs):

0. the estate: a few dozen customers closed won last quarter (seeded CRM accounts and deals, each deal
   closed in the CRM), booked by lead-to-cash into ERP, billing and CS, so every account is in every system
   and the crosswalk;
1. lead to cash: a new deal closes, narrated call by call from the flow's trace;
2. an amendment: the customer adds seats mid-term (billing invoices the proration at once);
3. a failed payment and its recovery: the customer's card fails on that invoice, the core flags the account
   at risk in the CRM and opens a CS risk CTA; paid with a new card, the core clears both;
4. a merge: sales ops merges a duplicate account in the CRM; the core re-points ERP, billing and CS and the
   crosswalk keeps the loser as an alias;
5. reconcile: an accountant renames a customer by hand in the ERP; reconcile compares what every system
   says about every account and reports the conflict, with the CRM as the owner of the name.

Every step goes through the systems' public APIs and the /_sandbox control API, as a user's harness would,
and waits on the core's /flows for each flow it starts (polling with a deadline). `pace` seconds pass
between beats so the dashboard can be watched; 0 plays it straight through (tests).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from lockstep.demo import DEMO_TENANTS, _tls, play_core_demo
from lockstep.patient import PatientSyncTransport

__all__ = ["ESTATE_SIZE", "StoryError", "estate_accounts", "play_story"]

ESTATE_SIZE = 24
_COMPANIES = ["Globex", "Umbrella", "Soylent", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Cyberdyne",
              "Oscorp", "Wonka", "Acme", "Massive Dynamic", "Aperture", "Black Mesa", "Dunder Mifflin",
              "Pied Piper", "Gringotts", "Monsters Inc", "Prestige Worldwide", "Nakatomi", "Virtucon",
              "Gekko & Co", "Duff"]
# (ISO country, place, tax registration format: '#' is a digit) for countries the ERP has subsidiaries in.
_COUNTRIES = [("US", "Inc", "##-#######"), ("GB", "UK Ltd", "GB#########"), ("DE", "GmbH", "DE#########"),
              ("CA", "Canada", "#########"), ("AU", "Australia", "###########")]
FLOW_TIMEOUT_S = 120.0
TERMINAL = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


class StoryError(RuntimeError):
    """A beat could not complete (a flow did not finish in time, a system refused)."""


def estate_accounts(count: int = ESTATE_SIZE, seed: int = 7) -> list[dict[str, Any]]:
    """`count` distinct companies with a country, a valid tax registration and a deal amount (seeded)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        country, suffix, fmt = _COUNTRIES[i % len(_COUNTRIES)]
        name = f"{_COMPANIES[i % len(_COMPANIES)]} {suffix}" + (f" {i // len(_COMPANIES) + 1}" if i >= len(_COMPANIES)
                                                                else "")
        tax = "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in fmt)
        amount = rng.choice([12, 18, 24, 36, 48, 60]) * 1000
        out.append({"name": name, "country": country, "tax": tax, "amount": amount})
    return out


@dataclass
class Story:
    urls: dict[str, str]
    admin_token: str
    pace: float = 0.0
    say: Callable[[str], None] = print
    verify: str | bool = True
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        tls = _tls(self.verify)
        admin = {"Lockstep-Admin-Token": self.admin_token}
        crm_key = DEMO_TENANTS["crm"]
        # The story shares each vendor's rate limits with the core: its clients wait out a 429 as SDKs do.
        self.crm = httpx.Client(base_url=f"{self.urls['crm']}/services/data/v60.0", timeout=30,
                                transport=PatientSyncTransport(verify=tls),
                                headers={"Authorization": f"Bearer {crm_key}"})
        self.control = {s: httpx.Client(base_url=f"{self.urls[s]}/_sandbox/tenants/{DEMO_TENANTS[s]}", timeout=30,
                                        verify=tls if s == "crm" else True, headers=admin)
                        for s in ("crm", "erp", "billing", "cs")}
        self.erp = httpx.Client(base_url=f"{self.urls['erp']}/services/rest/record/v1", timeout=30,
                                transport=PatientSyncTransport(),
                                headers={"Authorization": f"Bearer {DEMO_TENANTS['erp']}"})
        self.billing = httpx.Client(base_url=self.urls["billing"], auth=(DEMO_TENANTS["billing"], ""), timeout=30,
                                    transport=PatientSyncTransport())
        self.core = httpx.Client(base_url=self.urls["core"], timeout=30)

    def close(self) -> None:
        for client in (self.crm, self.erp, self.billing, self.core, *self.control.values()):
            client.close()

    # -- helpers ------------------------------------------------------------------------------------------

    def beat(self) -> None:
        """The pause between beats: presentation pacing for a person, not a wait for the system."""
        if self.pace > 0:
            self.stop.wait(self.pace)

    def wait_flows(self, keys: Iterable[str], timeout: float = FLOW_TIMEOUT_S) -> dict[str, dict[str, Any]]:
        """Poll the core until every flow in `keys` has finished; their summaries."""
        pending, done = set(keys), {}
        deadline = time.monotonic() + timeout
        while pending:
            for key in sorted(pending):
                response = self.core.get(f"/flows/{key}")
                if response.status_code == 200 and response.json()["status"] in TERMINAL:
                    done[key] = response.json()
            pending -= done.keys()
            if not pending:
                break
            if time.monotonic() > deadline:
                raise StoryError(f"{len(pending)} flow(s) still running after {timeout:.0f} s: "
                                 f"{', '.join(sorted(pending)[:3])}")
            time.sleep(0.2)  # polling a remote server, bounded by the deadline
        return done

    def new_flows(self, flow: str, prefix: str, known: set[str], count: int = 1,
                  timeout: float = FLOW_TIMEOUT_S) -> list[dict[str, Any]]:
        """Wait until `count` flows of `flow` whose id starts with `prefix` (and not in `known`) have finished."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.core.get("/flows", params={"flow": flow, "limit": 200}).raise_for_status().json()["flows"]
            fresh = [r for r in rows if r["workflow_id"].startswith(prefix) and r["workflow_id"] not in known]
            if len(fresh) >= count and all(r["status"] in TERMINAL for r in fresh):
                return fresh
            if time.monotonic() > deadline:
                raise StoryError(f"no finished {flow} flow {prefix}* after {timeout:.0f} s")
            time.sleep(0.2)  # polling a remote server, bounded by the deadline

    def flow_ids(self, flow: str) -> set[str]:
        rows = self.core.get("/flows", params={"flow": flow, "limit": 500}).raise_for_status().json()["flows"]
        return {r["workflow_id"] for r in rows}

    def account_refs(self, crm_account: str) -> dict[str, Any]:
        accounts = self.core.get("/ui/api/accounts", params={"limit": 1000}).raise_for_status().json()["accounts"]
        for account in accounts:
            if account["refs"].get("crm") == crm_account:
                return account
        raise StoryError(f"the crosswalk has no account for CRM account {crm_account}")

    def crm_account(self, account_id: str) -> dict[str, Any]:
        return self.crm.get(f"/sobjects/Account/{account_id}").raise_for_status().json()

    def ensure_catalog(self) -> None:
        """What lead-to-cash needs of the estate: the CRM tax field and the ERP item catalog."""
        self.control["crm"].post("/actions", json={"action": "declare_field", "object": "Account", "field": {
            "name": "Tax_Registration__c", "type": "string", "length": 40}}).raise_for_status()
        erp = httpx.get(f"{self.urls['erp']}/services/rest/record/v1/item/eid:ITEM-PLAT-ANNUAL", timeout=30,
                        headers={"Authorization": f"Bearer {DEMO_TENANTS['erp']}"})
        if erp.status_code == 404:
            self.control["erp"].post("/seed", json={"customers": 0, "items": True}).raise_for_status()

    def close_deals(self, deals: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Seed CRM accounts + open deals, then close each won as a rep would: [(account id, flow key)]."""
        records = {"Account": [], "Opportunity": []}
        for i, deal in enumerate(deals):
            records["Account"].append({"@ref": f"a{i}", "Name": deal["name"], "BillingCountry": deal["country"],
                                       "Tax_Registration__c": deal["tax"]})
            records["Opportunity"].append({"AccountId": f"@a{i}", "Name": f"{deal['name']} - Platform",
                                           "StageName": "Proposal/Price Quote", "CloseDate": "2026-01-15",
                                           "Amount": deal["amount"]})
        made = self.control["crm"].post("/seed", json={"demo": False, "records": records}).raise_for_status()
        created = made.json()["created"]
        out = []
        for account, opportunity in zip(created["Account"], created["Opportunity"], strict=True):
            self.control["crm"].post("/actions", json={"action": "close_opportunity", "id": opportunity,
                                                       "won": True}).raise_for_status()
            out.append((account, f"closed-won:{opportunity}"))
        return out

    def subscription_of(self, customer: str) -> dict[str, Any]:
        subs = self.billing.get("/v1/subscriptions", params={"customer": customer}).raise_for_status().json()["data"]
        if not subs:
            raise StoryError(f"billing has no subscription for {customer}")
        return subs[0]

    def attach_card(self, customer: str, token: str) -> str:
        card = self.billing.post(f"/v1/payment_methods/{token}/attach", data={"customer": customer})
        return str(card.raise_for_status().json()["id"])

    def add_seats(self, sub: dict[str, Any], seats: int) -> dict[str, Any]:
        item = sub["items"]["data"][0]
        response = self.billing.post(f"/v1/subscriptions/{sub['id']}", data={
            "items[0][id]": item["id"], "items[0][quantity]": item["quantity"] + seats,
            "proration_behavior": "always_invoice"})
        response.raise_for_status()
        return response.json()


def play_story(urls: dict[str, str], admin_token: str, *, pace: float = 0.0, say: Callable[[str], None] = print,
               verify: str | bool = True, estate: int = ESTATE_SIZE,
               stop: threading.Event | None = None) -> dict[str, Any]:
    """Play the story (see the module doc); returns what it saw, for tests."""
    if not {"crm", "erp", "billing", "cs", "core"} <= urls.keys():
        return {}
    story = Story(urls, admin_token, pace=pace, say=say, verify=verify, stop=stop or threading.Event())
    try:
        return _play(story, estate)
    finally:
        story.close()


def _play(s: Story, estate: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    say = s.say
    say(f"\n== The story, through the integration core (watch it on {s.urls['core']}/ui) ==")
    s.ensure_catalog()

    # 0. the estate
    started = time.monotonic()
    deals = estate_accounts(estate)
    deals.append({**deals[1], "name": deals[1]["name"] + " (duplicate)", "amount": 6000})  # merged in beat 4
    closed = s.close_deals(deals)
    flows = s.wait_flows(key for _, key in closed)
    ok = sum(1 for f in flows.values() if f["status"] == "SUCCESS")
    say(f"0. The estate: {len(closed)} deals closed won last quarter; lead-to-cash booked {ok} of them into ERP, "
        f"billing and CS in {time.monotonic() - started:.1f} s (one account each in every system, linked in the "
        "crosswalk)")
    seen["estate"] = {"deals": len(closed), "succeeded": ok}
    s.beat()

    # 1. lead to cash, narrated from the trace
    l2c = play_core_demo(s.urls, s.admin_token, say=say, verify=s.verify, timeout=FLOW_TIMEOUT_S)
    seen["lead_to_cash"] = l2c
    opportunity = l2c["flow"].split(":", 1)[1]
    initech_crm = s.crm.get(f"/sobjects/Opportunity/{opportunity}").raise_for_status().json()["AccountId"]
    initech = s.account_refs(initech_crm)
    customer = initech["refs"]["billing"]
    sub = s.subscription_of(customer)
    s.beat()

    # 2. amendment
    say("\n== An amendment: Initech adds two seats mid-term ==")
    known = s.flow_ids("amendment")
    sub = s.add_seats(sub, 2)
    [amended] = s.new_flows("amendment", f"amendment:{sub['id']}:", known)
    say(f"1. Billing prorates the change and invoices it at once ({sub['latest_invoice']}); the core's flow "
        f"{amended['workflow_id']} is {amended['status']}: ERP order amended, CS ARR updated")
    seen["amendment"] = amended["status"]
    s.beat()

    # 3. failed payment and recovery (the contract is invoiced with terms: the customer pays by card)
    say("\n== A failed payment and its recovery ==")
    invoice_id = sub["latest_invoice"]
    failing = s.attach_card(customer, "pm_card_chargeCustomerFail")
    known = s.flow_ids("failed_payment")
    declined = s.billing.post(f"/v1/invoices/{invoice_id}/pay", data={"payment_method": failing})
    invoice = s.billing.get(f"/v1/invoices/{invoice_id}").raise_for_status().json()
    [failed] = s.new_flows("failed_payment", f"failed-payment:{invoice_id}:attempt-", known)
    at_risk = s.crm_account(initech_crm).get("At_Risk__c")
    say(f"1. Initech pays the proration invoice {invoice_id} with a card that fails ({declined.status_code}, "
        f"attempt {invoice['attempt_count']}); flow {failed['workflow_id']} is {failed['status']}: CRM "
        f"At_Risk__c={at_risk}, a CS risk CTA is open")
    s.beat()
    card = s.attach_card(customer, "pm_card_visa")
    s.billing.post(f"/v1/invoices/{invoice_id}/pay", data={"payment_method": card}).raise_for_status()
    [recovered] = s.new_flows("failed_payment", f"failed-payment:{invoice_id}:paid", known)
    paid = s.billing.get(f"/v1/invoices/{invoice_id}").raise_for_status().json()["status"]
    at_risk = s.crm_account(initech_crm).get("At_Risk__c")
    say(f"2. Initech pays again with a new card: the invoice is {paid}; flow {recovered['workflow_id']} is "
        f"{recovered['status']}: At_Risk__c={at_risk}, the risk CTA closed")
    seen["failed_payment"] = {"failed": failed["status"], "at_risk": at_risk, "recovered": recovered["status"],
                              "invoice": paid}
    s.beat()

    # 4. merge
    say("\n== A merge: sales ops merges a duplicate account in the CRM ==")
    (master, _), (loser, _) = closed[1], closed[-1]
    master_refs, loser_refs = s.account_refs(master), s.account_refs(loser)
    known = s.flow_ids("account_merge")
    s.control["crm"].post("/actions", json={"action": "merge", "object": "Account", "master": master,
                                            "losers": [loser]}).raise_for_status()
    [merge] = s.new_flows("account_merge", "account-merge:", known)
    xw = s.core.get(f"/crosswalk/{loser_refs['id']}").raise_for_status().json()
    say(f"1. '{deals[-1]['name']}' is merged into '{deals[1]['name']}'; flow {merge['workflow_id']} is "
        f"{merge['status']}: ERP, billing and CS records re-pointed; the crosswalk resolves "
        f"{loser_refs['id']} to {xw['resolved']}")
    seen["merge"] = {"status": merge["status"], "resolved": xw["resolved"], "master": master_refs["id"]}
    s.beat()

    # 5. reconcile, after someone edits a customer in the ERP by hand
    say("\n== Reconcile: what every system says about every account ==")
    drifted = s.account_refs(closed[2][0])
    erp_id = drifted["refs"]["erp"]
    s.erp.patch(f"/customer/{erp_id}", json={"companyName": deals[2]["name"] + " (old name)"}).raise_for_status()
    say(f"1. An accountant renames customer {erp_id} by hand in the ERP (the CRM owns account names)")
    report = s.core.get("/reconcile").raise_for_status().json()
    summary = report["summary"]
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(summary["by_kind"].items()) if n) or "none"
    say(f"2. Reconcile compares {summary['accounts']} accounts across the four systems: {summary['findings']} "
        f"finding(s) ({kinds})")
    for finding in report["findings"][:5]:
        say(f"   {finding['system']:<8} {finding['kind']:<9} {finding.get('field') or '':<14} "
            f"expected {finding.get('expected')!r}, found {finding.get('actual')!r} (owner: {finding.get('owner')})")
    seen["reconcile"] = summary
    say(f"\nThe dashboard: {s.urls['core']}/ui  ·  flows {s.urls['core']}/flows  ·  DLQ {s.urls['core']}/dlq")
    return seen
