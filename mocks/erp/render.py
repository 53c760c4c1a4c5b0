"""Internal record -> NetSuite REST representation (before the per-version overlay). No HTTP.

Like NetSuite: empty fields are left out, references carry `id` + `refName` (+ `links` to the record),
and sublists (`item`, `addressBook`) are collapsed to a link unless `expandSubResources=true`.
`base` is the record service root (e.g. `http://host/services/rest/record/v1`); None leaves `links` out
(event payloads).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mocks.erp.models import ErpState

__all__ = ["links", "render_record"]

Json = dict[str, Any]

# field -> (record type it points at, or a reference list name)
REFS: dict[str, dict[str, str]] = {
    "customer": {"subsidiary": "subsidiary", "currency": "currency", "terms": "terms"},
    "salesOrder": {"entity": "customer", "subsidiary": "subsidiary", "currency": "currency"},
    "invoice": {"entity": "customer", "createdFrom": "salesOrder", "subsidiary": "subsidiary",
                "currency": "currency", "terms": "terms"},
    "creditMemo": {"entity": "customer", "createdFrom": "invoice", "subsidiary": "subsidiary",
                   "currency": "currency"},
    "item": {},
}
SUBLISTS = {"customer": ("addressBook",), "salesOrder": ("item",), "invoice": ("item",),
            "creditMemo": ("item",), "item": ()}
# Internal bookkeeping never shown on the wire.
HIDDEN = frozenset({"amountCredited", "voided"})


def links(href: str | None) -> list[Json]:
    return [] if href is None else [{"rel": "self", "href": href}]


def _ref(state: ErpState, target: str, ref_id: str, base: str | None) -> Json:
    out: Json = {}
    if target in state.records:
        if base is not None:
            out["links"] = links(f"{base}/{target}/{ref_id}")
        out["id"] = ref_id
        rec = state.records[target].get(ref_id)
        name = state.ref_name(target, rec) if rec is not None else None
    else:
        out["id"] = ref_id
        entry = state.lists[target].get(ref_id)
        name = (entry.get("symbol") or entry.get("name")) if entry is not None else None
    if name is not None:
        out["refName"] = name
    return out


def _sublist(state: ErpState, rtype: str, name: str, rows: list[Json], href: str | None, base: str | None,
             expand: bool) -> Json:
    sub_href = None if href is None else f"{href}/{name}"
    if not expand:
        return {"links": links(sub_href)}
    items: list[Json] = []
    for row in rows:
        if name == "item":
            line = {"links": [], **row, "item": _ref(state, "item", row["item"], base)}
            items.append(line)
        else:
            items.append({"links": [], **row})
    return {"links": links(sub_href), "items": items, "totalResults": len(items), "count": len(items),
            "hasMore": False, "offset": 0}


def render_record(state: ErpState, rtype: str, rec: Json, *, base: str | None, expand: bool = True) -> Json:
    href = None if base is None else f"{base}/{rtype}/{rec['id']}"
    out: Json = {"links": links(href)} if href is not None else {}
    refs = REFS[rtype]
    sublists = SUBLISTS[rtype]
    for key, value in rec.items():
        if value is None or key in HIDDEN:
            continue
        if key in refs:
            out[key] = _ref(state, refs[key], value, base)
        elif key in sublists:
            out[key] = _sublist(state, rtype, key, value, href, base, expand)
        else:
            out[key] = value
    if rtype == "customer":
        balance = state.customer_balance(rec["id"])
        out["balance"] = balance
        out["isOnCreditHold"] = state.on_credit_hold(rec, balance)
    elif rtype == "invoice":
        days = state.days_overdue(rec)
        if days:
            out["daysOverdue"] = days
    return out
