"""Subscriptions: creation and first payment, renewals, trials, updates with prorations, cancellation.

Status machine (transitions elsewhere: dunning.py):
  create -> trialing (trial) | active (first invoice paid) | incomplete (first payment failed / needs action)
  incomplete -> active (invoice paid) | incomplete_expired (unpaid after incomplete_expiry_s)
  trialing -> active (trial end; its invoice may then fail -> past_due)
  active -> past_due (renewal payment failed) -> active (paid) | canceled / unpaid (retries exhausted)
  any live -> canceled (cancel now, cancel_at_period_end at the period end, customer deleted)
"""

from __future__ import annotations

from typing import Any

from mocks.billing.base import BillingBase
from mocks.billing.errors import invalid
from mocks.billing.payments import TEST_CARDS, card_error
from mocks.billing.periods import DAY, add_interval, period_end_after
from mocks.billing.proration import cycle_description, proration_lines
from mocks.billing.subscription_updates import SubscriptionUpdatesMixin

LIVE = ("trialing", "active", "past_due", "unpaid", "incomplete", "paused")
PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")



class SubscriptionsMixin(SubscriptionUpdatesMixin, BillingBase):
    def create_subscription(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer_live(params.get("customer"))
        clock = customer["test_clock"]
        now = self._now(clock)
        behavior = params.get("payment_behavior") or "allow_incomplete"
        if behavior not in PAYMENT_BEHAVIORS:
            raise invalid(f"Invalid payment_behavior: {behavior}", "payment_behavior")
        method = params.get("collection_method") or "charge_automatically"
        pm_id = params.get("default_payment_method") or None
        if pm_id:
            self._require_attached(pm_id, customer["id"], "default_payment_method")
        trial_end = self._trial_end(params, now)
        sub_id = self._new_id("subscription")
        items = self._build_items(sub_id, params.get("items"), now)
        rec = items[0]["price"]["recurring"]
        anchor = trial_end or now
        period_end = trial_end or add_interval(anchor, rec["interval"], rec["interval_count"], 1)
        first_total = sum(i["price"]["unit_amount"] * i["quantity"] for i in items)
        if behavior == "error_if_incomplete" and not trial_end and first_total > 0 and method == \
                "charge_automatically":
            outcome = self._predict(customer, pm_id or customer["invoice_settings"]["default_payment_method"])
            if outcome is not None:
                self.store.priv(customer["id"]).pop("fail_next", None)
                raise card_error(outcome)
        for item in items:
            item.update(current_period_start=now, current_period_end=period_end)
        sub = {
            "id": sub_id, "object": "subscription", "application": None, "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None}, "billing_cycle_anchor": anchor,
            "billing_cycle_anchor_config": None, "billing_thresholds": None, "cancel_at": None,
            "cancel_at_period_end": False, "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": method, "created": now, "currency": items[0]["price"]["currency"],
            "current_period_end": period_end, "current_period_start": now, "customer": customer["id"],
            "days_until_due": params.get("days_until_due"), "default_payment_method": pm_id,
            "default_source": None, "default_tax_rates": [], "description": params.get("description"),
            "discount": None, "discounts": [], "ended_at": None, "invoice_settings": {"issuer": {"type": "self"}},
            "items": {"object": "list", "data": items, "has_more": False, "total_count": len(items),
                      "url": f"/v1/subscription_items?subscription={sub_id}"},
            "latest_invoice": None, "livemode": False, "metadata": {},
            "next_pending_invoice_item_invoice": None, "on_behalf_of": None, "pause_collection": None,
            "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                                 "save_default_payment_method": "off"},
            "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
            "schedule": None, "start_date": now, "status": "trialing" if trial_end else "incomplete",
            "test_clock": clock, "transfer_data": None, "trial_end": trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": now if trial_end else None,
        }
        self._apply_metadata(sub, params.get("metadata"))
        if not trial_end and (first_total == 0 or method == "send_invoice" or (
                behavior == "allow_incomplete" and self._predict(customer, self._sub_pm(sub)) is None)):
            sub["status"] = "active"
        self.store.put(sub)
        if customer["currency"] is None:
            customer["currency"] = sub["currency"]
        self._emit("customer.subscription.created", sub)
        self._first_invoice(sub, customer, behavior, now)
        if params.get("cancel_at_period_end"):
            self.update_subscription(sub_id, {"cancel_at_period_end": True})
        self._schedule(clock, sub["current_period_end"], "renew", {"subscription": sub_id}, f"renew:{sub_id}")
        if trial_end and trial_end - self.settings.trial_will_end_s > now:
            self._schedule(clock, trial_end - self.settings.trial_will_end_s, "trial_will_end",
                           {"subscription": sub_id}, f"trial_will_end:{sub_id}")
        return self._out(sub)

    def _trial_end(self, params: dict[str, Any], now: int) -> int | None:
        trial_end = params.get("trial_end")
        if trial_end == "now":
            return None
        if trial_end is not None:
            if not isinstance(trial_end, int) or trial_end <= now:
                raise invalid("Invalid timestamp: must be an integer Unix timestamp in the future.", "trial_end")
            return trial_end
        days = params.get("trial_period_days")
        if days:
            if not isinstance(days, int) or days < 0 or days > 730:
                raise invalid("Invalid trial_period_days: must be between 0 and 730.", "trial_period_days")
            return now + days * DAY
        return None

    def _sub_pm(self, sub: dict[str, Any]) -> str | None:
        if sub["default_payment_method"]:
            return sub["default_payment_method"]
        customer = self.store.get("customer", sub["customer"])
        return customer["invoice_settings"]["default_payment_method"] if customer else None

    def _predict(self, customer: dict[str, Any], pm_id: str | None) -> str | None:
        """The decline code the next charge with `pm_id` would meet (None: it would succeed)."""
        pm = self.store.get("payment_method", pm_id) if pm_id else None
        if pm is None:
            return "generic_decline"
        behaviour = self.store.priv(pm["id"]).get("behaviour", {})
        if behaviour.get("expired"):
            return "expired_card"
        fail = self.store.priv(customer["id"]).get("fail_next") or behaviour.get("charge_fail")
        if fail:
            return fail
        if behaviour.get("needs_action") and not behaviour.get("authenticated"):
            return "authentication_required"
        return None

    def _first_invoice(self, sub: dict[str, Any], customer: dict[str, Any], behavior: str, now: int) -> None:
        invoice = self._new_invoice(customer, billing_reason="subscription_create", subscription=sub,
                                    period_start=now, period_end=now, collection_method=sub["collection_method"],
                                    days_until_due=sub["days_until_due"])
        trial = sub["status"] == "trialing"
        for item in sub["items"]["data"]:
            name = self._product_name(item["price"]["product"])
            self._line(invoice, amount=0 if trial else item["price"]["unit_amount"] * item["quantity"],
                       description=f"Trial period for {name}" if trial else cycle_description(
                           item, self._product_name),
                       period={"start": now, "end": sub["current_period_end"]}, price=item["price"],
                       quantity=item["quantity"], type_="subscription", subscription=sub["id"],
                       subscription_item=item["id"])
        for pending in self._pending_items(customer["id"], sub["id"]):
            self._add_item_to_invoice(invoice, pending)
        self._recompute(invoice)
        sub["latest_invoice"] = invoice["id"]
        self._emit("invoice.created", invoice)
        self._finalize(invoice)
        if invoice["status"] != "open" or sub["collection_method"] != "charge_automatically":
            return
        if behavior != "default_incomplete":
            self._collect(invoice, automatic=True)
        else:
            pi = self.store.get("payment_intent", invoice["payment_intent"])
            pi["payment_method"] = self._sub_pm(sub)
            if pi["payment_method"]:
                pi["status"] = "requires_confirmation"
        if sub["status"] == "incomplete":
            self._schedule(sub["test_clock"], now + self.settings.incomplete_expiry_s, "incomplete_expire",
                           {"subscription": sub["id"]}, f"expire:{sub['id']}")

    def _product_name(self, product_id: str) -> str:
        product = self.store.get("product", product_id)
        return product["name"] if product else product_id

    def get_subscription(self, sub_id: str) -> dict[str, Any]:
        return self._out(self._require("subscription", sub_id, "subscription"))

    def list_subscriptions(self, customer: str | None = None, status: str | None = None,
                           price: str | None = None, test_clock: str | None = None, *,
                           copy: bool = True) -> list[dict[str, Any]]:
        def keep(s: dict[str, Any]) -> bool:
            if status is None and s["status"] in ("canceled", "incomplete_expired"):
                return False
            if status not in (None, "all") and s["status"] != status:
                return False
            if price is not None and all(i["price"]["id"] != price for i in s["items"]["data"]):
                return False
            return test_clock is None or s["test_clock"] == test_clock

        rows = self.store.select("subscription", keep, customer=customer)
        return [self._out(s) for s in rows] if copy else rows

    # --- renewal ---------------------------------------------------------------------------------------
    def _job_renew(self, payload: dict[str, Any]) -> None:
        sub = self.store.get("subscription", payload["subscription"])
        if sub is None or sub["status"] not in LIVE or sub["status"] == "incomplete":
            return
        now = self._now(sub["test_clock"])
        if sub["cancel_at_period_end"] or (sub["cancel_at"] and sub["cancel_at"] <= now):
            self._end_subscription(sub, reason="cancellation_requested")
            return
        old_start, old_end = sub["current_period_start"], sub["current_period_end"]
        rec = sub["items"]["data"][0]["price"]["recurring"]
        new_end = period_end_after(sub["billing_cycle_anchor"], rec["interval"], rec["interval_count"], old_end)
        previous: dict[str, Any] = {"current_period_start": old_start, "current_period_end": old_end}
        sub.update(current_period_start=old_end, current_period_end=new_end)
        for item in sub["items"]["data"]:
            item.update(current_period_start=old_end, current_period_end=new_end)
        if sub["status"] == "trialing":
            previous["status"] = "trialing"
            sub["status"] = "active"
        self._emit("customer.subscription.updated", sub, previous)
        self._cycle_invoice(sub, old_start, old_end, "subscription_cycle")
        self._schedule(sub["test_clock"], new_end, "renew", {"subscription": sub["id"]}, f"renew:{sub['id']}")

    def _cycle_invoice(self, sub: dict[str, Any], period_start: int, period_end: int, reason: str) -> None:
        customer = self.store.get("customer", sub["customer"])
        pause = (sub["pause_collection"] or {}).get("behavior")
        auto = sub["status"] != "unpaid" and pause != "keep_as_draft"
        invoice = self._new_invoice(customer, billing_reason=reason, subscription=sub, period_start=period_start,
                                    period_end=period_end, auto_advance=auto,
                                    collection_method=sub["collection_method"], days_until_due=sub["days_until_due"])
        for pending in self._pending_items(customer["id"], sub["id"]):
            self._add_item_to_invoice(invoice, pending)
        for item in sub["items"]["data"]:
            self._line(invoice, amount=item["price"]["unit_amount"] * item["quantity"],
                       description=cycle_description(item, self._product_name),
                       period={"start": sub["current_period_start"], "end": sub["current_period_end"]},
                       price=item["price"], quantity=item["quantity"], type_="subscription",
                       subscription=sub["id"], subscription_item=item["id"])
        self._recompute(invoice)
        sub["latest_invoice"] = invoice["id"]
        self._invoice_created(invoice)
        if pause in ("void", "mark_uncollectible"):
            self._finalize(invoice)
            if invoice["status"] == "open":
                self._close_invoice(invoice, *(("void", "voided_at", "invoice.voided") if pause == "void" else (
                    "uncollectible", "marked_uncollectible_at", "invoice.marked_uncollectible")))

    def _job_trial_will_end(self, payload: dict[str, Any]) -> None:
        sub = self.store.get("subscription", payload["subscription"])
        if sub is not None and sub["status"] == "trialing":
            self._emit("customer.subscription.trial_will_end", sub)

    def _job_incomplete_expire(self, payload: dict[str, Any]) -> None:
        sub = self.store.get("subscription", payload["subscription"])
        if sub is None or sub["status"] != "incomplete":
            return
        invoice = self.store.get("invoice", sub["latest_invoice"])
        self._unschedule(sub["test_clock"], f"renew:{sub['id']}")
        now = self._now(sub["test_clock"])
        previous = self._changes(sub, {"status": "incomplete_expired", "ended_at": now})
        self._emit("customer.subscription.updated", sub, previous)
        if invoice is not None and invoice["status"] == "open":
            self._close_invoice(invoice, "void", "voided_at", "invoice.voided")
        pi = self.store.get("payment_intent", invoice["payment_intent"]) if invoice else None
        if pi is not None and pi["status"] != "succeeded":
            pi.update(status="canceled", canceled_at=now, cancellation_reason="automatic")
            self._emit("payment_intent.canceled", pi)
        self._emit("customer.subscription.deleted", sub)

    # --- cancellation ----------------------------------------------------------------------------------
    def cancel_subscription(self, sub_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = params or {}
        sub = self._require("subscription", sub_id, "subscription")
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise invalid(f"This subscription has already been canceled: {sub_id}", code="resource_missing")
        now = self._now(sub["test_clock"])
        if params.get("prorate") and sub["status"] != "trialing":
            lines = proration_lines(sub["items"]["data"], [], sub["current_period_start"],
                                    sub["current_period_end"], now, self._product_name)
            self._create_proration_items(sub, lines)
        details = params.get("cancellation_details") or {}
        for key in ("comment", "feedback"):
            if key in details:
                sub["cancellation_details"][key] = details[key] or None
        self._end_subscription(sub, reason="cancellation_requested")
        if params.get("invoice_now"):
            pending = self._pending_items(sub["customer"], sub["id"])
            if pending:
                customer = self.store.get("customer", sub["customer"])
                invoice = self._new_invoice(customer, billing_reason="subscription_cycle", subscription=sub,
                                            period_start=sub["current_period_start"], period_end=now)
                for item in pending:
                    self._add_item_to_invoice(invoice, item)
                sub["latest_invoice"] = invoice["id"]
                self._emit("invoice.created", invoice)
                self._finalize(invoice)
                if invoice["status"] == "open":
                    self._collect(invoice, automatic=False)
        return self._out(sub)

    def _end_subscription(self, sub: dict[str, Any], *, reason: str) -> None:
        now = self._now(sub["test_clock"])
        for key in ("renew", "trial_will_end", "expire"):
            self._unschedule(sub["test_clock"], f"{key}:{sub['id']}")
        sub["cancellation_details"] = {**sub["cancellation_details"], "reason": reason}
        sub.update(status="canceled", canceled_at=now, ended_at=now)
        if sub["trial_end"] and sub["trial_end"] > now:
            sub["trial_end"] = now
        self._emit("customer.subscription.deleted", sub)

    def _create_proration_items(self, sub: dict[str, Any], lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        customer = self.store.get("customer", sub["customer"])
        return [
            self._invoice_item(customer, line["amount"], sub["currency"], line["description"], line["price"],
                               line["quantity"], None, line["period"], subscription=sub["id"],
                               subscription_item=line["subscription_item"], proration=True)
            for line in lines
        ]

    def _validate_pm_param(self, sub: dict[str, Any], pm_id: Any) -> str | None:
        if not pm_id:
            return None
        if pm_id in TEST_CARDS:
            return self.attach_payment_method(pm_id, sub["customer"])["id"]
        self._require_attached(pm_id, sub["customer"], "default_payment_method")
        return pm_id
