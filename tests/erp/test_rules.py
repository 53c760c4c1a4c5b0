"""NetSuite business rules: tax registrations, credit hold, order -> invoice -> credit memo, amendments."""

from __future__ import annotations

import httpx
import pytest

from tests.erp.conftest import (
    ADMIN,
    ROOT,
    TOKEN_A,
    action,
    create,
    error_of,
    get,
    lines,
    make_customer,
    make_item,
    make_order,
)


@pytest.mark.parametrize(
    ("country", "number", "stored"),
    [
        ("GB", "GB123456789", "GB123456789"),
        ("GB", "123 4567 89", "GB123456789"),
        ("GB", "GB123456789012", "GB123456789012"),
        ("DE", "DE123456789", "DE123456789"),
        ("FR", "FRAB123456789", "FRAB123456789"),
        ("FR", "FR12123456789", "FR12123456789"),
        ("US", "12-3456789", "12-3456789"),
        ("US", "123456789", "12-3456789"),
        ("IE", "IE1234567WA", "IE1234567WA"),
        ("NL", "NL123456789B01", "NL123456789B01"),
        ("CA", "123456789RT0001", "123456789RT0001"),
        ("AU", "51 824 753 556", "51824753556"),
    ],
)
async def test_valid_tax_registrations_are_normalized(client: httpx.AsyncClient, country: str, number: str,
                                                      stored: str) -> None:
    cid = await make_customer(client, taxRegistration={"country": country, "number": number})
    assert (await get(client, "customer", cid))["taxRegistration"] == {"country": country, "number": stored}


@pytest.mark.parametrize(
    ("country", "number"),
    [
        ("GB", "GB12345678"),
        ("GB", "DE123456789"),
        ("DE", "DE12345678"),
        ("DE", "GB123456789"),
        ("FR", "FR123456789"),
        ("US", "12-345678"),
        ("US", "1234567890"),
        ("IE", "IE12345678"),
        ("NL", "NL123456789"),
        ("AU", "1234"),
    ],
)
async def test_invalid_tax_registrations_are_refused(client: httpx.AsyncClient, country: str, number: str) -> None:
    response = await client.post(f"{ROOT}/customer", json={"companyName": "Tax Co",
                                                          "taxRegistration": {"country": country, "number": number}})
    assert response.status_code == 400
    detail = error_of(response)
    assert detail["o:errorCode"] == "INVALID_VALUE"
    assert detail["o:errorPath"] == "taxRegistration.number"
    assert country in detail["detail"]
    # The same check guards updates.
    cid = await make_customer(client)
    patched = await client.patch(f"{ROOT}/customer/{cid}", json={"taxRegistration": {"country": country,
                                                                                    "number": number}})
    assert patched.status_code == 400 and error_of(patched)["o:errorPath"] == "taxRegistration.number"


async def test_credit_hold_override_on_blocks_new_orders_until_released(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    placed = await action(client, {"action": "place_credit_hold", "customer": cid})
    assert placed.status_code == 200 and placed.json()["customer"]["isOnCreditHold"] is True
    blocked = await client.post(f"{ROOT}/salesOrder", json={"entity": {"id": cid}, "item": lines(item)})
    assert blocked.status_code == 400
    detail = error_of(blocked)
    assert detail["o:errorCode"] == "USER_ERROR" and "credit hold" in detail["detail"]
    assert detail["o:errorPath"] == "entity"
    assert (await client.get(f"{ROOT}/salesOrder")).json()["totalResults"] == 0
    released = await action(client, {"action": "release_credit_hold", "customer": cid})
    assert released.json()["customer"]["creditHoldOverride"] == "OFF"
    await make_order(client, cid, item)


async def test_auto_credit_hold_when_open_balance_exceeds_limit(client: httpx.AsyncClient) -> None:
    item = await make_item(client, price=600)
    cid = await make_customer(client, creditLimit=1000)
    so = await make_order(client, cid, item, quantity=2)  # 1200 ordered: orders are not balance
    assert (await get(client, "customer", cid))["isOnCreditHold"] is False
    await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    customer = await get(client, "customer", cid)
    assert customer["balance"] == 1200 and customer["isOnCreditHold"] is True
    blocked = await client.post(f"{ROOT}/salesOrder", json={"entity": {"id": cid}, "item": lines(item)})
    assert blocked.status_code == 400 and "exceeds its credit limit" in error_of(blocked)["detail"]
    # Override OFF ignores the limit; AUTO again re-applies it; raising the limit clears it.
    await client.patch(f"{ROOT}/customer/{cid}", json={"creditHoldOverride": "OFF"})
    await make_order(client, cid, item)
    await client.patch(f"{ROOT}/customer/{cid}", json={"creditHoldOverride": "AUTO"})
    assert (await client.post(f"{ROOT}/salesOrder", json={"entity": {"id": cid}, "item": lines(item)})
            ).status_code == 400
    await client.patch(f"{ROOT}/customer/{cid}", json={"creditLimit": 5000})
    await make_order(client, cid, item)


async def test_payment_clears_balance_and_marks_invoice_paid(client: httpx.AsyncClient) -> None:
    item = await make_item(client, price=600)
    cid = await make_customer(client, creditLimit=1000)
    so = await make_order(client, cid, item, quantity=2)
    inv = await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    partial = await action(client, {"action": "record_payment", "invoice": inv, "amount": 200})
    assert partial.status_code == 200
    invoice = await get(client, "invoice", inv)
    assert invoice["status"] == "Open" and invoice["amountRemaining"] == 1000 and invoice["amountPaid"] == 200
    assert (await get(client, "customer", cid))["isOnCreditHold"] is False  # 1000 is not above 1000
    too_much = await action(client, {"action": "record_payment", "invoice": inv, "amount": 5000})
    assert too_much.status_code == 400
    await action(client, {"action": "record_payment", "invoice": inv})
    invoice = await get(client, "invoice", inv)
    assert invoice["status"] == "Paid In Full" and invoice["amountRemaining"] == 0
    assert (await get(client, "customer", cid))["balance"] == 0
    again = await action(client, {"action": "record_payment", "invoice": inv})
    assert again.status_code == 400 and "nothing to pay" in again.json()["error"]["message"]


async def test_inactive_customers_cannot_get_new_orders(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client, isInactive=True)
    response = await client.post(f"{ROOT}/salesOrder", json={"entity": {"id": cid}, "item": lines(item)})
    assert response.status_code == 400
    assert "inactive" in error_of(response)["detail"]
    await client.patch(f"{ROOT}/customer/{cid}", json={"isInactive": False})
    await make_order(client, cid, item)


async def test_sales_order_needs_a_real_customer_and_items(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    no_customer = await client.post(f"{ROOT}/salesOrder", json={"entity": {"id": "9999"}, "item": lines(item)})
    assert no_customer.status_code == 400 and error_of(no_customer)["o:errorPath"] == "entity"
    no_item = await client.post(f"{ROOT}/salesOrder", json={"entity": {"id": cid}, "item": lines("77")})
    assert no_item.status_code == 400 and error_of(no_item)["o:errorPath"] == "item.items[0].item"
    no_lines = await client.post(f"{ROOT}/salesOrder", json={"entity": {"id": cid}, "item": {"items": []}})
    assert no_lines.status_code == 400 and error_of(no_lines)["o:errorPath"] == "item"
    by_eid = await client.put(f"{ROOT}/customer/eid:C-1", json={"companyName": "By Eid"})
    assert by_eid.status_code == 204
    so = await create(client, "salesOrder", {"entity": {"externalId": "C-1"}, "item": lines(item, 2, 10)})
    order = await get(client, "salesOrder", so)
    assert order["total"] == 20 and order["status"] == "Pending Fulfillment" and order["tranId"].startswith("SO")


async def test_invoice_needs_customer_and_that_customers_order(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    acme = await make_customer(client)
    globex = await make_customer(client, companyName="Globex")
    so = await make_order(client, acme, item)
    missing_customer = await client.post(f"{ROOT}/invoice", json={"entity": {"id": "4242"}, "createdFrom": {"id": so}})
    assert missing_customer.status_code == 400 and error_of(missing_customer)["o:errorPath"] == "entity"
    missing_order = await client.post(f"{ROOT}/invoice", json={"entity": {"id": acme}, "createdFrom": {"id": "4242"}})
    assert missing_order.status_code == 400 and error_of(missing_order)["o:errorPath"] == "createdFrom"
    no_order = await client.post(f"{ROOT}/invoice", json={"entity": {"id": acme}})
    assert no_order.status_code == 400 and error_of(no_order)["o:errorPath"] == "createdFrom"
    other = await client.post(f"{ROOT}/invoice", json={"entity": {"id": globex}, "createdFrom": {"id": so}})
    assert other.status_code == 400 and "another customer" in error_of(other)["detail"]
    assert (await client.get(f"{ROOT}/invoice")).json()["totalResults"] == 0
    inv = await create(client, "invoice", {"entity": {"id": acme}, "createdFrom": {"id": so}})
    invoice = await get(client, "invoice", inv)
    assert invoice["total"] == 100 and invoice["status"] == "Open" and invoice["amountRemaining"] == 100
    assert invoice["dueDate"] == "2026-01-31"  # Net 30 from the sandbox clock's 2026-01-01
    assert (await get(client, "salesOrder", so))["status"] == "Billed"


async def test_invoice_upsert_may_resend_its_references_but_not_change_them(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    acme = await make_customer(client, externalId="acme-1")
    globex = await make_customer(client, companyName="Globex")
    so = await make_order(client, acme, item)
    body = {"entity": {"externalId": "acme-1"}, "createdFrom": {"id": so}, "memo": "first"}
    assert (await client.put(f"{ROOT}/invoice/eid:inv-1", json=body)).status_code == 204
    again = await client.put(f"{ROOT}/invoice/eid:inv-1", json={**body, "entity": {"id": acme}, "memo": "second"})
    assert again.status_code == 204
    assert (await get(client, "invoice", "eid:inv-1"))["memo"] == "second"
    moved = await client.put(f"{ROOT}/invoice/eid:inv-1", json={**body, "entity": {"id": globex}})
    assert moved.status_code == 400 and "cannot be changed" in error_of(moved)["detail"]


async def test_invoices_never_exceed_the_order_total(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    so = await make_order(client, cid, item, quantity=10)  # 1000
    first = await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so},
                                             "item": lines(item, 6)})
    assert (await get(client, "salesOrder", so))["amountBilled"] == 600
    assert (await get(client, "salesOrder", so))["status"] == "Pending Fulfillment"
    over = await client.post(f"{ROOT}/invoice", json={"entity": {"id": cid}, "createdFrom": {"id": so},
                                                      "item": lines(item, 5)})
    assert over.status_code == 400
    detail = error_of(over)
    assert detail["o:errorCode"] == "USER_ERROR" and "exceeds" in detail["detail"] and "400.00" in detail["detail"]
    grow = await client.patch(f"{ROOT}/invoice/{first}", json={"item": lines(item, 11)})
    assert grow.status_code == 400
    await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}, "item": lines(item, 4)})
    assert (await get(client, "salesOrder", so))["status"] == "Billed"


async def test_credit_memo_needs_an_invoice_and_applies_to_it(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    so = await make_order(client, cid, item, quantity=3)
    none = await client.post(f"{ROOT}/creditMemo", json={"entity": {"id": cid}, "item": lines(item)})
    assert none.status_code == 400 and error_of(none)["o:errorPath"] == "createdFrom"
    ghost = await client.post(f"{ROOT}/creditMemo", json={"createdFrom": {"id": "31337"}, "item": lines(item)})
    assert ghost.status_code == 400 and error_of(ghost)["o:errorPath"] == "createdFrom"
    inv = await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    cm = await create(client, "creditMemo", {"createdFrom": {"id": inv}, "item": lines(item, 1)})
    memo = await get(client, "creditMemo", cm)
    assert memo["applied"] == 100 and memo["unapplied"] == 0 and memo["status"] == "Fully Applied"
    assert memo["entity"]["id"] == cid
    assert (await get(client, "invoice", inv))["amountRemaining"] == 200
    too_much = await client.post(f"{ROOT}/creditMemo", json={"createdFrom": {"id": inv}, "item": lines(item, 3)})
    assert too_much.status_code == 400 and "exceeds" in error_of(too_much)["detail"]
    await create(client, "creditMemo", {"createdFrom": {"id": inv}, "item": lines(item, 2)})
    assert (await get(client, "invoice", inv))["status"] == "Paid In Full"
    blocked = await client.delete(f"{ROOT}/invoice/{inv}")
    assert blocked.status_code == 400 and "dependent records" in error_of(blocked)["detail"]


async def test_patching_an_order_records_amendments(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    so = await make_order(client, cid, item, quantity=1, memo="first")
    await client.patch(f"{ROOT}/salesOrder/{so}", json={"item": lines(item, 5)})
    await client.patch(f"{ROOT}/salesOrder/{so}", json={"memo": "second"})
    order = await get(client, "salesOrder", so)
    assert order["revision"] == 3 and order["total"] == 500
    assert [a["version"] for a in order["amendments"]] == [2, 3]
    assert order["amendments"][0]["changes"]["item"] == {"from": {"lines": 1, "total": 100},
                                                         "to": {"lines": 1, "total": 500}}
    assert order["amendments"][1]["changes"] == {"memo": {"from": "first", "to": "second"}}
    # Cannot shrink below what is billed; closed orders are frozen.
    await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}, "item": lines(item, 3)})
    shrink = await client.patch(f"{ROOT}/salesOrder/{so}", json={"item": lines(item, 2)})
    assert shrink.status_code == 400 and "already billed" in error_of(shrink)["detail"]
    assert (await action(client, {"action": "close_order", "salesOrder": so})).status_code == 200
    frozen = await client.patch(f"{ROOT}/salesOrder/{so}", json={"memo": "third"})
    assert frozen.status_code == 400 and "closed" in error_of(frozen)["detail"]
    closed_bill = await client.post(f"{ROOT}/invoice", json={"entity": {"id": cid}, "createdFrom": {"id": so},
                                                             "item": lines(item, 1)})
    assert closed_bill.status_code == 400


async def test_approval_flow_when_the_preference_is_on(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    await action(client, {"action": "set_preferences", "approvalRequired": True})
    so = await make_order(client, cid, item)
    assert (await get(client, "salesOrder", so))["status"] == "Pending Approval"
    early = await client.post(f"{ROOT}/invoice", json={"entity": {"id": cid}, "createdFrom": {"id": so}})
    assert early.status_code == 400 and "pending approval" in error_of(early)["detail"]
    approved = await action(client, {"action": "approve_order", "salesOrder": so})
    assert approved.json()["salesOrder"]["status"] == "Pending Fulfillment"
    assert (await action(client, {"action": "approve_order", "salesOrder": so})).status_code == 400
    await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})


async def test_deletes_are_refused_while_dependents_exist(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    cid = await make_customer(client)
    so = await make_order(client, cid, item)
    for rtype, rid in (("customer", cid), ("item", item)):
        response = await client.delete(f"{ROOT}/{rtype}/{rid}")
        assert response.status_code == 400 and "dependent records" in error_of(response)["detail"]
    inv = await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    assert (await client.delete(f"{ROOT}/salesOrder/{so}")).status_code == 400
    assert (await client.delete(f"{ROOT}/invoice/{inv}")).status_code == 204
    assert (await get(client, "salesOrder", so))["status"] == "Pending Fulfillment"
    assert (await client.delete(f"{ROOT}/salesOrder/{so}")).status_code == 204
    assert (await client.delete(f"{ROOT}/customer/{cid}")).status_code == 204
    assert (await client.delete(f"{ROOT}/item/{item}")).status_code == 204


async def test_void_invoice_frees_the_order_and_item_ids_are_unique(client: httpx.AsyncClient) -> None:
    item = await make_item(client)
    dup = await client.post(f"{ROOT}/item", json={"itemId": "seat"})
    assert dup.status_code == 400 and error_of(dup)["o:errorPath"] == "itemId"
    cid = await make_customer(client)
    so = await make_order(client, cid, item)
    inv = await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    voided = await action(client, {"action": "void_invoice", "invoice": inv})
    assert voided.status_code == 200 and voided.json()["invoice"]["status"] == "Voided"
    assert (await get(client, "salesOrder", so))["amountBilled"] == 0
    await create(client, "invoice", {"entity": {"id": cid}, "createdFrom": {"id": so}})
    memo = await client.post(f"{ROOT}/creditMemo", json={"createdFrom": {"id": inv}})
    assert memo.status_code == 400 and "voided" in error_of(memo)["detail"]


async def test_user_actions_report_bad_input_as_400(client: httpx.AsyncClient) -> None:
    await make_customer(client)
    for body in ({"action": "dance"}, {"action": "place_credit_hold"}, {"action": "place_credit_hold",
                                                                        "customer": "eid:none"},
                 {"action": "record_payment", "invoice": "1", "amount": "ten"}):
        response = await client.post(f"/_sandbox/tenants/{TOKEN_A}/actions", json=body, headers=ADMIN)
        assert response.status_code == 400, (body, response.text)
    edit = await action(client, {"action": "edit_record", "recordType": "customer", "id": "eid:none",
                                 "fields": {}})
    assert edit.status_code == 400


async def test_edit_record_action_goes_through_the_same_rules(client: httpx.AsyncClient) -> None:
    cid = await make_customer(client)
    ok = await action(client, {"action": "edit_record", "recordType": "customer", "id": cid,
                               "fields": {"creditLimit": 50}})
    assert ok.status_code == 200 and ok.json()["changes"]["creditLimit"] == {"old": None, "new": 50}
    bad = await action(client, {"action": "edit_record", "recordType": "customer", "id": cid,
                                "fields": {"taxRegistration": {"country": "DE", "number": "123"}}})
    assert bad.status_code == 400 and "INVALID_VALUE" in bad.json()["error"]["message"]
