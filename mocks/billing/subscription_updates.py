"""Subscription items and updates: item changes, prorations, billing-cycle resets, trial end, pausing."""

from __future__ import annotations

from typing import Any

from mocks.billing.base import BillingBase
from mocks.billing.errors import invalid
from mocks.billing.periods import add_interval
from mocks.billing.proration import cycle_description, proration_lines
from mocks.kernel.data import clone

PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")
_ENDED = ("canceled", "incomplete_expired")


class SubscriptionUpdatesMixin(BillingBase):
    # --- items -----------------------------------------------------------------------------------------
    def _build_items(self, sub_id: str, items_param: Any, now: int) -> list[dict[str, Any]]:
        if not items_param:
            raise invalid("Missing required param: items.", "items", code="parameter_missing")
        items: list[dict[str, Any]] = []
        for idx, spec in enumerate(items_param):
            items.append(self._new_item(sub_id, spec, idx, now, {i["price"]["id"] for i in items}))
        self._check_items(items)
        return items

    def _item_price(self, price_id: Any, idx: int) -> dict[str, Any]:
        param = f"items[{idx}][price]"
        if not price_id:
            raise invalid(f"Missing required param: {param}.", param, code="parameter_missing")
        price = self._require("price", price_id, "price", param)
        if price["type"] != "recurring":
            raise invalid("The price specified is set to `type=one_time` but this field only accepts prices "
                          "with `type=recurring`.", param)
        if not price["active"]:
            raise invalid("The price specified is inactive. This field only accepts active prices.", param)
        return price

    def _new_item(self, sub_id: str, spec: dict[str, Any], idx: int, now: int, taken: set[str],
                  item_id: str | None = None) -> dict[str, Any]:
        price = self._item_price(spec.get("price") or spec.get("plan"), idx)
        quantity = _quantity(spec.get("quantity", 1), idx)
        if price["id"] in taken:
            raise invalid("Cannot add multiple subscription items with the same price.", f"items[{idx}][price]")
        item = {
            "id": item_id or self._new_id("subscription_item"), "object": "subscription_item",
            "billing_thresholds": None, "created": now, "current_period_end": None, "current_period_start": None,
            "discounts": [], "metadata": {}, "price": self._out(price), "quantity": quantity,
            "subscription": sub_id, "tax_rates": [],
        }
        self._apply_metadata(item, spec.get("metadata"))
        return item

    @staticmethod
    def _check_items(items: list[dict[str, Any]]) -> None:
        first = items[0]["price"]
        for item in items[1:]:
            price = item["price"]
            if price["currency"] != first["currency"]:
                raise invalid("Currency and interval fields must match across all plans on this subscription. "
                              "Found mismatch in currency field.", "items")
            if _cadence(price) != _cadence(first):
                raise invalid("Currency and interval fields must match across all plans on this subscription. "
                              "Found mismatch in interval field.", "items")

    def _apply_item_changes(self, sub: dict[str, Any], items_param: list[dict[str, Any]], now: int,
                            preview: bool = False) -> list[dict[str, Any]]:
        result = clone(sub["items"]["data"])
        for idx, spec in enumerate(items_param or []):
            item_id = spec.get("id")
            if item_id:
                item = next((i for i in result if i["id"] == item_id), None)
                if item is None:
                    raise invalid(f"No such subscription item: '{item_id}'", f"items[{idx}][id]",
                                  code="resource_missing")
                if spec.get("deleted"):
                    result.remove(item)
                    continue
                price_id = spec.get("price") or spec.get("plan")
                if price_id and price_id != item["price"]["id"]:
                    if any(i["price"]["id"] == price_id for i in result):
                        raise invalid("Cannot add multiple subscription items with the same price.",
                                      f"items[{idx}][price]")
                    item["price"] = self._out(self._item_price(price_id, idx))
                if "quantity" in spec:
                    item["quantity"] = _quantity(spec["quantity"], idx)
                self._apply_metadata(item, spec.get("metadata"))
            elif not spec.get("deleted"):
                taken = {i["price"]["id"] for i in result}
                result.append(self._new_item(sub["id"], spec, idx, now, taken,
                                             item_id=f"si_preview{idx}" if preview else None))
        if not result:
            raise invalid("A subscription must have at least one active plan.", "items")
        self._check_items(result)
        return result

    # --- update ----------------------------------------------------------------------------------------
    def update_subscription(self, sub_id: str, params: dict[str, Any]) -> dict[str, Any]:
        sub = self._require("subscription", sub_id, "subscription")
        if sub["status"] in _ENDED and set(params) - {"metadata", "cancellation_details"}:
            raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
        clock = sub["test_clock"]
        now = self._now(clock)
        behavior = params.get("proration_behavior") or "create_prorations"
        if behavior not in PRORATION_BEHAVIORS:
            raise invalid(f"Invalid proration_behavior: {behavior}", "proration_behavior")
        at = self._proration_date(sub, params.get("proration_date"), now)
        previous: dict[str, Any] = {}
        prorations: list[dict[str, Any]] = []
        invoice_reason: str | None = None
        if params.get("items"):
            if sub["status"] == "incomplete":
                raise invalid("You cannot update a subscription in `incomplete` status in a way that results "
                              "in a new invoice or invoice items.", "items")
            old_items = clone(sub["items"]["data"])
            new_items = self._apply_item_changes(sub, params["items"], now)
            if new_items != old_items:
                previous["items"] = clone(sub["items"])
                prorate = behavior != "none" and sub["status"] != "trialing"
                reset = _cadence(new_items[0]["price"]) != _cadence(old_items[0]["price"])
                if prorate:
                    # A new interval resets the billing cycle: credit unused time, bill a new period now.
                    prorations = proration_lines(old_items, [] if reset else new_items,
                                                 sub["current_period_start"], sub["current_period_end"],
                                                 now if reset else at, self._product_name)
                for item in new_items:
                    item["current_period_start"] = sub["current_period_start"]
                    item["current_period_end"] = sub["current_period_end"]
                sub["items"]["data"] = new_items
                sub["items"]["total_count"] = len(new_items)
                if reset:
                    self._reset_cycle(sub, now, previous)
                    invoice_reason = "subscription_update"
        if params.get("trial_end") == "now" and sub["status"] == "trialing":
            previous["trial_end"] = sub["trial_end"]
            previous["status"] = "trialing"
            sub.update(trial_end=now, status="active")
            self._unschedule(clock, f"trial_will_end:{sub_id}")
            self._reset_cycle(sub, now, previous)
            invoice_reason = "subscription_update"
        updates: dict[str, Any] = {}
        if "default_payment_method" in params:
            updates["default_payment_method"] = self._validate_pm_param(sub, params["default_payment_method"])
        if "cancel_at_period_end" in params:
            flag = bool(params["cancel_at_period_end"])
            updates.update(cancel_at_period_end=flag, cancel_at=sub["current_period_end"] if flag else None,
                           canceled_at=now if flag else None)
        for key in ("collection_method", "days_until_due", "description"):
            if key in params:
                updates[key] = params[key] if params[key] != "" else None
        if "pause_collection" in params:
            pause = params["pause_collection"] or None
            if pause is not None and pause.get("behavior") not in ("keep_as_draft", "mark_uncollectible", "void"):
                raise invalid("Invalid pause_collection[behavior].", "pause_collection[behavior]")
            updates["pause_collection"] = None if pause is None else {
                "behavior": pause["behavior"], "resumes_at": pause.get("resumes_at")}
        previous.update(self._changes(sub, updates))
        before = dict(sub["metadata"])
        self._apply_metadata(sub, params.get("metadata"))
        if sub["metadata"] != before:
            previous["metadata"] = before
        if previous:
            self._emit("customer.subscription.updated", sub, previous)
        if prorations:
            self._create_proration_items(sub, prorations)
        if invoice_reason is not None:
            self._invoice_now(sub, invoice_reason, cycle_lines=True)
        elif behavior == "always_invoice" and prorations:
            self._invoice_now(sub, "subscription_update", cycle_lines=False, proration_date=at)
        return self._out(sub)

    def _proration_date(self, sub: dict[str, Any], value: Any, now: int) -> int:
        if value is None or value == "":
            return now
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid("Invalid integer", "proration_date")
        if not sub["current_period_start"] <= value <= sub["current_period_end"]:
            raise invalid("The proration_date must be within the current billing period.", "proration_date")
        return value

    def _reset_cycle(self, sub: dict[str, Any], now: int, previous: dict[str, Any]) -> None:
        rec = sub["items"]["data"][0]["price"]["recurring"]
        previous.setdefault("billing_cycle_anchor", sub["billing_cycle_anchor"])
        previous.setdefault("current_period_start", sub["current_period_start"])
        previous.setdefault("current_period_end", sub["current_period_end"])
        end = add_interval(now, rec["interval"], rec["interval_count"], 1)
        sub.update(billing_cycle_anchor=now, current_period_start=now, current_period_end=end)
        for item in sub["items"]["data"]:
            item.update(current_period_start=now, current_period_end=end)
        self._schedule(sub["test_clock"], end, "renew", {"subscription": sub["id"]}, f"renew:{sub['id']}")

    def _invoice_now(self, sub: dict[str, Any], reason: str, *, cycle_lines: bool,
                     proration_date: int | None = None) -> None:
        """Invoice the subscription's pending items (and a fresh period) at once, then collect."""
        customer = self.store.get("customer", sub["customer"])
        now = self._now(sub["test_clock"])
        invoice = self._new_invoice(customer, billing_reason=reason, subscription=sub, period_start=now,
                                    period_end=now, collection_method=sub["collection_method"],
                                    days_until_due=sub["days_until_due"])
        if proration_date is not None:
            invoice["subscription_proration_date"] = proration_date
        for pending in self._pending_items(customer["id"], sub["id"]):
            if pending["subscription"] == sub["id"]:
                self._add_item_to_invoice(invoice, pending)
        if cycle_lines:
            for item in sub["items"]["data"]:
                self._line(invoice, amount=item["price"]["unit_amount"] * item["quantity"],
                           description=cycle_description(item, self._product_name),
                           period={"start": sub["current_period_start"], "end": sub["current_period_end"]},
                           price=item["price"], quantity=item["quantity"], type_="subscription",
                           subscription=sub["id"], subscription_item=item["id"])
        self._recompute(invoice)
        sub["latest_invoice"] = invoice["id"]
        self._emit("invoice.created", invoice)
        self._finalize(invoice)
        if invoice["status"] == "open" and invoice["collection_method"] == "charge_automatically":
            self._collect(invoice, automatic=True)


def _cadence(price: dict[str, Any]) -> tuple[str, int]:
    rec = price["recurring"] or {}
    return rec.get("interval", ""), rec.get("interval_count", 1)


def _quantity(value: Any, idx: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid("Invalid non-negative integer", f"items[{idx}][quantity]")
    return value
