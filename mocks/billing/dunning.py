"""Dunning: what a failed (or finally successful) invoice payment does to the invoice and subscription.

Rules (BillingSettings):
- A failed automatic attempt on a subscription invoice other than the first one moves the subscription
  `active`/`trialing` -> `past_due` and schedules the next attempt `retry_schedule_days[n-1]` days later
  (`next_payment_attempt`). After the last retry fails: `after_retries="cancel"` cancels the subscription,
  `"mark_unpaid"` makes it `unpaid` (later renewal invoices stay drafts). The invoice stays `open`.
- Hard declines (expired, lost, stolen, fraudulent card ...) are not retried; the terminal action still
  happens when the retry window would have ended, unless the invoice is paid (or voided) before.
- The first invoice of a subscription is not dunned: the subscription stays `incomplete` and expires.
- A manual attempt (pay_invoice) that fails does not move the schedule.
- Paying the invoice (retry, pay_invoice, confirming its PaymentIntent) brings the subscription back to
  `active`; so does voiding / marking uncollectible its last unpaid invoice.
"""

from __future__ import annotations

from typing import Any

from mocks.billing.base import BillingBase

DAY = 86_400


class DunningMixin(BillingBase):
    def _after_failure(self, invoice: dict[str, Any], result: dict[str, Any], automatic: bool) -> None:
        customer = self.store.get("customer", invoice["customer"])
        if customer and not customer.get("deleted") and not customer["delinquent"]:
            previous = self._changes(customer, {"delinquent": True})
            self._emit("customer.updated", customer, previous)
        sub = self.store.get("subscription", invoice["subscription"]) if invoice["subscription"] else None
        if sub is not None and sub["status"] == "incomplete" and invoice["billing_reason"] == "subscription_create":
            return
        if not automatic:
            return
        schedule = self.settings.retry_schedule_days
        n = invoice["attempt_count"]
        clock = invoice["test_clock"]
        now = self._now(clock)
        previous_attempt = invoice["next_payment_attempt"]
        if result.get("hard"):
            invoice["next_payment_attempt"] = None
            remaining = sum(schedule[n - 1:]) if n - 1 < len(schedule) else 0
            self._schedule(clock, now + remaining * DAY, "dunning_end", {"invoice": invoice["id"]},
                           f"dunning_end:{invoice['id']}")
        elif n <= len(schedule):
            invoice["next_payment_attempt"] = now + schedule[n - 1] * DAY
            self._schedule(clock, invoice["next_payment_attempt"], "invoice_retry", {"invoice": invoice["id"]},
                           f"retry:{invoice['id']}")
        else:
            invoice["next_payment_attempt"] = None
        if invoice["next_payment_attempt"] != previous_attempt:
            self._emit("invoice.updated", invoice, {"next_payment_attempt": previous_attempt})
        if sub is not None and sub["status"] in ("active", "trialing"):
            self._set_status(sub, "past_due")
        if not result.get("hard") and n > len(schedule):
            self._retries_exhausted(invoice)

    def _retries_exhausted(self, invoice: dict[str, Any]) -> None:
        sub = self.store.get("subscription", invoice["subscription"]) if invoice["subscription"] else None
        if sub is None or sub["status"] not in ("past_due", "active"):
            return
        if self.settings.after_retries == "cancel":
            self._end_subscription(sub, reason="payment_failed")
        else:
            self._set_status(sub, "unpaid")

    def _after_paid(self, invoice: dict[str, Any]) -> None:
        customer = self.store.get("customer", invoice["customer"])
        if customer and not customer.get("deleted") and customer["delinquent"] and not self._unpaid_invoices(
                lambda i: i["customer"] == customer["id"]):
            previous = self._changes(customer, {"delinquent": False})
            self._emit("customer.updated", customer, previous)
        self._after_closed(invoice)

    def _after_closed(self, invoice: dict[str, Any]) -> None:
        """An invoice stopped being collectible (paid, void, uncollectible): maybe the subscription heals."""
        sub = self.store.get("subscription", invoice["subscription"]) if invoice["subscription"] else None
        if sub is None or sub["status"] not in ("past_due", "unpaid", "incomplete"):
            return
        if sub["status"] == "incomplete":
            if invoice["status"] != "paid":
                return
            self._unschedule(sub["test_clock"], f"expire:{sub['id']}")
        if self._unpaid_invoices(lambda i: i["subscription"] == sub["id"]):
            return
        self._set_status(sub, "trialing" if sub["trial_end"] and sub["trial_end"] > self._now(sub["test_clock"])
                         else "active")

    def _unpaid_invoices(self, pred: Any) -> list[dict[str, Any]]:
        return self.store.select("invoice", lambda i: i["status"] == "open" and i["attempted"] and pred(i))

    def _set_status(self, sub: dict[str, Any], status: str) -> None:
        previous = self._changes(sub, {"status": status})
        if previous:
            self._emit("customer.subscription.updated", sub, previous)

    # --- jobs ------------------------------------------------------------------------------------------
    def _job_invoice_finalize(self, payload: dict[str, Any]) -> None:
        invoice = self.store.get("invoice", payload["invoice"])
        if invoice is None or invoice["status"] != "draft" or not invoice["auto_advance"]:
            return
        self._finalize(invoice)
        if invoice["status"] == "open" and invoice["collection_method"] == "charge_automatically":
            self._collect(invoice, automatic=True)

    def _job_invoice_retry(self, payload: dict[str, Any]) -> None:
        invoice = self.store.get("invoice", payload["invoice"])
        if invoice is None or invoice["status"] != "open":
            return
        self._collect(invoice, automatic=True)

    def _job_dunning_end(self, payload: dict[str, Any]) -> None:
        invoice = self.store.get("invoice", payload["invoice"])
        if invoice is not None and invoice["status"] == "open":
            self._retries_exhausted(invoice)
