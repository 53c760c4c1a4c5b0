"""Seeding and user actions of the ERP sandbox (control API `seed` and `actions`). No HTTP.

Seed body (all optional)::

    {"customers": 24,            # demo customers drawn from the tenant's seeded RNG (0 for none)
     "items": true,              # the demo item catalog
     "records": {"item": [...], "customer": [...], "salesOrder": [...], "invoice": [...], "creditMemo": [...]},
                                 # explicit records in NetSuite wire shape, created in that order
     "events": false,            # emit change events for seeded records
     "approvalRequired": false}  # account preference: new sales orders start Pending Approval

Actions (`{"action": ..., ...}`), what a person does in the NetSuite UI:
`place_credit_hold` / `release_credit_hold` {customer, override?: OFF|AUTO}, `approve_order` /
`close_order` / `cancel_order` {salesOrder}, `record_payment` {invoice, amount?}, `void_invoice` {invoice},
`edit_record` {recordType, id, fields} and `set_preferences` {approvalRequired}. Record keys are internal ids
or `eid:<externalId>`. Failures raise ValueError, which the control API answers with 400.
"""

from __future__ import annotations

from typing import Any

from faker import Faker

from mocks.erp.errors import ErpError
from mocks.erp.fields import RECORD_TYPES
from mocks.erp.models import ErpState

__all__ = ["DEMO_ITEMS", "perform_action", "seed_tenant"]

Json = dict[str, Any]

DEMO_ITEMS: list[Json] = [
    {"itemId": "PLAT-ANNUAL", "displayName": "Platform subscription (annual)", "basePrice": 12000,
     "itemType": "Service", "externalId": "ITEM-PLAT-ANNUAL"},
    {"itemId": "SEAT", "displayName": "Additional seat (annual)", "basePrice": 600, "itemType": "Service",
     "externalId": "ITEM-SEAT"},
    {"itemId": "ONBOARDING", "displayName": "Onboarding package", "basePrice": 5000, "itemType": "Service",
     "externalId": "ITEM-ONBOARDING"},
    {"itemId": "SUPPORT-PREMIUM", "displayName": "Premium support (annual)", "basePrice": 3000,
     "itemType": "Service", "externalId": "ITEM-SUPPORT-PREMIUM"},
    {"itemId": "TRAINING-DAY", "displayName": "Training day", "basePrice": 1500, "itemType": "Service",
     "externalId": "ITEM-TRAINING-DAY"},
    {"itemId": "GATEWAY-HW", "displayName": "IoT gateway", "basePrice": 450, "itemType": "InvtPart",
     "externalId": "ITEM-GATEWAY-HW"},
]

# subsidiary id -> (country, faker locale, tax number maker)
_SUBSIDIARY_LOCALES = {"1": ("US", "en_US"), "2": ("GB", "en_GB"), "3": ("DE", "de_DE"), "4": ("CA", "en_CA"),
                       "5": ("AU", "en_AU")}


def _tax_number(country: str, digits: str) -> str:
    return {"US": f"{digits[:2]}-{digits[2:9]}", "GB": f"GB{digits[:9]}", "DE": f"DE{digits[:9]}",
            "CA": digits[:9], "AU": digits[:11]}[country]


def _demo_customers(state: ErpState, count: int) -> list[Json]:
    rng = state.tenant.rng
    fakers = {sid: Faker(locale) for sid, (_, locale) in _SUBSIDIARY_LOCALES.items()}
    for n, fake in enumerate(fakers.values()):
        fake.seed_instance(rng.getrandbits(32) + n)
    out = []
    for n in range(1, count + 1):
        sid = rng.choice(sorted(fakers))
        fake = fakers[sid]
        country = _SUBSIDIARY_LOCALES[sid][0]
        company = fake.company()[:83]
        digits = "".join(str(rng.randrange(10)) for _ in range(11))
        address = {"addressee": company[:150], "addr1": fake.street_address()[:150], "city": fake.city()[:50],
                   "zip": fake.postcode()[:36], "country": country}
        out.append({
            "companyName": company,
            "legalName": f"{company} {rng.choice(['Ltd', 'Inc', 'GmbH', 'LLC', 'Pty'])}"[:83],
            "email": f"ap{n}@{fake.domain_name()}",
            "externalId": f"DEMO-{n:04d}",
            "subsidiary": {"id": sid},
            "terms": {"id": rng.choice(["4", "5", "5", "6"])},
            "creditLimit": rng.choice([None, 10000, 25000, 50000, 100000]),
            "taxRegistration": {"country": country, "number": _tax_number(country, digits)},
            "addressBook": {"items": [{"defaultBilling": True, "defaultShipping": True, "label": "HQ",
                                       "addressBookAddress": address}]},
        })
    return out


def _created(state: ErpState, rtype: str, bodies: list[Json]) -> list[str]:
    ids = []
    for body in bodies:
        body = {k: v for k, v in body.items() if v is not None}
        if rtype == "item" and body.get("externalId") in state.eids["item"]:
            continue  # the catalog is seeded once
        ids.append(state.create(rtype, body))
    return ids


def seed_tenant(tenant: Any, body: Json) -> Json:
    state: ErpState = tenant.state
    records = body.get("records") or {}
    if not isinstance(records, dict) or set(records) - set(RECORD_TYPES):
        raise ValueError(f"records must map record types ({', '.join(RECORD_TYPES)}) to lists")
    count = body.get("customers", 24)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 10_000:
        raise ValueError("customers must be an integer from 0 to 10000")
    if "approvalRequired" in body:
        state.settings["approvalRequired"] = bool(body["approvalRequired"])
    created: dict[str, list[str]] = {}
    state.events.muted = not body.get("events", False)
    try:
        if body.get("items", True):
            created["item"] = _created(state, "item", DEMO_ITEMS)
        if count:
            created["customer"] = _created(state, "customer", _demo_customers(state, count))
        for rtype in ("item", "customer", "salesOrder", "invoice", "creditMemo"):
            bodies = records.get(rtype) or []
            if not isinstance(bodies, list):
                raise ValueError(f"records.{rtype} must be a list")
            created.setdefault(rtype, []).extend(_created(state, rtype, bodies))
    except ErpError as exc:
        where = f" ({exc.path})" if exc.path else ""
        raise ValueError(f"{exc.code}: {exc.detail}{where}") from exc
    finally:
        state.events.muted = False
    return {"created": {k: v for k, v in created.items() if v}}


def _key(body: Json, name: str) -> str:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is required (an internal id or eid:<externalId>)")
    return value


def perform_action(tenant: Any, body: Json) -> Json:
    state: ErpState = tenant.state
    action = body.get("action")
    try:
        if action == "place_credit_hold":
            return {"action": action, "customer": state.set_credit_hold(
                state.resolve("customer", _key(body, "customer")), "ON")}
        if action == "release_credit_hold":
            override = body.get("override", "OFF")
            if override not in ("OFF", "AUTO"):
                raise ValueError("override must be OFF or AUTO")
            return {"action": action, "customer": state.set_credit_hold(
                state.resolve("customer", _key(body, "customer")), override)}
        if action in ("approve_order", "close_order", "cancel_order"):
            so_id = state.resolve("salesOrder", _key(body, "salesOrder"))
            return {"action": action, "salesOrder": state.set_order_status(so_id, action.split("_")[0])}
        if action == "record_payment":
            amount = body.get("amount")
            if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
                raise ValueError("amount must be a number")
            return {"action": action, **state.record_payment(state.resolve("invoice", _key(body, "invoice")), amount)}
        if action == "void_invoice":
            return {"action": action, "invoice": state.void_invoice(state.resolve("invoice", _key(body, "invoice")))}
        if action == "edit_record":
            rtype = body.get("recordType")
            if rtype not in RECORD_TYPES:
                raise ValueError(f"recordType must be one of {', '.join(RECORD_TYPES)}")
            rid = state.resolve(rtype, _key(body, "id"))
            changes = state.update(rtype, rid, body.get("fields") or {})
            return {"action": action, "changes": changes, "record": state.render(
                rtype, state.records[rtype][rid], base=None, expand=True)}
        if action == "set_preferences":
            if "approvalRequired" in body:
                state.settings["approvalRequired"] = bool(body["approvalRequired"])
            return {"action": action, "preferences": dict(state.settings)}
    except ErpError as exc:
        where = f" ({exc.path})" if exc.path else ""
        raise ValueError(f"{exc.code}: {exc.detail}{where}") from exc
    raise ValueError(f"unknown action {action!r}; known: place_credit_hold, release_credit_hold, approve_order, "
                     "close_order, cancel_order, record_payment, void_invoice, edit_record, set_preferences")
