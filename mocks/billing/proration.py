"""Proration: the credit and debit lines a mid-period item change produces (pure functions).

For each changed item, Stripe issues two lines: "Unused time on <old>" (negative: the old amount times
the share of the period left) and "Remaining time on <new>" (positive), each rounded on its own to the
nearest minor unit. 1000/month -> 2000/month halfway through: -500 + 1000 = +500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mocks.billing.periods import fmt_date, prorate

TIMES = "\u00d7"


def item_key(item: dict[str, Any]) -> tuple[str, int]:
    return item["price"]["id"], item["quantity"]


def proration_lines(
    old_items: list[dict[str, Any]],
    new_items: list[dict[str, Any]],
    period_start: int,
    period_end: int,
    at: int,
    product_name: Callable[[str], str],
) -> list[dict[str, Any]]:
    """Lines (amount, description, price, quantity, subscription_item, period) for the change at `at`."""
    old_by_id = {i["id"]: i for i in old_items}
    new_by_id = {i["id"]: i for i in new_items}
    lines: list[dict[str, Any]] = []
    period = {"start": at, "end": period_end}
    for item_id, old in old_by_id.items():
        new = new_by_id.get(item_id)
        if new is not None and item_key(new) == item_key(old):
            continue
        lines.append(_line(old, -1, period_start, period_end, at, period, product_name))
        if new is not None:
            lines.append(_line(new, 1, period_start, period_end, at, period, product_name))
    for item_id, new in new_by_id.items():
        if item_id not in old_by_id:
            lines.append(_line(new, 1, period_start, period_end, at, period, product_name))
    return [line for line in lines if line["quantity"]]


def _line(item: dict[str, Any], sign: int, start: int, end: int, at: int, period: dict[str, int],
          product_name: Callable[[str], str]) -> dict[str, Any]:
    price = item["price"]
    full = price["unit_amount"] * item["quantity"]
    amount = sign * prorate(full, start, end, at)
    what = "Unused time on" if sign < 0 else "Remaining time on"
    return {
        "amount": amount,
        "description": f"{what} {item['quantity']} {TIMES} {product_name(price['product'])} after {fmt_date(at)}",
        "price": price,
        "quantity": item["quantity"],
        "subscription_item": item["id"],
        "period": dict(period),
    }


def cycle_description(item: dict[str, Any], product_name: Callable[[str], str]) -> str:
    price = item["price"]
    rec = price["recurring"] or {}
    every = rec.get("interval", "")
    if rec.get("interval_count", 1) != 1:
        every = f"{rec['interval_count']} {every}s"
    amount = f"{price['unit_amount'] / 100:.2f}"
    return f"{item['quantity']} {TIMES} {product_name(price['product'])} (at ${amount} / {every})"
