"""Invoice items and invoices: drafting, totals, finalization, collection, void and uncollectible.

Totals: subtotal = total = sum of lines (no tax or discounts here). At finalization the customer's
balance applies (negative = credit): amount_due = max(0, total + balance); a credit left over stays on
the customer. $0 invoices are paid on finalization. One PaymentIntent per invoice, one charge per attempt.
"""

from __future__ import annotations

from typing import Any

from mocks.billing.base import BillingBase
from mocks.billing.errors import invalid
from mocks.billing.payments import card_error

_PI_DESCRIPTIONS = {"subscription_create": "Subscription creation", "subscription_cycle": "Subscription update",
                    "subscription_update": "Subscription update"}


class InvoicesMixin(BillingBase):
    # --- invoice items ---------------------------------------------------------------------------------
    def create_invoice_item(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer_live(params.get("customer"))
        invoice = None
        if params.get("invoice"):
            invoice = self._require("invoice", params["invoice"], "invoice", "invoice")
            if invoice["status"] != "draft" or invoice["customer"] != customer["id"]:
                raise invalid("You can only add invoice items to draft invoices of the same customer.", "invoice")
        price = None
        quantity = int(params.get("quantity") or 1)
        if params.get("price"):
            price = self._require("price", params["price"], "price", "price")
            unit = price["unit_amount"]
            amount = unit * quantity
            currency = price["currency"]
        elif params.get("unit_amount") is not None:
            unit = int(params["unit_amount"])
            amount = unit * quantity
            currency = params.get("currency")
        elif params.get("amount") is not None:
            amount = int(params["amount"])
            unit = amount // quantity if amount % quantity == 0 else None
            currency = params.get("currency")
        else:
            raise invalid("Missing required param: amount.", "amount", code="parameter_missing")
        if not currency:
            raise invalid("Missing required param: currency.", "currency", code="parameter_missing")
        sub_id = params.get("subscription")
        if sub_id:
            self._require("subscription", sub_id, "subscription", "subscription")
        now = self._now(customer["test_clock"])
        period = params.get("period") or {"start": now, "end": now}
        item = self._invoice_item(customer, amount, str(currency).lower(), params.get("description"), price,
                                  quantity, unit, period, subscription=sub_id)
        self._apply_metadata(item, params.get("metadata"))
        if invoice is not None:
            self._add_item_to_invoice(invoice, item)
        return self._out(item)

    def _invoice_item(self, customer: dict[str, Any], amount: int, currency: str, description: str | None,
                      price: dict[str, Any] | None, quantity: int, unit: int | None, period: dict[str, int], *,
                      subscription: str | None = None, subscription_item: str | None = None,
                      proration: bool = False) -> dict[str, Any]:
        item = {
            "id": self._new_id("invoiceitem"),
            "object": "invoiceitem",
            "amount": amount,
            "currency": currency,
            "customer": customer["id"],
            "date": self._now(customer["test_clock"]),
            "description": description,
            "discountable": not proration,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": {},
            "period": {"start": int(period["start"]), "end": int(period["end"])},
            "price": self._out(price) if price else None,
            "proration": proration,
            "quantity": quantity,
            "subscription": subscription,
            "subscription_item": subscription_item,
            "tax_rates": [],
            "test_clock": customer["test_clock"],
            "unit_amount": unit,
            "unit_amount_decimal": None if unit is None else str(unit),
        }
        if subscription_item is None:
            del item["subscription_item"]  # Stripe omits it (not nullable in the 2023-08-16 spec)
        self.store.put(item)
        self._emit("invoiceitem.created", item)
        return item

    def get_invoice_item(self, item_id: str) -> dict[str, Any]:
        return self._out(self._require("invoiceitem", item_id, "invoiceitem"))

    def delete_invoice_item(self, item_id: str) -> dict[str, Any]:
        item = self._require("invoiceitem", item_id, "invoiceitem")
        invoice = self.store.get("invoice", item["invoice"]) if item["invoice"] else None
        if invoice is not None and invoice["status"] != "draft":
            raise invalid("Invoice items on finalized invoices cannot be deleted.", code="invoice_not_editable")
        if invoice is not None:
            invoice["lines"]["data"] = [ln for ln in invoice["lines"]["data"] if ln.get("invoice_item") != item_id]
            self._recompute(invoice)
        self.store.remove("invoiceitem", item_id)
        self._emit("invoiceitem.deleted", item)
        return {"id": item_id, "object": "invoiceitem", "deleted": True}

    def list_invoice_items(self, customer: str | None = None, invoice: str | None = None,
                           pending: bool | None = None) -> list[dict[str, Any]]:
        def keep(i: dict[str, Any]) -> bool:
            return ((customer is None or i["customer"] == customer)
                    and (invoice is None or i["invoice"] == invoice)
                    and (pending is None or (i["invoice"] is None) == pending))

        return [self._out(i) for i in self.store.select("invoiceitem", keep)]

    def _pending_items(self, customer_id: str, subscription: str | None) -> list[dict[str, Any]]:
        """Pending items of a customer for an invoice of `subscription` (items of other subs excluded)."""
        rows = self.store.select("invoiceitem", lambda i: i["customer"] == customer_id and i["invoice"] is None
                                 and i["subscription"] in (None, subscription))
        return list(reversed(rows))

    # --- invoices --------------------------------------------------------------------------------------
    def _new_invoice(self, customer: dict[str, Any], *, billing_reason: str, subscription: dict[str, Any] | None,
                     period_start: int, period_end: int, auto_advance: bool = True,
                     collection_method: str = "charge_automatically", description: str | None = None,
                     days_until_due: int | None = None, persist: bool = True) -> dict[str, Any]:
        now = self._now(customer["test_clock"])
        inv_id = self._new_id("invoice")
        currency = (subscription or {}).get("currency") or customer["currency"] or self.settings.default_currency
        invoice = {
            "id": inv_id, "object": "invoice", "account_country": "US", "account_name": "Lockstep Sandbox",
            "account_tax_ids": None, "amount_due": 0, "amount_paid": 0, "amount_remaining": 0,
            "amount_shipping": 0, "application": None, "application_fee_amount": None, "attempt_count": 0,
            "attempted": False, "auto_advance": auto_advance,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_reason": billing_reason, "charge": None, "collection_method": collection_method,
            "created": now, "currency": currency, "custom_fields": None, "customer": customer["id"],
            "customer_address": customer["address"], "customer_email": customer["email"],
            "customer_name": customer["name"], "customer_phone": customer["phone"],
            "customer_shipping": customer["shipping"], "customer_tax_exempt": customer["tax_exempt"],
            "customer_tax_ids": [], "default_payment_method": None, "default_source": None,
            "default_tax_rates": [], "description": description, "discount": None, "discounts": [],
            "due_date": now + days_until_due * 86_400 if days_until_due else None,
            "effective_at": None, "ending_balance": None, "footer": None, "from_invoice": None,
            "hosted_invoice_url": None, "invoice_pdf": None, "last_finalization_error": None,
            "latest_revision": None,
            "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                      "url": f"/v1/invoices/{inv_id}/lines"},
            "livemode": False, "metadata": {}, "next_payment_attempt": None, "number": None,
            "on_behalf_of": None, "paid": False, "paid_out_of_band": False, "payment_intent": None,
            "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                 "payment_method_types": None},
            "payments": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                         "url": f"/v1/invoice_payments?invoice={inv_id}"},
            "period_end": period_end, "period_start": period_start, "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0, "quote": None, "receipt_number": None,
            "rendering_options": None, "shipping_cost": None, "shipping_details": None, "starting_balance": 0,
            "statement_descriptor": None, "status": "draft",
            "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                                   "voided_at": None},
            "subscription": subscription["id"] if subscription else None,
            "subscription_details": {"metadata": dict(subscription["metadata"]) if subscription else None},
            "subtotal": 0, "subtotal_excluding_tax": 0, "tax": None,
            "test_clock": customer["test_clock"], "total": 0,
            "total_discount_amounts": [], "total_excluding_tax": 0, "total_tax_amounts": [],
            "transfer_data": None, "webhooks_delivered_at": None,
        }
        return self.store.put(invoice) if persist else invoice

    def _line(self, invoice: dict[str, Any], *, amount: int, description: str | None, period: dict[str, int],
              price: dict[str, Any] | None, quantity: int | None, type_: str, invoice_item: str | None = None,
              subscription: str | None = None, subscription_item: str | None = None,
              proration: bool = False) -> dict[str, Any]:
        line = {
            "id": self._new_id("line_item"), "object": "line_item", "amount": amount,
            "amount_excluding_tax": amount, "currency": invoice["currency"], "description": description,
            "discount_amounts": [], "discountable": not proration, "discounts": [], "invoice": invoice["id"],
            "invoice_item": invoice_item, "livemode": False, "metadata": {},
            "period": {"start": int(period["start"]), "end": int(period["end"])},
            "price": self._out(price) if price else None, "proration": proration,
            "proration_details": {"credited_items": None}, "quantity": quantity, "subscription": subscription,
            "subscription_item": subscription_item, "tax_amounts": [], "tax_rates": [], "type": type_,
            "unit_amount_excluding_tax": str(price["unit_amount"]) if price else None,
        }
        for key in ("invoice_item", "subscription_item"):  # optional, not nullable: Stripe omits them
            if line[key] is None:
                del line[key]
        invoice["lines"]["data"].append(line)
        return line

    def _add_item_to_invoice(self, invoice: dict[str, Any], item: dict[str, Any]) -> None:
        item["invoice"] = invoice["id"]
        self._line(invoice, amount=item["amount"], description=item["description"], period=item["period"],
                   price=item["price"], quantity=item["quantity"], type_="invoiceitem", invoice_item=item["id"],
                   subscription=item["subscription"], subscription_item=item.get("subscription_item"),
                   proration=item["proration"])
        self._recompute(invoice)

    def _recompute(self, invoice: dict[str, Any]) -> None:
        total = sum(line["amount"] for line in invoice["lines"]["data"])
        invoice["lines"]["total_count"] = len(invoice["lines"]["data"])
        invoice.update(subtotal=total, subtotal_excluding_tax=total, total=total, total_excluding_tax=total)
        if invoice["status"] == "draft":
            invoice["amount_due"] = invoice["amount_remaining"] = max(0, total)

    def create_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer_live(params.get("customer"))
        sub = None
        if params.get("subscription"):
            sub = self._require("subscription", params["subscription"], "subscription", "subscription")
        method = params.get("collection_method") or "charge_automatically"
        days = params.get("days_until_due")
        if method == "send_invoice" and not days and not params.get("due_date"):
            raise invalid("Invoices with `collection_method=send_invoice` require `days_until_due` or "
                          "`due_date`.", "days_until_due")
        now = self._now(customer["test_clock"])
        invoice = self._new_invoice(customer, billing_reason="manual", subscription=sub, period_start=now,
                                    period_end=now, auto_advance=bool(params.get("auto_advance", True)),
                                    collection_method=method, description=params.get("description"),
                                    days_until_due=days)
        if params.get("due_date"):
            invoice["due_date"] = int(params["due_date"])
        if params.get("default_payment_method"):
            self._require_attached(params["default_payment_method"], customer["id"], "default_payment_method")
            invoice["default_payment_method"] = params["default_payment_method"]
        self._apply_metadata(invoice, params.get("metadata"))
        if params.get("pending_invoice_items_behavior") == "include":
            for item in self._pending_items(customer["id"], sub["id"] if sub else None):
                self._add_item_to_invoice(invoice, item)
        self._recompute(invoice)
        self._invoice_created(invoice)
        return self._out(invoice)

    def _invoice_created(self, invoice: dict[str, Any]) -> None:
        self._emit("invoice.created", invoice)
        if invoice["auto_advance"] and invoice["status"] == "draft":
            at = self._now(invoice["test_clock"]) + self.settings.invoice_finalize_delay_s
            self._schedule(invoice["test_clock"], at, "invoice_finalize", {"invoice": invoice["id"]},
                           f"finalize:{invoice['id']}")

    def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        return self._out(self._require("invoice", invoice_id, "invoice"))

    def list_invoices(self, customer: str | None = None, subscription: str | None = None,
                      status: str | None = None, *, copy: bool = True) -> list[dict[str, Any]]:
        def keep(i: dict[str, Any]) -> bool:
            return ((subscription is None or i["subscription"] == subscription)
                    and (status is None or i["status"] == status))

        rows = self.store.select("invoice", keep, customer=customer)
        return [self._out(i) for i in rows] if copy else rows

    def finalize_invoice(self, invoice_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        invoice = self._require("invoice", invoice_id, "invoice")
        if invoice["status"] != "draft":
            raise invalid("This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                          code="invoice_not_editable")
        if params and "auto_advance" in params:
            invoice["auto_advance"] = bool(params["auto_advance"])
        self._finalize(invoice)
        if invoice["status"] == "open" and invoice["auto_advance"] and \
                invoice["collection_method"] == "charge_automatically":
            # Auto-advance collects right after finalization: on the next tick of the owning clock.
            self._schedule(invoice["test_clock"], self._now(invoice["test_clock"]), "invoice_retry",
                           {"invoice": invoice["id"]}, f"retry:{invoice['id']}")
        return self._out(invoice)

    def _finalize(self, invoice: dict[str, Any]) -> None:
        self._unschedule(invoice["test_clock"], f"finalize:{invoice['id']}")
        customer = self.store.get("customer", invoice["customer"])
        now = self._now(invoice["test_clock"])
        self._recompute(invoice)
        starting = customer.get("balance", 0) if not customer.get("deleted") else 0
        combined = invoice["total"] + starting
        ending = min(0, combined)
        if not customer.get("deleted"):
            if customer["currency"] is None:
                customer["currency"] = invoice["currency"]
            if customer["balance"] != ending:
                previous = self._changes(customer, {"balance": ending})
                self._emit("customer.updated", customer, previous)
            seq = customer["next_invoice_sequence"]
            customer["next_invoice_sequence"] = seq + 1
            invoice["number"] = f"{customer['invoice_prefix']}-{seq:04d}"
        invoice.update(
            status="open", starting_balance=starting, ending_balance=ending, amount_due=max(0, combined),
            amount_remaining=max(0, combined), effective_at=now,
            hosted_invoice_url=f"https://billing.lockstep.test/i/{invoice['id']}",
            invoice_pdf=f"https://billing.lockstep.test/i/{invoice['id']}/pdf",
        )
        invoice["status_transitions"]["finalized_at"] = now
        if invoice["amount_due"] > 0:
            pi = self._new_payment_intent(invoice, _PI_DESCRIPTIONS.get(invoice["billing_reason"]))
            invoice["payment_intent"] = pi["id"]
            invoice["payments"]["data"].append({
                "id": self._new_id("invoice_payment"), "object": "invoice_payment",
                "amount_paid": None, "amount_requested": pi["amount"], "created": now,
                "currency": invoice["currency"], "invoice": invoice["id"], "is_default": True,
                "livemode": False, "payment": {"type": "payment_intent", "payment_intent": pi["id"]},
                "status": "open", "status_transitions": {"canceled_at": None, "paid_at": None},
            })
            invoice["payments"]["total_count"] = 1
        self._emit("invoice.finalized", invoice)
        if invoice["amount_due"] == 0:
            self._mark_paid(invoice)

    def _mark_paid(self, invoice: dict[str, Any], out_of_band: bool = False) -> None:
        now = self._now(invoice["test_clock"])
        invoice.update(status="paid", paid=True, amount_paid=invoice["amount_due"], amount_remaining=0,
                       next_payment_attempt=None, paid_out_of_band=out_of_band)
        invoice["status_transitions"]["paid_at"] = now
        for payment in invoice["payments"]["data"]:
            if not out_of_band:
                payment.update(status="paid", amount_paid=payment["amount_requested"])
                payment["status_transitions"]["paid_at"] = now
        self._unschedule(invoice["test_clock"], f"retry:{invoice['id']}")
        self._unschedule(invoice["test_clock"], f"dunning_end:{invoice['id']}")
        self._emit("invoice.paid", invoice)
        self._emit("invoice.payment_succeeded", invoice)
        self._after_paid(invoice)

    def _collect(self, invoice: dict[str, Any], pm_id: str | None = None, *, authenticate: bool = False,
                 raise_on_failure: bool = False, automatic: bool = True) -> dict[str, Any]:
        """One payment attempt on an open invoice; dunning decides what a failure leads to."""
        pi = self.store.get("payment_intent", invoice["payment_intent"])
        pm_id = pm_id or self._payment_method_for(invoice)
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        result = self._attempt_charge(pi, pm_id, authenticate=authenticate)
        if result.get("charge"):
            invoice["charge"] = result["charge"]
        if result["status"] == "succeeded":
            self._mark_paid(invoice)
        elif result["status"] == "requires_action":
            self._emit("invoice.payment_action_required", invoice)
            self._after_failure(invoice, result, automatic)
        else:
            self._emit("invoice.payment_failed", invoice)
            self._after_failure(invoice, result, automatic)
        if raise_on_failure and result["status"] != "succeeded":
            raise card_error(result.get("decline_code") or "generic_decline",
                             extra={"payment_intent": self._out(pi)})
        return result

    def _payment_method_for(self, invoice: dict[str, Any]) -> str | None:
        if invoice["default_payment_method"]:
            return invoice["default_payment_method"]
        sub = self.store.get("subscription", invoice["subscription"]) if invoice["subscription"] else None
        if sub and sub["default_payment_method"]:
            return sub["default_payment_method"]
        customer = self.store.get("customer", invoice["customer"])
        if customer and not customer.get("deleted"):
            return customer["invoice_settings"]["default_payment_method"]
        return None

    def pay_invoice(self, invoice_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = params or {}
        invoice = self._require("invoice", invoice_id, "invoice")
        if invoice["status"] == "paid":
            raise invalid("Invoice is already paid")
        if invoice["status"] == "void":
            raise invalid("This invoice can no longer be paid because it has been voided.",
                          code="invoice_not_editable")
        if invoice["status"] == "draft":
            self._finalize(invoice)
            if invoice["status"] == "paid":
                return self._out(invoice)
        if params.get("paid_out_of_band"):
            self._mark_paid(invoice, out_of_band=True)
            return self._out(invoice)
        pm_id = params.get("payment_method")
        if pm_id:
            pm = self.store.get("payment_method", pm_id)
            if pm is None:
                pm_id = self.attach_payment_method(pm_id, invoice["customer"])["id"]
        self._collect(invoice, pm_id, raise_on_failure=True, automatic=False)
        return self._out(invoice)

    def void_invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self._require("invoice", invoice_id, "invoice")
        if invoice["status"] not in ("open", "uncollectible"):
            raise invalid(f"You can only pass in open or uncollectible invoices, this invoice is "
                          f"{invoice['status']}.")
        self._close_invoice(invoice, "void", "voided_at", "invoice.voided")
        return self._out(invoice)

    def mark_uncollectible(self, invoice_id: str) -> dict[str, Any]:
        invoice = self._require("invoice", invoice_id, "invoice")
        if invoice["status"] != "open":
            raise invalid(f"You can only mark open invoices as uncollectible, this invoice is {invoice['status']}.")
        self._close_invoice(invoice, "uncollectible", "marked_uncollectible_at", "invoice.marked_uncollectible")
        return self._out(invoice)

    def _close_invoice(self, invoice: dict[str, Any], status: str, transition: str, event: str) -> None:
        previous = {"status": invoice["status"], "next_payment_attempt": invoice["next_payment_attempt"]}
        invoice.update(status=status, next_payment_attempt=None)
        invoice["status_transitions"][transition] = self._now(invoice["test_clock"])
        if status == "void":
            for payment in invoice["payments"]["data"]:
                payment["status"] = "canceled"
                payment["status_transitions"]["canceled_at"] = invoice["status_transitions"][transition]
        self._unschedule(invoice["test_clock"], f"retry:{invoice['id']}")
        self._unschedule(invoice["test_clock"], f"dunning_end:{invoice['id']}")
        self._emit(event, invoice)
        self._emit("invoice.updated", invoice, previous)
        self._after_closed(invoice)
