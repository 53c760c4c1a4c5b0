"""Transaction rules of the ERP state: sales orders, invoices, credit memos and what derives from them.

A mixin of `models.ErpState` (it uses the state's store, indexes and `_commit`). No HTTP.

- salesOrder: an active customer not on credit hold, at least one line of existing active items;
  every change after creation is an amendment (revision + history); closed / cancelled orders are frozen.
- invoice: an existing customer and an existing sales order of that customer, approved and open;
  invoices of one order never total more than the order; due date from the terms.
- creditMemo: an existing, not voided invoice; credits never total more than the invoice; applied to the
  invoice balance at once (the rest stays unapplied customer credit).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from mocks.erp.errors import user_error

__all__ = ["EPS", "FROZEN_ORDER", "TransactionRules", "money"]

Json = dict[str, Any]
EPS = 0.005
FROZEN_ORDER = ("Closed", "Cancelled")
UNBILLABLE_ORDER = {"Pending Approval": "is pending approval", "Closed": "is closed", "Cancelled": "is cancelled"}


def money(value: float) -> float:
    return round(float(value) + 0.0, 2)


class TransactionRules:
    """Business rules of the transaction record types; mixed into `ErpState`."""

    records: dict[str, dict[str, Json]]
    revs: dict[str, dict[str, int]]
    lists: dict[str, dict[str, Json]]
    settings: Json
    payments: list[Json]
    invoices_by_order: dict[str, set[str]]
    memos_by_invoice: dict[str, set[str]]
    clock: Any

    # ---- derived-state refresh ---------------------------------------------------------------------------
    def _refresh_order(self, so_id: str) -> None:
        so = self.records["salesOrder"][so_id]
        before_view = self._internal_view("salesOrder", so)
        billed = self.amount_billed(so_id)
        so["amountBilled"] = billed
        if so["status"] not in ("Pending Approval", *FROZEN_ORDER):
            so["status"] = "Billed" if billed >= so["total"] - EPS and billed > 0 else "Pending Fulfillment"
        self._commit("salesOrder", so_id, before_view)

    def _refresh_invoice(self, inv_id: str) -> None:
        inv = self.records["invoice"][inv_id]
        before_view = self._internal_view("invoice", inv)
        memos = self.records["creditMemo"]
        # Credits apply in creation order until the invoice is covered; the rest stays unapplied.
        open_amount = money(inv["total"] - inv["amountPaid"])
        credited = 0.0
        for cm_id in sorted(self.memos_by_invoice.get(inv_id, ()), key=int):
            cm = memos[cm_id]
            cm_before = self._internal_view("creditMemo", cm)
            applied = money(min(cm["total"], max(0.0, open_amount - credited))) if not inv.get("voided") else 0.0
            credited = money(credited + applied)
            cm["applied"], cm["unapplied"] = applied, money(cm["total"] - applied)
            cm["status"] = "Fully Applied" if cm["unapplied"] <= EPS else "Open"
            self._commit("creditMemo", cm_id, cm_before)
        inv["amountCredited"] = credited
        if inv.get("voided"):
            inv["status"], inv["amountRemaining"] = "Voided", 0.0
        else:
            inv["amountRemaining"] = money(max(0.0, inv["total"] - inv["amountPaid"] - credited))
            inv["status"] = "Paid In Full" if inv["amountRemaining"] <= EPS else "Open"
        self._commit("invoice", inv_id, before_view)

    # ---- lines ---------------------------------------------------------------------------------------------
    def _price_lines(self, lines: list[Json]) -> list[Json]:
        out: list[Json] = []
        for n, line in enumerate(lines, 1):
            path = f"item.items[{n - 1}].item"
            item = self._target("item", line["item"], path)
            if item.get("isInactive"):
                raise user_error(f"Item {item['itemId']} is inactive and cannot be added to a transaction.", path)
            qty = line["quantity"]
            rate = line.get("rate")
            amount = line.get("amount")
            if rate is None:
                rate = money(amount / qty) if amount is not None else item.get("basePrice", 0) or 0
            if amount is None:
                amount = money(qty * rate)
            row = {"line": n, "item": item["id"], "quantity": qty, "rate": rate, "amount": money(amount)}
            if line.get("description") is not None:
                row["description"] = line["description"]
            out.append(row)
        return out

    @staticmethod
    def _total(lines: list[Json]) -> float:
        return money(sum(line["amount"] for line in lines))

    # ---- sales order ------------------------------------------------------------------------------------------
    def _order_customer(self, ref: Json) -> Json:
        customer = self._target("customer", ref, "entity")
        name = customer["companyName"]
        if customer.get("isInactive"):
            raise user_error(f"Customer {name} ({customer['id']}) is inactive; new sales orders cannot be "
                             "entered for inactive customers.", "entity")
        balance = self.customer_balance(customer["id"])
        if self.on_credit_hold(customer, balance):
            why = ("its credit hold override is ON" if customer.get("creditHoldOverride") == "ON" else
                   f"its open balance {balance:.2f} exceeds its credit limit {customer['creditLimit']:.2f}")
            raise user_error(f"Customer {name} ({customer['id']}) is on credit hold: {why}. New sales orders "
                             "are blocked until the hold is released.", "entity")
        return customer

    def _new_salesOrder(self, values: Json) -> Json:
        customer = self._order_customer(values["entity"])
        lines = self._price_lines(values["item"])
        if not lines:
            raise user_error("You must enter at least one line item for this transaction.", "item")
        total = self._total(lines)
        status = "Pending Approval" if self.settings.get("approvalRequired") else "Pending Fulfillment"
        return {"entity": customer["id"], "tranDate": values.get("tranDate") or self.today().isoformat(),
                "externalId": values.get("externalId"), "memo": values.get("memo"),
                "otherRefNum": values.get("otherRefNum"), "subsidiary": customer["subsidiary"],
                "currency": customer["currency"], "status": status, "item": lines, "subtotal": total,
                "total": total, "amountBilled": 0.0, "revision": 1, "amendments": []}

    def _update_salesOrder(self, rec: Json, values: Json) -> Json:
        if rec["status"] in FROZEN_ORDER:
            raise user_error(f"Sales order {rec['tranId']} is {rec['status'].lower()} and cannot be changed.")
        new = dict(rec)
        if "entity" in values:
            customer = self._target("customer", values["entity"], "entity")
            if customer["id"] != rec["entity"]:
                if self.invoices_by_order.get(rec["id"]):
                    raise user_error("You cannot change the customer of a sales order that has been billed.",
                                     "entity")
                customer = self._order_customer(values["entity"])
                new.update(entity=customer["id"], subsidiary=customer["subsidiary"], currency=customer["currency"])
        for key in ("tranDate", "externalId", "memo", "otherRefNum"):
            if key in values:
                new[key] = values[key]
        if "item" in values:
            lines = self._price_lines(values["item"])
            if not lines:
                raise user_error("You must enter at least one line item for this transaction.", "item")
            total = self._total(lines)
            if total < rec["amountBilled"] - EPS:
                raise user_error(f"The order total {total:.2f} cannot be less than the amount already billed "
                                 f"({rec['amountBilled']:.2f}).", "item")
            new.update(item=lines, subtotal=total, total=total)
        amended = {k: {"from": _summary(k, rec.get(k)), "to": _summary(k, new.get(k))}
                   for k in ("entity", "tranDate", "externalId", "memo", "otherRefNum", "item")
                   if rec.get(k) != new.get(k)}
        if amended:
            new["revision"] = rec["revision"] + 1
            new["amendments"] = [*rec["amendments"], {"version": new["revision"], "date": self.now_iso(),
                                                      "changes": amended}]
            if new["status"] == "Billed" and new["total"] > rec["amountBilled"] + EPS:
                new["status"] = "Pending Fulfillment"
        return new

    # ---- invoice ----------------------------------------------------------------------------------------------
    def _billable_order(self, entity_ref: Json, order_ref: Json) -> tuple[Json, Json]:
        customer = self._target("customer", entity_ref, "entity")
        so = self._target("salesOrder", order_ref, "createdFrom")
        if so["entity"] != customer["id"]:
            raise user_error(f"Sales order {so['tranId']} belongs to another customer, not "
                             f"{customer['companyName']} ({customer['id']}).", "createdFrom")
        if so["status"] in UNBILLABLE_ORDER:
            raise user_error(f"Sales order {so['tranId']} {UNBILLABLE_ORDER[so['status']]} and cannot be "
                             "billed.", "createdFrom")
        return customer, so

    def _check_billing_room(self, so: Json, total: float, current: float = 0.0) -> None:
        room = money(so["total"] - self.amount_billed(so["id"]) + current)
        if total > room + EPS:
            raise user_error(f"The invoice total {total:.2f} exceeds the amount left to bill on sales order "
                             f"{so['tranId']} ({room:.2f} of {so['total']:.2f}).", "item")

    def _due_date(self, tran_date: str, terms: str | None) -> str:
        days = self.lists["terms"][terms]["days"] if terms in self.lists["terms"] else 0
        return (date.fromisoformat(tran_date) + timedelta(days=days)).isoformat()

    def _new_invoice(self, values: Json) -> Json:
        customer, so = self._billable_order(values["entity"], values["createdFrom"])
        raw_lines = values.get("item")
        lines = [dict(line) for line in so["item"]] if raw_lines is None else self._price_lines(raw_lines)
        if not lines:
            raise user_error("You must enter at least one line item for this transaction.", "item")
        total = self._total(lines)
        self._check_billing_room(so, total)
        terms = self._list_ref("terms", values.get("terms"), "terms") or customer.get("terms")
        tran_date = values.get("tranDate") or self.today().isoformat()
        due = values.get("dueDate") or self._due_date(tran_date, terms)
        return {"entity": customer["id"], "createdFrom": so["id"], "tranDate": tran_date, "dueDate": due,
                "terms": terms, "externalId": values.get("externalId"), "memo": values.get("memo"),
                "subsidiary": so["subsidiary"], "currency": so["currency"], "status": "Open", "item": lines,
                "subtotal": total, "total": total, "amountPaid": 0.0, "amountCredited": 0.0,
                "amountRemaining": total, "voided": False}

    def _update_invoice(self, rec: Json, values: Json) -> Json:
        for key, rtype in (("entity", "customer"), ("createdFrom", "salesOrder")):
            # Re-sending the same reference (by id or externalId) is no change, as in NetSuite.
            if key in values and self._target(rtype, values[key], key)["id"] != rec[key]:
                raise user_error(f"The {key} of an invoice cannot be changed.", key)
        if rec["status"] != "Open" and values.keys() - {"memo", "externalId"}:
            raise user_error(f"Invoice {rec['tranId']} is {rec['status']}; only memo and externalId can change.")
        new = dict(rec)
        for key in ("tranDate", "dueDate", "externalId", "memo"):
            if key in values:
                new[key] = values[key]
        if "terms" in values:
            new["terms"] = self._list_ref("terms", values["terms"], "terms")
            if "dueDate" not in values:
                new["dueDate"] = self._due_date(new["tranDate"], new["terms"])
        if "item" in values:
            lines = self._price_lines(values["item"])
            if not lines:
                raise user_error("You must enter at least one line item for this transaction.", "item")
            total = self._total(lines)
            self._check_billing_room(self.records["salesOrder"][rec["createdFrom"]], total, rec["total"])
            if total < rec["amountPaid"] + rec["amountCredited"] - EPS:
                raise user_error("The invoice total cannot be less than the payments and credits applied.", "item")
            new.update(item=lines, subtotal=total, total=total,
                       amountRemaining=money(total - rec["amountPaid"] - rec["amountCredited"]))
        return new

    # ---- credit memo -----------------------------------------------------------------------------------------
    def _new_creditMemo(self, values: Json) -> Json:
        inv = self._target("invoice", values["createdFrom"], "createdFrom")
        if inv.get("voided"):
            raise user_error(f"Invoice {inv['tranId']} is voided and cannot be credited.", "createdFrom")
        if values.get("entity") is not None:
            customer = self._target("customer", values["entity"], "entity")
            if customer["id"] != inv["entity"]:
                raise user_error(f"Invoice {inv['tranId']} belongs to another customer.", "entity")
        lines = [dict(line) for line in inv["item"]] if values.get("item") is None else \
            self._price_lines(values["item"])
        if not lines:
            raise user_error("You must enter at least one line item for this transaction.", "item")
        total = self._total(lines)
        already = money(sum(self.records["creditMemo"][c]["total"] for c in self.memos_by_invoice.get(inv["id"], ())))
        if total > inv["total"] - already + EPS:
            raise user_error(f"The credit total {total:.2f} exceeds what is left to credit on invoice "
                             f"{inv['tranId']} ({inv['total'] - already:.2f}).", "item")
        applied = money(min(total, inv["amountRemaining"]))
        return {"entity": inv["entity"], "createdFrom": inv["id"],
                "tranDate": values.get("tranDate") or self.today().isoformat(),
                "externalId": values.get("externalId"), "memo": values.get("memo"),
                "subsidiary": inv["subsidiary"], "currency": inv["currency"], "item": lines,
                "subtotal": total, "total": total, "applied": applied, "unapplied": money(total - applied),
                "status": "Fully Applied" if total - applied <= EPS else "Open"}

    def _update_creditMemo(self, rec: Json, values: Json) -> Json:
        for key, rtype in (("entity", "customer"), ("createdFrom", "invoice"), ("item", None)):
            if key in values and (rtype is None or self._target(rtype, values[key], key)["id"] != rec[key]):
                raise user_error(f"The {key} of a credit memo cannot be changed; void it and enter a new one.", key)
        new = dict(rec)
        for key in ("tranDate", "externalId", "memo"):
            if key in values:
                new[key] = values[key]
        return new

    # ---- user actions on transactions ----------------------------------------------------------------------
    def set_order_status(self, so_id: str, action: str) -> Json:
        so = self.get("salesOrder", so_id)
        allowed = {"approve": ({"Pending Approval"}, "Pending Fulfillment"),
                   "cancel": ({"Pending Approval"}, "Cancelled"),
                   "close": ({"Pending Approval", "Pending Fulfillment", "Billed"}, "Closed")}[action]
        if so["status"] not in allowed[0]:
            raise user_error(f"Sales order {so['tranId']} is {so['status']}; it cannot be {action}d.")
        before = self._internal_view("salesOrder", so)
        so["status"] = allowed[1]
        if action == "approve":
            billed = self.amount_billed(so_id)
            so["status"] = "Billed" if billed >= so["total"] - EPS and billed > 0 else "Pending Fulfillment"
        self.revs["salesOrder"][so_id] += 1
        self._commit("salesOrder", so_id, before)
        return self._internal_view("salesOrder", so)

    def record_payment(self, inv_id: str, amount: float | None) -> Json:
        inv = self.get("invoice", inv_id)
        if inv["status"] != "Open":
            raise user_error(f"Invoice {inv['tranId']} is {inv['status']}; there is nothing to pay.")
        remaining = inv["amountRemaining"]
        amount = remaining if amount is None else money(amount)
        if not 0 < amount <= remaining + EPS:
            raise user_error(f"The payment amount must be more than 0 and at most {remaining:.2f}.", "amount")
        inv["amountPaid"] = money(inv["amountPaid"] + amount)
        payment = {"id": str(len(self.payments) + 1), "invoice": inv_id, "customer": inv["entity"],
                   "amount": amount, "date": self.now_iso()}
        self.payments.append(payment)
        self.revs["invoice"][inv_id] += 1
        self._refresh_invoice(inv_id)
        return {"payment": payment, "invoice": self._internal_view("invoice", inv)}

    def void_invoice(self, inv_id: str) -> Json:
        inv = self.get("invoice", inv_id)
        if inv["status"] == "Voided":
            raise user_error(f"Invoice {inv['tranId']} is already voided.")
        if inv["amountPaid"] > 0 or self.memos_by_invoice.get(inv_id):
            raise user_error(f"Invoice {inv['tranId']} has payments or credits applied and cannot be voided.")
        inv["voided"] = True
        self.revs["invoice"][inv_id] += 1
        self._refresh_invoice(inv_id)
        self._refresh_order(inv["createdFrom"])
        return self._internal_view("invoice", inv)

    def schedule_overdue(self, inv: Json) -> None:
        due = inv.get("dueDate")
        if due:
            at = datetime.fromisoformat(due).replace(tzinfo=UTC).timestamp() + 86_400
            self.clock.schedule(at, "erp.invoice_overdue", {"id": inv["id"], "dueDate": due},
                                key=f"erp.overdue:{inv['id']}")

def _summary(key: str, value: Any) -> Any:
    if key == "item" and isinstance(value, list):
        return {"lines": len(value), "total": money(sum(line["amount"] for line in value))}
    return value
