"""Stripe-style object ids (`cus_` + 14 base62 chars), drawn from the tenant's seeded RNG."""

from __future__ import annotations

import random
import string

BASE62 = string.digits + string.ascii_letters
ID_LENGTH = 14

PREFIXES = {
    "customer": "cus",
    "product": "prod",
    "price": "price",
    "payment_method": "pm",
    "subscription": "sub",
    "subscription_item": "si",
    "invoice": "in",
    "line_item": "il",
    "invoiceitem": "ii",
    "invoice_payment": "inpay",
    "payment_intent": "pi",
    "charge": "ch",
    "event": "evt",
    "test_clock": "clock",
}


def random_token(rng: random.Random, length: int = ID_LENGTH) -> str:
    return "".join(rng.choice(BASE62) for _ in range(length))


def new_id(rng: random.Random, kind: str) -> str:
    """A fresh id for an object kind (`customer` -> `cus_...`)."""
    return f"{PREFIXES[kind]}_{random_token(rng)}"
