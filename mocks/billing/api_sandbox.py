"""Billing's control-API hooks: demo seed data and "user actions" (what a person does in the dashboard).

Both are called by the kernel's `/_sandbox/tenants/{key}/seed` and `/actions` routes; their complaints
about the input are ValueErrors (the control API answers 400 with the reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mocks.billing.errors import BillingError

__all__ = ["ACTIONS", "action", "seed"]

Json = dict[str, Any]

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Berners"]
COMPANY = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne"]

PLANS = [
    # name, monthly, yearly (minor units, usd)
    ("Starter", 1000, 10000),
    ("Growth", 5000, 50000),
]


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except BillingError as exc:
        raise ValueError(exc.message) from exc


def seed(tenant: Any, payload: Json) -> Json:
    """Demo data: products Starter/Growth with monthly and yearly prices, customers paying by visa,
    one subscription each. `payload`: {"customers": 3, "subscriptions": true}."""
    state, rng = tenant.state, tenant.rng
    count = int(payload.get("customers", 3))
    if not 0 <= count <= 500:
        raise ValueError("customers must be between 0 and 500")
    with_subs = bool(payload.get("subscriptions", True))
    prices: dict[str, str] = {}
    products: list[str] = []
    for name, monthly, yearly in PLANS:
        product = _call(state.create_product, {"name": name, "metadata": {"lockstep_seed": "demo"}})
        products.append(product["id"])
        for interval, amount in (("month", monthly), ("year", yearly)):
            price = _call(state.create_price, {
                "product": product["id"], "currency": "usd", "unit_amount": amount,
                "recurring": {"interval": interval}, "lookup_key": f"{name.lower()}_{interval}ly",
                "nickname": f"{name} {interval}ly",
            })
            prices[f"{name.lower()}_{interval}ly"] = price["id"]
    customers: list[str] = []
    subscriptions: list[str] = []
    for i in range(count):
        first, last, company = rng.choice(FIRST), rng.choice(LAST), rng.choice(COMPANY)
        customer = _call(state.create_customer, {
            "name": f"{first} {last}", "email": f"{first}.{last}.{i}@{company}.example".lower(),
            "description": f"{company} (demo)", "metadata": {"lockstep_seed": "demo"},
        })
        pm = _call(state.attach_payment_method, "pm_card_visa", customer["id"])
        _call(state.update_customer, customer["id"], {"invoice_settings": {"default_payment_method": pm["id"]}})
        customers.append(customer["id"])
        if with_subs:
            plan = rng.choice(["starter_monthly", "growth_monthly", "starter_yearly"])
            sub = _call(state.create_subscription, {"customer": customer["id"], "items": [{"price": prices[plan]}]})
            subscriptions.append(sub["id"])
    return {"products": products, "prices": prices, "customers": customers, "subscriptions": subscriptions}


def _required(payload: Json, name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is required")
    return value


def _default_pm(state: Any, customer_id: str) -> str:
    customer = _call(state.get_customer, customer_id)
    pm = (customer.get("invoice_settings") or {}).get("default_payment_method")
    if not pm:
        raise ValueError(f"customer {customer_id} has no default payment method")
    return pm


def expire_card(state: Any, payload: Json) -> Json:
    pm = payload.get("payment_method") or _default_pm(state, _required(payload, "customer"))
    return _call(state.expire_card, pm)


def update_default_payment_method(state: Any, payload: Json) -> Json:
    """The customer enters a new card (a test token such as pm_card_visa) and makes it the default."""
    customer = _required(payload, "customer")
    pm = _call(state.attach_payment_method, payload.get("payment_method") or "pm_card_visa", customer)
    return _call(state.update_customer, customer, {"invoice_settings": {"default_payment_method": pm["id"]}})


def fail_next_charge(state: Any, payload: Json) -> Json:
    return _call(state.fail_next_charge, _required(payload, "customer"),
                 payload.get("decline_code") or "generic_decline")


def cancel_subscription(state: Any, payload: Json) -> Json:
    return _call(state.cancel_subscription, _required(payload, "subscription"), {})


def pay_invoice(state: Any, payload: Json) -> Json:
    """The customer pays an open invoice on the hosted page (with their default card)."""
    return _call(state.pay_invoice, _required(payload, "invoice"), {})


ACTIONS: dict[str, Callable[[Any, Json], Json]] = {
    "expire_card": expire_card,
    "update_default_payment_method": update_default_payment_method,
    "fail_next_charge": fail_next_charge,
    "cancel_subscription": cancel_subscription,
    "pay_invoice": pay_invoice,
}


def action(tenant: Any, payload: Json) -> Json:
    name = payload.get("action") or payload.get("name")
    fn = ACTIONS.get(name) if isinstance(name, str) else None
    if fn is None:
        raise ValueError(f"unknown action {name!r}; known: {sorted(ACTIONS)}")
    params = payload.get("params") if isinstance(payload.get("params"), dict) else payload
    return {"action": name, "result": fn(tenant.state, params)}
