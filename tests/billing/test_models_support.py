"""Shared builders for the billing domain tests (no tests here)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from mocks.billing.models import BillingSettings, BillingState
from mocks.billing.store import Store
from mocks.kernel.clock import SandboxClock

DAY = 86_400
HOUR = 3_600


def ts(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp())


def make_state(seed: int = 7, start: int | None = None, **settings: Any) -> tuple[BillingState, list[dict]]:
    published: list[dict] = []
    clock = SandboxClock(start if start is not None else ts(2026, 1, 1))
    state = BillingState(clock=clock, rng=random.Random(seed), publish=published.append,
                         settings=BillingSettings(**settings))
    return state, published


def monthly_price(state: BillingState, amount: int = 1000, name: str = "Pro", interval: str = "month") -> dict:
    return state.create_price({"unit_amount": amount, "currency": "usd", "recurring": {"interval": interval},
                               "product_data": {"name": name}})


def customer_with_card(state: BillingState, token: str = "pm_card_visa", **params: Any) -> tuple[dict, dict]:
    customer = state.create_customer({"email": "ada@example.com", **params})
    pm = state.attach_payment_method(token, customer["id"])
    state.update_customer(customer["id"], {"invoice_settings": {"default_payment_method": pm["id"]}})
    return state.get_customer(customer["id"]), pm


def subscribe(state: BillingState, token: str = "pm_card_visa", amount: int = 1000, **params: Any) -> dict:
    customer, _ = customer_with_card(state, token)
    price = monthly_price(state, amount)
    return state.create_subscription({"customer": customer["id"], "items": [{"price": price["id"]}], **params})


def types(state: BillingState, since: int = 0) -> list[str]:
    """Event types in emission order (oldest first), skipping the first `since` events."""
    return [e["type"] for e in reversed(state.list_events())][since:]


def test_lists_by_customer_read_the_customer_index_and_survive_a_snapshot_restore() -> None:
    store = Store()
    for i in range(6):
        store.put({"object": "invoice", "id": f"in_{i}", "customer": f"cus_{i % 2}", "created": i})
    store.put({"object": "subscription", "id": "sub_1", "customer": "cus_1", "created": 1})
    assert [o["id"] for o in store.select("invoice", customer="cus_1")] == ["in_5", "in_3", "in_1"]
    assert [o["id"] for o in store.select("invoice", lambda o: o["created"] > 2, customer="cus_0")] == ["in_4"]
    store.remove("invoice", "in_3")
    assert [o["id"] for o in store.select("invoice", customer="cus_1")] == ["in_5", "in_1"]
    restored = Store()
    restored.load(store.dump())
    assert [o["id"] for o in restored.select("invoice", customer="cus_1")] == ["in_5", "in_1"]
    assert [o["id"] for o in restored.select("subscription", customer="cus_1")] == ["sub_1"]
    assert restored.select("invoice", customer="cus_9") == []
