"""The demo: seed a realistic tenant on each running mock, then play a short, narrated story over HTTP.

Everything here goes through the public wire APIs and the /_sandbox control API, exactly as a user's
own integration or test harness would.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from lockstep.systems import SYSTEMS

DEMO_TENANTS = {name: entry.demo_key for name, entry in SYSTEMS.items()}
# A few dozen records per system: enough to look like an estate, small enough to read.
DEMO_SEED = {"billing": {"customers": 12}, "crm": {}, "erp": {}, "cs": {"companies": 24}}


def _tls(verify: str | bool) -> ssl.SSLContext | bool:
    """httpx wants an SSLContext for a custom CA bundle."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def _admin(token: str) -> dict[str, str]:
    return {"Lockstep-Admin-Token": token}


def seed_demo(urls: dict[str, str], admin_token: str, verify: str | bool = True) -> None:
    with httpx.Client(timeout=30, verify=_tls(verify)) as client:
        for system, key in DEMO_TENANTS.items():
            if system not in urls:
                continue
            base = f"{urls[system]}/_sandbox"
            made = client.post(f"{base}/tenants", json={"key": key, "seed": 7}, headers=_admin(admin_token))
            if made.status_code == 409:  # a second demo on a running sandbox starts from a clean tenant
                client.post(f"{base}/tenants/{key}/reset", headers=_admin(admin_token)).raise_for_status()
            else:
                made.raise_for_status()
            seeded = client.post(f"{base}/tenants/{key}/seed", json=DEMO_SEED.get(system, {}),
                                 headers=_admin(admin_token))
            seeded.raise_for_status()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def play_demo(urls: dict[str, str], admin_token: str, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Billing story: a customer subscribes, renews, fails a payment, recovers. Returns what it saw."""
    if "billing" not in urls:
        return {}
    key = DEMO_TENANTS["billing"]
    base = urls["billing"]
    api = httpx.Client(base_url=base, auth=(key, ""), timeout=30)
    control = httpx.Client(base_url=f"{base}/_sandbox/tenants/{key}", headers=_admin(admin_token), timeout=30)
    seen: dict[str, Any] = {}

    def post(path: str, data: dict[str, Any]) -> dict[str, Any]:
        response = api.post(path, data=data)
        response.raise_for_status()
        return response.json()

    def advance(**move: Any) -> str:
        clock = control.post("/clock/advance", json=move).raise_for_status().json()
        return _when(clock["now"])

    def latest_invoice(sub_id: str) -> dict[str, Any]:
        return api.get("/v1/invoices", params={"subscription": sub_id, "limit": 1}).json()["data"][0]

    say("\n== Demo: a subscription's life on the billing mock ==")
    product = post("/v1/products", {"name": "Lockstep Growth"})
    price = post("/v1/prices", {"product": product["id"], "unit_amount": "4900", "currency": "usd",
                                "recurring[interval]": "month"})
    customer = post("/v1/customers", {"name": "Acme Rockets", "email": "billing@acme.example"})
    say(f"1. Acme Rockets signs up: customer {customer['id']}")
    card = post("/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    post(f"/v1/customers/{customer['id']}", {"invoice_settings[default_payment_method]": card["id"]})
    sub = post("/v1/subscriptions", {"customer": customer["id"], "items[0][price]": price["id"]})
    say(f"2. Subscribes to Growth at $49.00/month: {sub['id']} is {sub['status']}")
    # Renewal drafts finalize and charge an hour after the period ends, as Stripe's auto-advance does.
    day = advance(to=sub["items"]["data"][0].get("current_period_end", sub.get("current_period_end")) + 7200)
    invoice = latest_invoice(sub["id"])
    say(f"3. The clock moves to {day}: renewal invoice {invoice['id']} for ${invoice['amount_due'] / 100:.2f} "
        f"is {invoice['status']}")
    failing = post("/v1/payment_methods/pm_card_chargeCustomerFail/attach", {"customer": customer["id"]})
    post(f"/v1/customers/{customer['id']}", {"invoice_settings[default_payment_method]": failing["id"]})
    sub = api.get(f"/v1/subscriptions/{sub['id']}").json()
    period_end = sub["items"]["data"][0].get("current_period_end", sub.get("current_period_end"))
    day = advance(to=period_end + 7200)
    sub = api.get(f"/v1/subscriptions/{sub['id']}").json()
    invoice = latest_invoice(sub["id"])
    say(f"4. The card starts failing: on {day} the renewal fails (attempt {invoice['attempt_count']}), "
        f"the subscription is {sub['status']}, next retry {_when(invoice['next_payment_attempt'])}")
    post(f"/v1/customers/{customer['id']}", {"invoice_settings[default_payment_method]": card["id"]})
    day = advance(to=invoice["next_payment_attempt"] + 60)
    sub = api.get(f"/v1/subscriptions/{sub['id']}").json()
    invoice = latest_invoice(sub["id"])
    say(f"5. Acme updates its card; the dunning retry on {day} leaves the invoice {invoice['status']} "
        f"and the subscription {sub['status']}")
    events = api.get("/v1/events", params={"limit": 100}).json()["data"]
    say(f"   {len(events)} events emitted; see {base}/_sandbox/tenants/{key}/journal for every call")
    seen.update(customer=customer["id"], subscription=sub["id"], status=sub["status"], events=len(events))
    return seen


def play_crm_demo(urls: dict[str, str], admin_token: str, say: Callable[[str], None] = print,
                  verify: str | bool = True) -> dict[str, Any]:
    """CRM story: a duplicate account is merged in the UI; SOQL and queryAll tell the tale."""
    if "crm" not in urls:
        return {}
    key = DEMO_TENANTS["crm"]
    base = f"{urls['crm']}/services/data/v60.0"
    api = httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30, verify=_tls(verify))
    control = httpx.Client(base_url=f"{urls['crm']}/_sandbox/tenants/{key}", headers=_admin(admin_token),
                           timeout=30, verify=_tls(verify))
    say("\n== Demo: an account merge on the CRM mock ==")
    accounts = api.get(f"{base}/query", params={"q": "SELECT Id, Name FROM Account ORDER BY Name LIMIT 3"})
    rows = accounts.raise_for_status().json()["records"]
    say(f"1. The CRM has accounts such as {', '.join(r['Name'] for r in rows)}")
    master, loser = rows[0]["Id"], rows[1]["Id"]
    control.post("/actions", json={"action": "merge", "object": "Account", "master": master,
                                   "losers": [loser]}).raise_for_status()
    say(f"2. A sales-ops user merges {rows[1]['Name']} into {rows[0]['Name']}")
    soql = f"SELECT Id, IsDeleted, MasterRecordId FROM Account WHERE Id = '{loser}'"
    visible = api.get(f"{base}/query", params={"q": soql}).json()["totalSize"]
    merged = api.get(f"{base}/queryAll", params={"q": soql}).json()["records"]
    say(f"3. query sees {visible} row for the loser; queryAll sees IsDeleted={merged[0]['IsDeleted']}, "
        f"MasterRecordId={merged[0]['MasterRecordId']}")
    return {"master": master, "loser": loser, "loser_visible": visible, "merged": merged[0]}


def play_core_demo(urls: dict[str, str], admin_token: str, say: Callable[[str], None] = print,
                   verify: str | bool = True, timeout: float = 60.0) -> dict[str, Any]:
    """Lead to cash through the core: a deal closes in the CRM; the core books it in ERP, billing and CS."""
    if not {"crm", "erp", "billing", "cs", "core"} <= urls.keys():
        return {}
    tls = _tls(verify)
    crm_key, erp_key = DEMO_TENANTS["crm"], DEMO_TENANTS["erp"]
    crm = httpx.Client(base_url=f"{urls['crm']}/services/data/v60.0", timeout=30, verify=tls,
                       headers={"Authorization": f"Bearer {crm_key}"})
    crm_control = httpx.Client(base_url=f"{urls['crm']}/_sandbox/tenants/{crm_key}", timeout=30, verify=tls,
                               headers=_admin(admin_token))
    erp = httpx.Client(base_url=f"{urls['erp']}/services/rest/record/v1", timeout=30,
                       headers={"Authorization": f"Bearer {erp_key}"})
    core = httpx.Client(base_url=urls["core"], timeout=30)
    say("\n== Demo: lead to cash through the integration core ==")
    fields = crm.get("/sobjects/Account/describe").raise_for_status().json()["fields"]
    if not any(f["name"] == "Tax_Registration__c" for f in fields):
        crm_control.post("/actions", json={"action": "declare_field", "object": "Account", "field": {
            "name": "Tax_Registration__c", "type": "string", "length": 40}}).raise_for_status()
    if erp.get("/item/eid:ITEM-PLAT-ANNUAL").status_code == 404:
        httpx.post(f"{urls['erp']}/_sandbox/tenants/{erp_key}/seed", json={"customers": 0, "items": True},
                   headers=_admin(admin_token), timeout=30).raise_for_status()
    seeded = crm_control.post("/seed", json={"demo": False, "records": {
        "Account": [{"@ref": "acc", "Name": "Initech Europe", "BillingCountry": "Germany",
                     "Tax_Registration__c": "DE123456789"}],
        "Opportunity": [{"AccountId": "@acc", "Name": "Initech Europe - Platform", "StageName": "Proposal/Price Quote",
                         "CloseDate": "2026-01-15", "Amount": 36000}]}}).raise_for_status().json()["created"]
    opportunity = seeded["Opportunity"][0]
    say(f"1. Sales closes 'Initech Europe - Platform' ($36,000/year) as won in the CRM ({opportunity})")
    won = {"action": "close_opportunity", "id": opportunity, "won": True}
    crm_control.post("/actions", json=won).raise_for_status()
    key = f"closed-won:{opportunity}"
    deadline = time.monotonic() + timeout
    flow: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = core.get(f"/flows/{key}")
        flow = response.json() if response.status_code == 200 else {}
        if flow.get("status") in ("SUCCESS", "ERROR"):
            break
        time.sleep(0.2)  # polling a remote server's status, bounded by the deadline
    say(f"2. The CRM's change event reaches the core; flow {key} is {flow.get('status', 'not started')}")
    # The writes tell the story; reads and lookups are in the full trace.
    for step in flow.get("trace", []):
        action = str(step.get("action", ""))
        if not action.startswith("GET "):
            say(f"   {step.get('system', ''):<8} {action} {step.get('status', '')}")
    say(f"3. Follow it: {urls['core']}/flows/{key} and {urls['core']}/trace/{flow.get('correlation_id', '')}")
    return {"flow": key, "status": flow.get("status"), "steps": len(flow.get("trace", []))}
