"""Flow 2, invoice sync, end to end over the sandbox (all mocks + core in-process).

The account is set up directly in every system plus the crosswalk (`setup_account`, shared with the
failed-payment, amendment and renewal tests), so these tests don't depend on lead-to-cash. Billing
customers live on their own Stripe test clock, so advancing time never touches other tests' records.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from lockstep.sandbox import CORE_BASE_URL, Sandbox
from tests.integration.conftest import unique

ITEM_EID = "ITEM-LS-FLOWS"
RECORD = "/services/rest/record/v1"


# ---- shared setup (imported by the other flow test modules) ------------------------------------------------


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 400, f"{response.request.method} {response.request.url}: " \
                                       f"{response.status_code} {response.text[:400]}"
    return response.json() if response.content else None


@dataclass
class Acct:
    name: str
    canonical: str
    crm: str
    erp: str
    order: str
    cs: str
    billing: str
    clock: str
    price: str
    subscription: str = ""
    items: list[dict[str, Any]] = field(default_factory=list)


async def _erp_item(sandbox: Sandbox) -> None:
    erp = sandbox.clients["erp"]
    if (await erp.get(f"{RECORD}/item/eid:{ITEM_EID}")).status_code == 404:
        made = await erp.post(f"{RECORD}/item", json={"itemId": "LS-FLOWS", "itemType": "Service",
                                                     "externalId": ITEM_EID, "basePrice": 10})
        assert made.status_code < 400 or "already" in made.text, made.text


async def setup_account(sandbox: Sandbox, *, unit_amount: int = 1000, quantity: int = 10,
                        interval: str = "month", subscribe: bool = True) -> Acct:
    """An account in CRM, ERP (customer + contract order), CS and billing (customer on its own test clock,
    visa card, a subscription whose first invoice is paid), linked in the crosswalk as lead-to-cash links
    them (account: crm / erp / billing / cs Gsid; CS ExternalId = canonical id; subscription -> ERP order)."""
    name = unique("Flows")
    crm, erp, billing, cs = (sandbox.clients[s] for s in ("crm", "erp", "billing", "cs"))
    xw = sandbox.runtime.crosswalk
    crm_id = ok(await crm.post(f"/services/data/v{sandbox.versions['crm']}/sobjects/Account",
                               json={"Name": name, "BillingCountry": "US"}))["id"]
    canonical = str(xw.get_or_create("account", "crm", crm_id))
    await _erp_item(sandbox)
    ok(await erp.put(f"{RECORD}/customer/eid:{name}", json={"companyName": name, "subsidiary": {"id": "1"}}))
    erp_id = ok(await erp.get(f"{RECORD}/customer/eid:{name}"))["id"]
    xw.link(canonical, "erp", erp_id)
    rate = unit_amount / 100 * (12 if interval == "month" else 1)  # the contract order: one year
    ok(await erp.post(f"{RECORD}/salesOrder", json={
        "entity": {"id": erp_id}, "externalId": f"so-{name}",
        "item": {"items": [{"item": {"externalId": ITEM_EID}, "quantity": quantity, "rate": rate}]}}))
    order = ok(await erp.get(f"{RECORD}/salesOrder/eid:so-{name}"))["id"]
    gsid = ok(await cs.post("/v1/data/objects/Company", params={"keys": "ExternalId"},
                            json={"records": [{"Name": name, "ExternalId": canonical}]}))["data"]["records"][0]["Gsid"]
    xw.link(canonical, "cs", gsid)
    now = int((ok(await sandbox.control("billing").get("/clock")))["now"])
    clock = ok(await billing.post("/v1/test_helpers/test_clocks", data={"frozen_time": now}))["id"]
    cus = ok(await billing.post("/v1/customers", data={"name": name, "email": f"{name}@example.com",
                                                       "test_clock": clock}))["id"]
    xw.link(canonical, "billing", cus)
    await set_card(sandbox, cus, "pm_card_visa")
    product = ok(await billing.post("/v1/products", data={"name": f"Platform {name}"}))["id"]
    price = ok(await billing.post("/v1/prices", data={"product": product, "unit_amount": unit_amount,
                                                      "currency": "usd", "recurring[interval]": interval}))["id"]
    acct = Acct(name, canonical, crm_id, erp_id, order, gsid, cus, clock, price)
    if subscribe:
        sub = ok(await billing.post("/v1/subscriptions", data={
            "customer": cus, "items[0][price]": price, "items[0][quantity]": quantity,
            "metadata[erp_sales_order]": order, "metadata[sku]": "LS-FLOWS"}))
        acct.subscription, acct.items = sub["id"], sub["items"]["data"]
        xw.link(xw.get_or_create("subscription", "billing", sub["id"]), "erp", order)
    await sandbox.quiesce()
    return acct


async def set_card(sandbox: Sandbox, customer: str, card: str) -> str:
    billing = sandbox.clients["billing"]
    pm = ok(await billing.post(f"/v1/payment_methods/{card}/attach", data={"customer": customer}))["id"]
    ok(await billing.post(f"/v1/customers/{customer}", data={"invoice_settings[default_payment_method]": pm}))
    return pm


async def advance_clock(sandbox: Sandbox, acct: Acct, days: float) -> None:
    """Advance the account's billing test clock and wait until billing and the core are quiet."""
    billing = sandbox.clients["billing"]
    current = ok(await billing.get(f"/v1/test_helpers/test_clocks/{acct.clock}"))["frozen_time"]
    ok(await billing.post(f"/v1/test_helpers/test_clocks/{acct.clock}/advance",
                          data={"frozen_time": int(current + days * 86_400)}))
    deadline = time.monotonic() + 30
    while ok(await billing.get(f"/v1/test_helpers/test_clocks/{acct.clock}"))["status"] != "ready":
        assert time.monotonic() < deadline, "test clock still advancing"
        await asyncio.sleep(0.02)
    await sandbox.quiesce()


async def invoices_of(sandbox: Sandbox, acct: Acct) -> list[dict[str, Any]]:
    return ok(await sandbox.clients["billing"].get("/v1/invoices", params={"customer": acct.billing,
                                                                            "limit": 100}))["data"]


async def erp_invoice(sandbox: Sandbox, invoice_id: str) -> dict[str, Any] | None:
    r = await sandbox.clients["erp"].get(f"{RECORD}/invoice/eid:{invoice_id}")
    return None if r.status_code == 404 else ok(r)


async def crm_account(sandbox: Sandbox, acct: Acct) -> dict[str, Any]:
    return ok(await sandbox.clients["crm"].get(
        f"/services/data/v{sandbox.versions['crm']}/sobjects/Account/{acct.crm}"))


async def flows_for(sandbox: Sandbox, prefix: str) -> list[dict[str, Any]]:
    return [f for f in await sandbox.flows(limit=500) if f["workflow_id"].startswith(prefix)]


async def subscribe(sandbox: Sandbox, acct: Acct, *, quantity: int) -> str:
    """A subscription billed on the account's contract order; its first invoice's id, once all is quiet."""
    sub = ok(await sandbox.clients["billing"].post("/v1/subscriptions", data={
        "customer": acct.billing, "items[0][price]": acct.price, "items[0][quantity]": quantity,
        "metadata[erp_sales_order]": acct.order}))
    await sandbox.quiesce()
    return str(sub["latest_invoice"])


def hold_invoice_events(sandbox: Sandbox, acct: Acct) -> Interceptor:
    """Holds the account's `invoice.*` deliveries until the test delivers them (`deliver`)."""
    return Interceptor(sandbox, lambda e: e["type"].startswith("invoice.")
                       and e["data"]["object"].get("customer") == acct.billing)


class Interceptor:
    """Sits in front of the core's billing webhook endpoint: holds the deliveries `hold(body)` picks (answering
    200, as a slow network would have swallowed them for now) and passes the rest through; `release(order)`
    then delivers the held ones, exact bodies and signatures, in the order given."""

    def __init__(self, sandbox: Sandbox, hold: Any) -> None:
        self.sandbox, self.hold, self.held = sandbox, hold, []
        self.url = f"{CORE_BASE_URL}/webhooks/billing"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k.decode().lower() != "content-length"}
        event = json.loads(body)
        if self.hold(event):
            self.held.append((event, headers, body))
            status, out = 200, b'{"held": true}'
        else:
            r = await self.sandbox.core.post("/webhooks/billing", content=body, headers=headers)
            status, out = r.status_code, r.content
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})

    def __enter__(self) -> Interceptor:
        self.sandbox.routes.register(self.url, self)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sandbox.routes.unregister(self.url)

    async def deliver(self, event_type: str) -> httpx.Response:
        for event, headers, body in self.held:
            if event["type"] == event_type:
                return await self.sandbox.core.post("/webhooks/billing", content=body, headers=headers)
        raise AssertionError(f"no held {event_type} (held: {[e['type'] for e, _, _ in self.held]})")


# ---- tests -----------------------------------------------------------------------------------------------


async def test_invoice_sync_happy_path(sandbox: Sandbox) -> None:
    acct = await setup_account(sandbox, unit_amount=1250, quantity=4)
    [inv] = await invoices_of(sandbox, acct)
    assert inv["status"] == "paid" and inv["total"] == 5000
    erp = await erp_invoice(sandbox, inv["id"])
    assert erp is not None, "the paid invoice never reached the ERP"
    assert erp["total"] == pytest.approx(50.0)
    assert erp["entity"]["id"] == acct.erp and erp["createdFrom"]["id"] == acct.order
    assert "status paid" in erp["memo"] and "remaining 0.00 USD" in erp["memo"]
    account = await crm_account(sandbox, acct)
    assert account["AR_Balance__c"] == 0.0
    # the next period: an invoice on the same contract order, receivables still nothing owed
    await advance_clock(sandbox, acct, 32)
    latest = (await invoices_of(sandbox, acct))[0]
    assert latest["id"] != inv["id"] and latest["status"] == "paid"
    assert (await erp_invoice(sandbox, latest["id"]))["total"] == pytest.approx(50.0)
    xw = sandbox.runtime.crosswalk
    canonical = xw.lookup("invoice", "billing", inv["id"])
    assert canonical is not None and xw.native(canonical, "erp") == erp["id"]


async def test_invoice_sync_out_of_order_and_duplicates(sandbox: Sandbox) -> None:
    """invoice.paid is delivered (twice) before invoice.finalized: the ERP ends with the paid state."""
    acct = await setup_account(sandbox, subscribe=False)
    with hold_invoice_events(sandbox, acct) as net:
        inv_id = await subscribe(sandbox, acct, quantity=3)
        assert await erp_invoice(sandbox, inv_id) is None  # nothing delivered yet
        await net.deliver("invoice.paid")
        await net.deliver("invoice.paid")
        await sandbox.quiesce()
        await net.deliver("invoice.finalized")
        await sandbox.quiesce()
    erp = await erp_invoice(sandbox, inv_id)
    assert erp is not None and erp["total"] == pytest.approx(30.0)
    assert "status paid" in erp["memo"], erp["memo"]  # the late `open` event did not win
    flows = await flows_for(sandbox, f"invoice-sync:{inv_id}:")
    assert sorted(f["workflow_id"] for f in flows) == [f"invoice-sync:{inv_id}:open", f"invoice-sync:{inv_id}:paid"]
    assert all(f["status"] == "SUCCESS" for f in flows)
    creates = [r for r in await sandbox.journal("erp", method="PUT", limit=1000)
               if r.get("path", "").endswith(f"eid:{inv_id}") and r.get("status") == 204]
    assert len(creates) >= 1
    assert (await crm_account(sandbox, acct))["AR_Balance__c"] == 0.0


async def test_invoice_sync_erp_5xx_is_retried(sandbox: Sandbox) -> None:
    acct = await setup_account(sandbox, subscribe=False)
    control = sandbox.control("erp")
    ok(await control.put("/faults", json={"rules": [{"id": "inv503", "route": f"PUT {RECORD}/invoice/*",
                                                     "kind": "error", "status": 503, "max_hits": 2}]}))
    try:
        sub = ok(await sandbox.clients["billing"].post("/v1/subscriptions", data={
            "customer": acct.billing, "items[0][price]": acct.price, "items[0][quantity]": 2,
            "metadata[erp_sales_order]": acct.order}))
        await sandbox.quiesce()
        hits = ok(await control.get("/faults"))["hits"]
    finally:
        ok(await control.delete("/faults"))
    assert sum(hits.values()) == 2 if isinstance(hits, dict) else hits, hits
    erp = await erp_invoice(sandbox, sub["latest_invoice"])
    assert erp is not None and erp["total"] == pytest.approx(20.0)
    flows = await flows_for(sandbox, f"invoice-sync:{sub['latest_invoice']}:")
    assert flows and all(f["status"] == "SUCCESS" for f in flows), flows


async def test_invoice_sync_erp_drift_parks_then_replays_once(sandbox: Sandbox) -> None:
    acct = await setup_account(sandbox, subscribe=False)
    control = sandbox.control("erp")
    pinned = sandbox.versions["erp"]
    ok(await control.put("/version", json={"api_version": "2025.1"}))
    try:
        sub = ok(await sandbox.clients["billing"].post("/v1/subscriptions", data={
            "customer": acct.billing, "items[0][price]": acct.price, "items[0][quantity]": 5,
            "metadata[erp_sales_order]": acct.order}))
        inv_id = sub["latest_invoice"]
        await sandbox.quiesce()
        parked = [d for d in await sandbox.dlq(status="parked") if d["business_key"].startswith(
            f"invoice-sync:{inv_id}:")]
        assert parked, "the drifted flow was not parked"
        for entry in parked:
            assert entry["error_class"].endswith("SchemaDriftError"), entry
            assert "salesOrder.status" in entry["error_message"] or "invoice.status" in entry["error_message"], entry
        assert await erp_invoice(sandbox, inv_id) is None, "something was written despite the drift"
    finally:
        ok(await control.put("/version", json={"api_version": pinned}))
    for entry in parked:
        replay = await sandbox.core.post(f"/dlq/{entry['id']}/replay")
        assert replay.status_code == 202, replay.text
        again = await sandbox.core.post(f"/dlq/{entry['id']}/replay")
        assert again.status_code == 409, again.text  # replaying: not parked any more
    await sandbox.quiesce()
    for entry in parked:
        assert (await sandbox.wait_flow(f"{entry['business_key']}~replay-1"))["status"] == "SUCCESS"
    erp = await erp_invoice(sandbox, inv_id)
    assert erp is not None and erp["total"] == pytest.approx(50.0) and "status paid" in erp["memo"]
    creates = [r for r in await sandbox.journal("erp", method="PUT", limit=1000)
               if str(r.get("path", "")).endswith(f"eid:{inv_id}")]
    assert creates, "no ERP invoice write recorded"


async def test_invoice_sync_first_write_is_one_put_without_reads(sandbox: Sandbox) -> None:
    """An invoice the crosswalk never linked is written with one PUT (customer, order, line), not looked up
    first nor read back: the ERP journal holds no GET of it before the test's own reads."""
    acct = await setup_account(sandbox, subscribe=False)
    inv_id = await subscribe(sandbox, acct, quantity=6)
    calls = [r for r in await sandbox.journal("erp", limit=5000) if str(r.get("path", "")).endswith(f"eid:{inv_id}")]
    puts = [r for r in calls if r["method"] == "PUT"]
    assert puts and all(r["status"] == 204 for r in puts), calls
    first_put = min(r["seq"] for r in puts)
    assert not [r for r in calls if r["method"] == "GET" and r["seq"] < first_put], calls
    assert not [r for r in calls if r.get("status") == 404], calls
    erp = await erp_invoice(sandbox, inv_id)
    assert erp is not None and erp["total"] == pytest.approx(60.0) and "status paid" in erp["memo"]
    xw = sandbox.runtime.crosswalk
    assert xw.native(xw.lookup("invoice", "billing", inv_id), "erp") == erp["id"]


async def test_invoice_sync_adopts_an_erp_invoice_the_crosswalk_never_linked(sandbox: Sandbox) -> None:
    """The ERP already holds the invoice (written before the core's store was reset, say) on another order
    and with a wrong amount: the optimistic create is refused ("createdFrom cannot be changed"), the flow
    reads the invoice and updates it in place: right amount and status, same order, one ERP invoice."""
    acct = await setup_account(sandbox, subscribe=False)
    erp = sandbox.clients["erp"]
    ok(await erp.post(f"{RECORD}/salesOrder", json={
        "entity": {"id": acct.erp}, "externalId": f"so2-{acct.name}",
        "item": {"items": [{"item": {"externalId": ITEM_EID}, "quantity": 1, "rate": 500}]}}))
    other_order = ok(await erp.get(f"{RECORD}/salesOrder/eid:so2-{acct.name}"))["id"]
    with hold_invoice_events(sandbox, acct) as net:
        inv_id = await subscribe(sandbox, acct, quantity=3)
        ok(await erp.put(f"{RECORD}/invoice/eid:{inv_id}", json={
            "entity": {"id": acct.erp}, "createdFrom": {"id": other_order}, "memo": "written elsewhere",
            "item": {"items": [{"item": {"externalId": ITEM_EID}, "quantity": 1, "rate": 1}]}}))
        before = ok(await erp.get(f"{RECORD}/invoice/eid:{inv_id}"))
        await net.deliver("invoice.paid")
        await sandbox.quiesce()
    refused = [r for r in await sandbox.journal("erp", method="PUT", limit=5000)
               if str(r.get("path", "")).endswith(f"eid:{inv_id}") and r.get("status") == 400]
    assert refused, "the optimistic create was never tried"
    after = await erp_invoice(sandbox, inv_id)
    assert after is not None and after["id"] == before["id"]
    assert after["createdFrom"]["id"] == other_order
    assert after["total"] == pytest.approx(30.0) and "status paid" in after["memo"], after
    flows = await flows_for(sandbox, f"invoice-sync:{inv_id}:")
    assert flows and all(f["status"] == "SUCCESS" for f in flows), flows
    xw = sandbox.runtime.crosswalk
    assert xw.native(xw.lookup("invoice", "billing", inv_id), "erp") == after["id"]
