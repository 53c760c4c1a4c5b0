"""Products and prices."""

from __future__ import annotations

from typing import Any

from mocks.billing.base import BillingBase
from mocks.billing.errors import invalid

INTERVALS = ("day", "week", "month", "year")


def _required(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise invalid(f"Missing required param: {name}.", name, code="parameter_missing")
    return value


class CatalogMixin(BillingBase):
    # --- products --------------------------------------------------------------------------------------
    def create_product(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _required(params, "name")
        now = self._now()
        pid = params.get("id") or self._new_id("product")
        if self.store.get("product", pid) is not None:
            raise invalid(f"Product already exists with ID {pid}.", "id", code="resource_already_exists")
        product = {
            "id": pid,
            "object": "product",
            "active": bool(params.get("active", True)),
            "created": now,
            "default_price": None,
            "description": params.get("description"),
            "features": [],
            "images": list(params.get("images") or []),
            "livemode": False,
            "metadata": {},
            "name": str(name),
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "tax_code": None,
            "type": "service",
            "unit_label": params.get("unit_label"),
            "updated": now,
            "url": params.get("url"),
        }
        self._apply_metadata(product, params.get("metadata"))
        self.store.put(product)
        self._emit("product.created", product)
        data = params.get("default_price_data")
        if data:
            price = self.create_price({**data, "product": pid})
            previous = self._changes(product, {"default_price": price["id"]})
            self._emit("product.updated", product, previous)
        return self._out(product)

    def get_product(self, product_id: str) -> dict[str, Any]:
        return self._out(self._require("product", product_id))

    def update_product(self, product_id: str, params: dict[str, Any]) -> dict[str, Any]:
        product = self._require("product", product_id)
        updates: dict[str, Any] = {}
        for key in ("name", "description", "statement_descriptor", "unit_label", "url", "images"):
            if key in params:
                updates[key] = params[key] if params[key] != "" else None
        if "active" in params:
            updates["active"] = bool(params["active"])
        if "default_price" in params:
            price = self._require("price", params["default_price"], "price", "default_price")
            if price["product"] != product_id:
                raise invalid("The price must belong to this product.", "default_price")
            updates["default_price"] = price["id"]
        before = dict(product["metadata"])
        previous = self._changes(product, updates)
        self._apply_metadata(product, params.get("metadata"))
        if product["metadata"] != before:
            previous["metadata"] = before
        if previous:
            product["updated"] = self._now()
            self._emit("product.updated", product, previous)
        return self._out(product)

    def list_products(self, active: bool | None = None) -> list[dict[str, Any]]:
        rows = self.store.select("product", lambda p: active is None or p["active"] == active)
        return [self._out(p) for p in rows]

    # --- prices ----------------------------------------------------------------------------------------
    def create_price(self, params: dict[str, Any]) -> dict[str, Any]:
        currency = str(_required(params, "currency")).lower()
        unit_amount = params.get("unit_amount")
        if unit_amount is None and params.get("unit_amount_decimal") is not None:
            unit_amount = int(float(params["unit_amount_decimal"]))
        if unit_amount is None:
            raise invalid("Missing required param: unit_amount.", "unit_amount", code="parameter_missing")
        if not isinstance(unit_amount, int) or isinstance(unit_amount, bool) or unit_amount < 0:
            raise invalid("Invalid non-negative integer", "unit_amount")
        if params.get("product_data"):
            product_id = self.create_product(params["product_data"])["id"]
        elif params.get("product"):
            product_id = self._require("product", params["product"], "product", "product")["id"]
        else:
            raise invalid("Missing required param: product.", "product", code="parameter_missing")
        recurring = None
        if params.get("recurring"):
            rec = params["recurring"]
            interval = rec.get("interval")
            if interval not in INTERVALS:
                raise invalid("Invalid recurring[interval]: must be one of day, week, month, or year",
                              "recurring[interval]")
            count = int(rec.get("interval_count") or 1)
            if count < 1 or (interval == "year" and count > 3) or count > 36:
                raise invalid("Invalid recurring[interval_count].", "recurring[interval_count]")
            recurring = {
                "aggregate_usage": None,
                "interval": interval,
                "interval_count": count,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
        lookup_key = params.get("lookup_key")
        if lookup_key:
            self._claim_lookup_key(lookup_key, bool(params.get("transfer_lookup_key")))
        price = {
            "id": self._new_id("price"),
            "object": "price",
            "active": bool(params.get("active", True)),
            "billing_scheme": "per_unit",
            "created": self._now(),
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": lookup_key or None,
            "metadata": {},
            "nickname": params.get("nickname"),
            "product": product_id,
            "recurring": recurring,
            "tax_behavior": params.get("tax_behavior") or "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if recurring else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        self._apply_metadata(price, params.get("metadata"))
        self.store.put(price)
        self._emit("price.created", price)
        return self._out(price)

    def _claim_lookup_key(self, lookup_key: str, transfer: bool) -> None:
        for other in self.store.select("price", lambda p: p["lookup_key"] == lookup_key):
            if not transfer:
                raise invalid(f"A price (`{other['id']}`) already uses that lookup key.", "lookup_key")
            previous = self._changes(other, {"lookup_key": None})
            self._emit("price.updated", other, previous)

    def get_price(self, price_id: str) -> dict[str, Any]:
        return self._out(self._require("price", price_id))

    def update_price(self, price_id: str, params: dict[str, Any]) -> dict[str, Any]:
        price = self._require("price", price_id)
        updates: dict[str, Any] = {}
        if "active" in params:
            updates["active"] = bool(params["active"])
        if "nickname" in params:
            updates["nickname"] = params["nickname"] or None
        if "lookup_key" in params and params["lookup_key"] != price["lookup_key"]:
            if params["lookup_key"]:
                self._claim_lookup_key(params["lookup_key"], bool(params.get("transfer_lookup_key")))
            updates["lookup_key"] = params["lookup_key"] or None
        before = dict(price["metadata"])
        previous = self._changes(price, updates)
        self._apply_metadata(price, params.get("metadata"))
        if price["metadata"] != before:
            previous["metadata"] = before
        if previous:
            self._emit("price.updated", price, previous)
        return self._out(price)

    def list_prices(
        self,
        product: str | None = None,
        active: bool | None = None,
        type: str | None = None,
        currency: str | None = None,
        lookup_keys: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        def keep(p: dict[str, Any]) -> bool:
            return (
                (product is None or p["product"] == product)
                and (active is None or p["active"] == active)
                and (type is None or p["type"] == type)
                and (currency is None or p["currency"] == currency.lower())
                and (not lookup_keys or p["lookup_key"] in lookup_keys)
            )

        return [self._out(p) for p in self.store.select("price", keep)]
