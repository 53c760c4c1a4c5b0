"""In-memory object store of one billing tenant: internal Stripe-shaped dicts by kind and id.

Objects keep their insertion sequence so lists come out newest first (by `created`, then insertion)
even when test-clock objects carry `created` times in the past. `private` holds per-object state that
Stripe never shows (a test card's behaviour, an invoice's dunning bookkeeping).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mocks.kernel.data import clone

KINDS = (
    "customer",
    "product",
    "price",
    "payment_method",
    "payment_intent",
    "charge",
    "subscription",
    "invoice",
    "invoiceitem",
    "test_clock",
)


# Kinds whose `customer` never changes once set (Stripe refuses to move them): lists filtered by customer read
# only that customer's objects. A month-end tenant holds tens of thousands of invoices, and every invoice sync
# lists one customer's open ones; a scan of them all made each list O(invoices).
BY_CUSTOMER = ("invoice", "subscription")


class Store:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.seq: dict[str, int] = {}
        self.private: dict[str, dict[str, Any]] = {}
        self._next = 0
        self._by_customer: dict[str, dict[str, dict[str, None]]] = {kind: {} for kind in BY_CUSTOMER}

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = obj["object"].removeprefix("test_helpers.")
        if obj["id"] not in self.seq:
            self.seq[obj["id"]] = self._next
            self._next += 1
        self.objects[kind][obj["id"]] = obj
        self._index(kind, obj)
        return obj

    def _index(self, kind: str, obj: dict[str, Any]) -> None:
        index = self._by_customer.get(kind)
        if index is not None and isinstance(obj.get("customer"), str):
            index.setdefault(obj["customer"], {})[obj["id"]] = None

    def get(self, kind: str, obj_id: Any) -> dict[str, Any] | None:
        if not isinstance(obj_id, str):
            return None
        return self.objects[kind].get(obj_id)

    def remove(self, kind: str, obj_id: str) -> None:
        obj = self.objects[kind].pop(obj_id, None)
        self.private.pop(obj_id, None)
        index = self._by_customer.get(kind)
        if obj is not None and index is not None and isinstance(obj.get("customer"), str):
            index.get(obj["customer"], {}).pop(obj_id, None)

    def priv(self, obj_id: str) -> dict[str, Any]:
        return self.private.setdefault(obj_id, {})

    def select(self, kind: str, pred: Callable[[dict[str, Any]], bool] | None = None, *,
               customer: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind matching `pred` (and belonging to `customer`, when given), newest first."""
        rows: Iterable[dict[str, Any]] = self.objects[kind].values()
        if customer is not None:
            index = self._by_customer.get(kind)
            rows = ([self.objects[kind][i] for i in index.get(customer, ())] if index is not None
                    else [o for o in rows if o.get("customer") == customer])
        if pred is not None:
            rows = [o for o in rows if pred(o)]
        return sorted(rows, key=lambda o: (o.get("created") or 0, self.seq.get(o["id"], 0)), reverse=True)

    def dump(self) -> dict[str, Any]:
        return clone(
            {"objects": self.objects, "seq": self.seq, "private": self.private, "next": self._next}
        )

    def load(self, data: dict[str, Any]) -> None:
        data = clone(data)
        self.objects = {kind: dict(data.get("objects", {}).get(kind, {})) for kind in KINDS}
        self.seq = dict(data.get("seq", {}))
        self.private = dict(data.get("private", {}))
        self._next = int(data.get("next", len(self.seq)))
        self._by_customer = {kind: {} for kind in BY_CUSTOMER}
        for kind in BY_CUSTOMER:
            for obj in self.objects[kind].values():
                self._index(kind, obj)
