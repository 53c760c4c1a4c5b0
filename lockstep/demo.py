"""The demo: seed a realistic tenant on each running mock, then play a short, narrated story over HTTP.

Everything here goes through the public wire APIs and the /_sandbox control API, exactly as a user's
own integration or test harness would.
"""

from __future__ import annotations

import ssl
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
