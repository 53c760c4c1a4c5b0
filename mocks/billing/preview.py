"""The upcoming invoice: a preview of the next renewal, optionally with proposed item changes (not stored)."""

from __future__ import annotations

from typing import Any

from mocks.billing.base import BillingBase
from mocks.billing.errors import BillingError
from mocks.billing.periods import period_end_after
from mocks.billing.proration import cycle_description, proration_lines

_PREVIEWABLE = ("trialing", "active", "past_due", "unpaid", "paused")


class PreviewMixin(BillingBase):
    def upcoming_invoice(
        self,
        customer: str,
        subscription: str | None = None,
        subscription_items: list[dict[str, Any]] | None = None,
        proration_date: int | None = None,
        subscription_proration_behavior: str | None = None,
    ) -> dict[str, Any]:
        cust = self._customer_live(customer)
        sub = None
        if subscription:
            sub = self._require("subscription", subscription, "subscription", "subscription")
            if sub["customer"] != cust["id"]:
                raise _none_upcoming(cust["id"])
        else:
            live = self.store.select("subscription", lambda s: s["status"] in _PREVIEWABLE, customer=cust["id"])
            sub = live[0] if live else None
        if sub is not None and (sub["status"] not in _PREVIEWABLE or sub["cancel_at_period_end"]):
            sub = None
        pending = self._pending_items(cust["id"], sub["id"] if sub else None)
        if sub is None and not pending:
            raise _none_upcoming(cust["id"])
        now = self._now(cust["test_clock"])
        start = sub["current_period_start"] if sub else now
        end = sub["current_period_end"] if sub else now
        invoice = self._new_invoice(cust, billing_reason="upcoming", subscription=sub, period_start=start,
                                    period_end=end, collection_method=sub["collection_method"] if sub
                                    else "charge_automatically", persist=False)
        invoice["lines"]["url"] = f"/v1/invoices/upcoming/lines?customer={cust['id']}"
        invoice["payments"]["url"] = "/v1/invoice_payments"
        for item in pending:
            self._line(invoice, amount=item["amount"], description=item["description"], period=item["period"],
                       price=item["price"], quantity=item["quantity"], type_="invoiceitem", invoice_item=item["id"],
                       subscription=item["subscription"], subscription_item=item.get("subscription_item"),
                       proration=item["proration"])
        if sub is not None:
            items = sub["items"]["data"]
            if subscription_items:
                at = self._proration_date(sub, proration_date, now)
                items = self._apply_item_changes(sub, subscription_items, now, preview=True)
                if (subscription_proration_behavior or "create_prorations") != "none" and \
                        sub["status"] != "trialing":
                    for line in proration_lines(sub["items"]["data"], items, start, end, at, self._product_name):
                        self._line(invoice, amount=line["amount"], description=line["description"],
                                   period=line["period"], price=line["price"], quantity=line["quantity"],
                                   type_="invoiceitem", subscription=sub["id"],
                                   subscription_item=line["subscription_item"], proration=True)
                invoice["subscription_proration_date"] = at
            rec = items[0]["price"]["recurring"]
            next_end = period_end_after(sub["billing_cycle_anchor"], rec["interval"], rec["interval_count"], end)
            for item in items:
                self._line(invoice, amount=item["price"]["unit_amount"] * item["quantity"],
                           description=cycle_description(item, self._product_name),
                           period={"start": end, "end": next_end}, price=item["price"], quantity=item["quantity"],
                           type_="subscription", subscription=sub["id"], subscription_item=item["id"])
        invoice.pop("id")  # Stripe's upcoming invoice has no id
        for line in invoice["lines"]["data"]:
            line["invoice"] = None
        self._recompute(invoice)
        combined = invoice["total"] + cust["balance"]
        invoice.update(created=end, starting_balance=cust["balance"], ending_balance=min(0, combined),
                       amount_due=max(0, combined), amount_remaining=max(0, combined),
                       next_payment_attempt=end + self.settings.invoice_finalize_delay_s if sub else None)
        return invoice


def _none_upcoming(customer_id: str) -> BillingError:
    return BillingError(f"No upcoming invoices for customer: {customer_id}", status=404,
                        code="invoice_upcoming_none")
