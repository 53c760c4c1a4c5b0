"""The demo: seed a realistic tenant on each running mock, then play a short, narrated story over HTTP.

Everything here goes through the public wire APIs and the /_sandbox control API, exactly as a user's
own integration or test harness would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

DEMO_TENANTS = {"billing": "sk_test_lockstep_demo"}


def _admin(token: str) -> dict[str, str]:
    return {"Lockstep-Admin-Token": token}


def seed_demo(urls: dict[str, str], admin_token: str) -> None:
    with httpx.Client(timeout=30) as client:
        for system, key in DEMO_TENANTS.items():
            if system not in urls:
                continue
            base = f"{urls[system]}/_sandbox"
            client.post(f"{base}/tenants", json={"key": key, "seed": 7}, headers=_admin(admin_token))
            seeded = client.post(f"{base}/tenants/{key}/seed", json={"demo": True}, headers=_admin(admin_token))
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

    def advance(by: str) -> str:
        clock = control.post("/clock/advance", json={"by": by}).raise_for_status().json()
        return _when(clock["now"])

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
    day = advance("31d")
    invoices = api.get("/v1/invoices", params={"subscription": sub["id"], "limit": 3}).json()["data"]
    say(f"3. The clock moves a month to {day}: renewal invoice {invoices[0]['id']} is {invoices[0]['status']}")
    failing = post("/v1/payment_methods/pm_card_chargeCustomerFail/attach", {"customer": customer["id"]})
    post(f"/v1/customers/{customer['id']}", {"invoice_settings[default_payment_method]": failing["id"]})
    day = advance("31d")
    sub = api.get(f"/v1/subscriptions/{sub['id']}").json()
    say(f"4. The card starts failing; on {day} the renewal fails and the subscription is {sub['status']}")
    post(f"/v1/customers/{customer['id']}", {"invoice_settings[default_payment_method]": card["id"]})
    day = advance("4d")
    sub = api.get(f"/v1/subscriptions/{sub['id']}").json()
    say(f"5. Acme updates its card; the dunning retry on {day} succeeds and the subscription is {sub['status']}")
    events = api.get("/v1/events", params={"limit": 100}).json()["data"]
    say(f"   {len(events)} events emitted; see {base}/_sandbox/tenants/{key}/journal for every call")
    seen.update(customer=customer["id"], subscription=sub["id"], status=sub["status"], events=len(events))
    return seen
