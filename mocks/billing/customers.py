"""Customers. A customer created with `test_clock` lives on that clock, with everything it owns."""

from __future__ import annotations

from typing import Any

from mocks.billing.base import BillingBase, advancing_error
from mocks.billing.errors import invalid
from mocks.billing.ids import random_token
from mocks.kernel.data import clone

_PLAIN_FIELDS = ("email", "name", "description", "phone", "address", "shipping", "preferred_locales")


class CustomersMixin(BillingBase):
    def create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        test_clock = params.get("test_clock") or None
        if test_clock is not None:
            tc = self._require("test_clock", test_clock, "test_clock", "test_clock")
            if tc["status"] == "advancing":
                raise advancing_error(test_clock)
        balance = params.get("balance", 0)
        if not isinstance(balance, int) or isinstance(balance, bool):
            raise invalid("Invalid integer", "balance")
        customer = {
            "id": self._new_id("customer"),
            "object": "customer",
            "address": params.get("address"),
            "balance": balance,
            "created": self._now(test_clock),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description"),
            "discount": None,
            "email": params.get("email"),
            "invoice_prefix": params.get("invoice_prefix") or random_token(self.rng, 8).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": {},
            "name": params.get("name"),
            "next_invoice_sequence": 1,
            "phone": params.get("phone"),
            "preferred_locales": list(params.get("preferred_locales") or []),
            "shipping": params.get("shipping"),
            "tax_exempt": params.get("tax_exempt") or "none",
            "test_clock": test_clock,
        }
        self._apply_metadata(customer, params.get("metadata"))
        self.store.put(customer)
        self._emit("customer.created", customer)
        pm = params.get("payment_method")
        if pm:
            self.attach_payment_method(pm, customer["id"])
        default_pm = (params.get("invoice_settings") or {}).get("default_payment_method")
        if default_pm:
            self.update_customer(customer["id"], {"invoice_settings": {"default_payment_method": default_pm}})
        return self._out(customer)

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        customer = self.store.get("customer", customer_id)
        if customer is None:
            return self._out(self._require("customer", customer_id))
        if customer.get("deleted"):
            return {"id": customer_id, "object": "customer", "deleted": True}
        return self._out(customer)

    def update_customer(self, customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        customer = self._require("customer", customer_id)
        updates: dict[str, Any] = {}
        for key in _PLAIN_FIELDS:
            if key in params:
                updates[key] = params[key] if params[key] != "" else None
        if "balance" in params:
            updates["balance"] = int(params["balance"])
        if params.get("invoice_prefix"):
            updates["invoice_prefix"] = str(params["invoice_prefix"])
        if "invoice_settings" in params:
            settings = clone(customer["invoice_settings"])
            incoming = params["invoice_settings"] or {}
            if "default_payment_method" in incoming:
                pm_id = incoming["default_payment_method"] or None
                if pm_id is not None:
                    self._require_attached(pm_id, customer_id, "invoice_settings[default_payment_method]")
                settings["default_payment_method"] = pm_id
            for key in ("footer", "custom_fields", "rendering_options"):
                if key in incoming:
                    settings[key] = incoming[key] or None
            updates["invoice_settings"] = settings
        if "default_source" in params:
            updates["default_source"] = params["default_source"] or None
        before = dict(customer["metadata"])
        previous = self._changes(customer, updates)
        self._apply_metadata(customer, params.get("metadata"))
        if customer["metadata"] != before:
            previous["metadata"] = before
        if previous:
            self._emit("customer.updated", customer, previous)
        return self._out(customer)

    def delete_customer(self, customer_id: str) -> dict[str, Any]:
        """Cancels the customer's live subscriptions (as Stripe does), then leaves a tombstone."""
        customer = self._require("customer", customer_id)
        for sub in self.store.select("subscription", customer=customer_id):
            if sub["status"] not in ("canceled", "incomplete_expired"):
                self._end_subscription(sub, reason="cancellation_requested")
        for pm in self.store.select("payment_method", lambda p: p["customer"] == customer_id):
            pm["customer"] = None
        snapshot = clone(customer)
        customer.clear()
        customer.update({"id": customer_id, "object": "customer", "deleted": True,
                         "created": snapshot["created"], "test_clock": snapshot["test_clock"]})
        self._emit("customer.deleted", snapshot)
        return {"id": customer_id, "object": "customer", "deleted": True}

    def list_customers(self, email: str | None = None, test_clock: str | None = None, *,
                       copy: bool = True) -> list[dict[str, Any]]:
        def keep(c: dict[str, Any]) -> bool:
            return (
                not c.get("deleted")
                and (email is None or c["email"] == email)
                and (test_clock is None or c["test_clock"] == test_clock)
            )

        rows = self.store.select("customer", keep)
        return [self._out(c) for c in rows] if copy else rows

    def _customer_live(self, customer_id: str, param: str = "customer") -> dict[str, Any]:
        return self._require("customer", customer_id, "customer", param)

