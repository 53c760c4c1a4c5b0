"""The ERP tenant state: records per type, CRUD, indexes, customer and item rules. Knows no HTTP.

Records are plain dicts keyed by internal id (numeric strings, one sequence per id space: entities,
transactions, items). Every write bumps the record's revision (ETags derive from it), re-derives
dependent totals (order billed amount, invoice balance, credit memo application) and emits change
events for every record that changed, derived changes included.

Rules here:
- customer: tax registration valid for its country (fields.py); subsidiary / currency / terms must exist;
  the credit hold is `creditHoldOverride` ON, or AUTO with open balance above `creditLimit`.
- item: `itemId` unique (case-insensitive).
- deletes are refused while dependent records exist; external ids are unique per record type.
Transaction rules (sales order, invoice, credit memo) live in transactions.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from mocks.erp.errors import ErpError, bad_value, not_found, user_error
from mocks.erp.events import EventSink
from mocks.erp.fields import RECORD_TYPES, parse_body
from mocks.erp.reference import CURRENCIES, SUBSIDIARIES, TERMS
from mocks.erp.render import render_record
from mocks.erp.transactions import EPS, TransactionRules, money

__all__ = ["ErpState", "iso"]

Json = dict[str, Any]
ID_SPACE = {"customer": "entity", "salesOrder": "transaction", "invoice": "transaction",
            "creditMemo": "transaction", "item": "item"}
ID_START = {"entity": 100, "transaction": 1000, "item": 10}
TRAN_PREFIX = {"salesOrder": "SO", "invoice": "INV", "creditMemo": "CM"}
TRANSACTIONS = ("salesOrder", "invoice", "creditMemo")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ErpState(TransactionRules):
    def __init__(self, tenant: Any) -> None:
        self.tenant = tenant
        self.clock = tenant.clock
        self.records: dict[str, dict[str, Json]] = {t: {} for t in RECORD_TYPES}
        self.eids: dict[str, dict[str, str]] = {t: {} for t in RECORD_TYPES}
        self.revs: dict[str, dict[str, int]] = {t: {} for t in RECORD_TYPES}
        self.seq: dict[str, int] = dict(ID_START)
        self.tran_seq: dict[str, int] = {t: 0 for t in TRAN_PREFIX}
        self.lists: dict[str, dict[str, Json]] = {
            "subsidiary": copy.deepcopy(SUBSIDIARIES),
            "currency": copy.deepcopy(CURRENCIES),
            "terms": copy.deepcopy(TERMS),
        }
        self.payments: list[Json] = []
        self.settings: Json = {"approvalRequired": False}
        self.events = EventSink(tenant, self.render_event_record)
        self._index()

    # ---- kernel hooks ---------------------------------------------------------------------------------
    def dump(self) -> Json:
        return {"records": self.records, "eids": self.eids, "revs": self.revs, "seq": self.seq,
                "tran_seq": self.tran_seq, "lists": self.lists, "payments": self.payments,
                "settings": self.settings, "event_seq": self.events.seq}

    def load(self, data: Json) -> None:
        data = copy.deepcopy(data)
        for name in ("records", "eids", "revs"):
            getattr(self, name).update({t: data.get(name, {}).get(t, {}) for t in RECORD_TYPES})
        self.seq.update(data.get("seq", {}))
        self.tran_seq.update(data.get("tran_seq", {}))
        self.lists.update(data.get("lists", {}))
        self.payments = list(data.get("payments", []))
        self.settings.update(data.get("settings", {}))
        self.events.seq = int(data.get("event_seq", 0))
        self._index()

    def run_job(self, kind: str, payload: Json) -> None:
        if kind == "erp.invoice_overdue":
            inv = self.records["invoice"].get(payload.get("id", ""))
            if inv is not None and inv["status"] == "Open" and inv.get("dueDate") == payload.get("dueDate"):
                self.events.emit("invoice", inv["id"], "overdue",
                                 {"amountRemaining": {"old": None, "new": inv["amountRemaining"]}},
                                 self._internal_view("invoice", inv), self.now_iso(), "invoice.overdue")

    # ---- indexes (rebuilt on load, kept current on every write) ----------------------------------------
    def _index(self) -> None:
        self.tx_by_entity: dict[str, set[tuple[str, str]]] = {}
        self.invoices_by_order: dict[str, set[str]] = {}
        self.memos_by_invoice: dict[str, set[str]] = {}
        self.item_uses: dict[str, int] = {}
        for rtype in TRANSACTIONS:
            for rec in self.records[rtype].values():
                self._link(rtype, rec, 1)

    def _link(self, rtype: str, rec: Json, sign: int) -> None:
        if rtype not in TRANSACTIONS:
            return
        key = (rtype, rec["id"])
        by_entity = self.tx_by_entity.setdefault(rec["entity"], set())
        if sign > 0:
            by_entity.add(key)
        else:
            by_entity.discard(key)
        parent = rec.get("createdFrom")
        index = {"invoice": self.invoices_by_order, "creditMemo": self.memos_by_invoice}.get(rtype)
        if index is not None and parent is not None:
            children = index.setdefault(parent, set())
            if sign > 0:
                children.add(rec["id"])
            else:
                children.discard(rec["id"])
        for line in rec.get("item") or []:
            self.item_uses[line["item"]] = self.item_uses.get(line["item"], 0) + sign

    # ---- time -------------------------------------------------------------------------------------------
    def now_iso(self) -> str:
        return iso(self.clock.now())

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock.now(), UTC).date()

    # ---- lookups -----------------------------------------------------------------------------------------
    def resolve(self, rtype: str, key: str) -> str:
        """An internal id from a path key: `123` or `eid:<externalId>`; 404 when there is no such record."""
        if key.startswith("eid:"):
            found = self.eids[rtype].get(key[4:])
            if found is None:
                raise not_found(rtype, key)
            return found
        if not key.isdigit() or len(key) > 18:
            raise ErpError(400, "INVALID_ID", f"Invalid record instance ID: {key!r}. Use an internal ID or "
                                              "eid:<external ID>.", path="id")
        rid = str(int(key))
        if rid not in self.records[rtype]:
            raise not_found(rtype, key)
        return rid

    def get(self, rtype: str, rid: str) -> Json:
        rec = self.records[rtype].get(rid)
        if rec is None:
            raise not_found(rtype, rid)
        return rec

    def _target(self, rtype: str, ref: Json, path: str) -> Json:
        """The record a body reference points at; 400 (not 404) because the fault is in the body."""
        rid = ref.get("id")
        if rid is None:
            rid = self.eids[rtype].get(ref.get("externalId", ""))
        rec = self.records[rtype].get(rid or "")
        if rec is None:
            shown = ref.get("id") or f"eid:{ref.get('externalId')}"
            raise bad_value(path, f"Invalid {path} reference key {shown}.")
        return rec

    def _list_ref(self, name: str, ref: Json | None, path: str) -> str | None:
        if ref is None:
            return None
        rid = ref.get("id")
        if rid not in self.lists[name]:
            raise bad_value(path, f"Invalid {path} reference key {rid or ref.get('externalId')}.")
        return rid

    def ref_name(self, rtype: str, rec: Json) -> str | None:
        if rtype == "customer":
            return rec.get("companyName")
        if rtype == "item":
            return rec.get("itemId")
        return rec.get("tranId")

    def etag(self, rtype: str, rid: str, version: str) -> str:
        rec = self.records[rtype][rid]
        view = self._internal_view(rtype, rec)
        digest = hashlib.sha1(
            f"{version}:{self.revs[rtype].get(rid, 0)}:{json.dumps(view, sort_keys=True)}".encode()
        ).hexdigest()
        return f'"{digest[:24]}"'

    # ---- derived values ----------------------------------------------------------------------------------
    def customer_balance(self, cid: str) -> float:
        total = 0.0
        for rtype, rid in self.tx_by_entity.get(cid, ()):
            rec = self.records[rtype][rid]
            if rtype == "invoice" and rec["status"] == "Open":
                total += rec["amountRemaining"]
            elif rtype == "creditMemo":
                total -= rec["unapplied"]
        return money(total)

    def on_credit_hold(self, customer: Json, balance: float | None = None) -> bool:
        override = customer.get("creditHoldOverride", "AUTO")
        if override != "AUTO":
            return override == "ON"
        limit = customer.get("creditLimit")
        if limit is None:
            return False
        if balance is None:
            balance = self.customer_balance(customer["id"])
        return balance > limit + EPS

    def days_overdue(self, inv: Json) -> int:
        due = inv.get("dueDate")
        if inv["status"] != "Open" or not due:
            return 0
        return max(0, (self.today() - date.fromisoformat(due)).days)

    def amount_billed(self, so_id: str) -> float:
        invoices = self.records["invoice"]
        return money(sum(invoices[i]["total"] for i in self.invoices_by_order.get(so_id, ())
                         if not invoices[i].get("voided")))

    # ---- rendering ---------------------------------------------------------------------------------------
    def render(self, rtype: str, rec: Json, *, base: str | None, expand: bool) -> Json:
        return render_record(self, rtype, rec, base=base, expand=expand)

    def _internal_view(self, rtype: str, rec: Json) -> Json:
        return render_record(self, rtype, rec, base=None, expand=True)

    def render_event_record(self, rtype: str, view: Json, version: str) -> Json:
        return self.tenant.system.versions.render(rtype, view, version)

    # ---- CRUD --------------------------------------------------------------------------------------------
    def create(self, rtype: str, body: Any, *, external_id: str | None = None) -> str:
        values = parse_body(rtype, body, creating=True)
        if external_id is not None:
            values["externalId"] = external_id
        self._check_external_id(rtype, values.get("externalId"), None)
        rec = getattr(self, f"_new_{rtype}")(values)
        space = ID_SPACE[rtype]
        self.seq[space] += 1
        rid = str(self.seq[space])
        now = self.now_iso()
        stamp = "dateCreated" if rtype == "customer" else "createdDate"
        rec = {"id": rid, **rec, stamp: now, "lastModifiedDate": now}
        if rtype in TRAN_PREFIX:
            self.tran_seq[rtype] += 1
            rec["tranId"] = f"{TRAN_PREFIX[rtype]}{self.tran_seq[rtype]:05d}"
        self.records[rtype][rid] = rec
        self.revs[rtype][rid] = 1
        if rec.get("externalId") is not None:
            self.eids[rtype][rec["externalId"]] = rid
        self._link(rtype, rec, 1)
        view = self._internal_view(rtype, rec)
        self.events.emit(rtype, rid, "created", {k: {"old": None, "new": v} for k, v in view.items()
                                                 if k not in ("id", "links")}, view, now)
        self._after_write(rtype, rec, None)
        return rid

    def update(self, rtype: str, rid: str, body: Any, *, replace_external_id: str | None = None) -> Json:
        rec = self.get(rtype, rid)
        values = parse_body(rtype, body, creating=False)
        if replace_external_id is not None:
            values["externalId"] = replace_external_id
        if "externalId" in values:
            self._check_external_id(rtype, values["externalId"], rid)
        before_view = self._internal_view(rtype, rec)
        before = copy.deepcopy(rec)
        new = getattr(self, f"_update_{rtype}")(rec, values)
        self._link(rtype, rec, -1)
        self.records[rtype][rid] = new
        self._link(rtype, new, 1)
        old_eid, new_eid = rec.get("externalId"), new.get("externalId")
        if old_eid != new_eid:
            if old_eid is not None:
                self.eids[rtype].pop(old_eid, None)
            if new_eid is not None:
                self.eids[rtype][new_eid] = rid
        self.revs[rtype][rid] += 1
        changes = self._commit(rtype, rid, before_view)
        self._after_write(rtype, new, before)
        return changes

    def delete(self, rtype: str, rid: str) -> None:
        rec = self.get(rtype, rid)
        blocked = {
            "customer": lambda: self.tx_by_entity.get(rid),
            "item": lambda: self.item_uses.get(rid, 0) > 0,
            "salesOrder": lambda: self.invoices_by_order.get(rid),
            "invoice": lambda: self.memos_by_invoice.get(rid) or rec.get("amountPaid", 0) > 0,
            "creditMemo": lambda: False,
        }[rtype]()
        if blocked:
            raise user_error("This record cannot be deleted because it has dependent records.")
        view = self._internal_view(rtype, rec)
        self._link(rtype, rec, -1)
        del self.records[rtype][rid]
        self.revs[rtype].pop(rid, None)
        if rec.get("externalId") is not None:
            self.eids[rtype].pop(rec["externalId"], None)
        self.events.emit(rtype, rid, "deleted", {k: {"old": v, "new": None} for k, v in view.items()
                                                 if k not in ("id", "links")}, None, self.now_iso())
        self._after_write(rtype, None, rec)

    def _commit(self, rtype: str, rid: str, before_view: Json, *, event: bool = True) -> Json:
        """Stamps lastModifiedDate, diffs the rendered views, emits `<type>.updated` when anything changed."""
        rec = self.records[rtype][rid]
        after_view = self._internal_view(rtype, rec)
        changes = {k: {"old": before_view.get(k), "new": after_view.get(k)}
                   for k in before_view.keys() | after_view.keys()
                   if k not in ("lastModifiedDate", "links") and before_view.get(k) != after_view.get(k)}
        if changes:
            rec["lastModifiedDate"] = self.now_iso()
            after_view["lastModifiedDate"] = rec["lastModifiedDate"]
            if event:
                self.events.emit(rtype, rid, "updated", changes, after_view, rec["lastModifiedDate"])
        return changes

    def _check_external_id(self, rtype: str, eid: str | None, rid: str | None) -> None:
        if eid is None:
            return
        owner = self.eids[rtype].get(eid)
        if owner is not None and owner != rid:
            raise ErpError(400, "USER_ERROR", f"A {rtype} record with external ID {eid!r} already exists.",
                           path="externalId")

    def _after_write(self, rtype: str, new: Json | None, old: Json | None) -> None:
        """Re-derives what depends on the written record and reports it (order status, invoice balance)."""
        rec = new or old or {}
        if rtype == "invoice":
            if new is not None:
                self.schedule_overdue(new)
            else:
                self.clock.cancel(f"erp.overdue:{rec['id']}")
            for so_id in {r.get("createdFrom") for r in (new, old) if r}:
                if so_id in self.records["salesOrder"]:
                    self._refresh_order(so_id)
        elif rtype == "creditMemo":
            inv_id = rec.get("createdFrom")
            if inv_id in self.records["invoice"]:
                self._refresh_invoice(inv_id)

    # ---- customer ---------------------------------------------------------------------------------------------
    def _customer_values(self, values: Json, current: Json) -> Json:
        rec = dict(current)
        for key, value in values.items():
            if key in ("subsidiary", "currency", "terms"):
                rec[key] = self._list_ref({"subsidiary": "subsidiary", "currency": "currency",
                                           "terms": "terms"}[key], value, key)
            else:
                rec[key] = value
        return rec

    def _new_customer(self, values: Json) -> Json:
        base = {"companyName": None, "legalName": None, "email": None, "phone": None, "externalId": None,
                "subsidiary": "1", "currency": None, "terms": None, "creditLimit": None,
                "creditHoldOverride": "AUTO", "taxRegistration": None, "addressBook": [], "isInactive": False,
                "comments": None}
        rec = self._customer_values(values, base)
        if rec["currency"] is None:
            rec["currency"] = self.lists["subsidiary"][rec["subsidiary"]]["currency"]
        return rec

    def _update_customer(self, rec: Json, values: Json) -> Json:
        if "subsidiary" in values and values["subsidiary"] != {"id": rec["subsidiary"]} \
                and self.tx_by_entity.get(rec["id"]):
            raise user_error("You cannot change the subsidiary of a customer with transactions.", "subsidiary")
        return self._customer_values(values, rec)

    # ---- item -----------------------------------------------------------------------------------------------
    def _check_item_id(self, item_id: str, rid: str | None) -> None:
        wanted = item_id.casefold()
        for other in self.records["item"].values():
            if other["id"] != rid and other["itemId"].casefold() == wanted:
                raise user_error(f"An item with the name {item_id!r} already exists.", "itemId")

    def _new_item(self, values: Json) -> Json:
        self._check_item_id(values["itemId"], None)
        return {"itemId": values["itemId"], "displayName": values.get("displayName"),
                "description": values.get("description"), "basePrice": values.get("basePrice"),
                "itemType": values.get("itemType") or "Service", "externalId": values.get("externalId"),
                "isInactive": values.get("isInactive", False)}

    def _update_item(self, rec: Json, values: Json) -> Json:
        if "itemId" in values:
            self._check_item_id(values["itemId"], rec["id"])
        return {**rec, **values}

    # ---- user actions (what a person does in the NetSuite UI) ---------------------------------------------------
    def set_credit_hold(self, cid: str, override: str) -> Json:
        rec = self.get("customer", cid)
        before = self._internal_view("customer", rec)
        rec["creditHoldOverride"] = override
        self.revs["customer"][cid] += 1
        self._commit("customer", cid, before)
        return self._internal_view("customer", rec)
