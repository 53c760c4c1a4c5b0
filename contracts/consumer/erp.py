"""What the core needs from the ERP (NetSuite REST record service): every call `core.connectors.ErpClient`
makes, per API version. Records are addressed by external id (`eid:<externalId>`), so the provider states
seed records with those external ids through the mock's control API.

Bodies hold only the fields the connector's mapping reads; select fields (status, creditHoldOverride) are
regexes over the values the pinned version spells (strings on 2024.2, `{id, refName}` on 2025.1).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pact import Pact, match

from contracts.consumer.harness import Case
from contracts.pactkit import TOKENS, from_state
from core.connectors import ErpClient, NotFoundError, RetryPolicy, eid
from core.connectors.mapping.erp import CustomerInput, LineInput

__all__ = ["CASES", "make_client"]

RECORD = "/services/rest/record/v1"
# NetSuite's media types: a record, and an error.
SINGULAR = "application/vnd.oracle.resource+json; type=singular-resource"
ERROR = "application/vnd.oracle.resource+json; type=error"
V2024 = "2024.2"
AUTH = match.regex(f"Bearer {TOKENS['erp']}", regex=r"^Bearer \S+$")
ISO_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
ORDER_STATUSES = ("Pending Approval", "Pending Fulfillment", "Billed", "Closed", "Cancelled")
ORDER_STATUS_IDS = {"Pending Approval": "A", "Pending Fulfillment": "B", "Cancelled": "C", "Billed": "G", "Closed": "H"}
INVOICE_STATUS_IDS = {"Open": "A", "Paid In Full": "B", "Voided": "V"}

CUSTOMER_EID = "CUST-0001"
ORDER_EID = "opp-0001"
INVOICE_EID = "in_0001"


def make_client(url: str, version: str) -> ErpClient:
    # One attempt: a contract mismatch must fail at once, not after the connector's backoff.
    return ErpClient(base_url=url, token=TOKENS["erp"], api_version=version, retry=RetryPolicy(max_attempts=1))


def _select(version: str, value: str, ids: dict[str, str]) -> Any:
    """A select field as the version spells it, matched against the values the mapping knows."""
    if version == V2024:
        return match.regex(value, regex="^(" + "|".join(ids) + ")$")
    return {"id": match.regex(ids[value], regex="^(" + "|".join(ids.values()) + ")$")}


def _ref(example: str) -> dict[str, Any]:
    return {"id": match.regex(example, regex=r"^\d+$")}


def _time() -> Any:
    return match.regex("2026-01-01T00:00:00Z", regex=ISO_TIME)


def _day(example: str = "2026-01-01") -> Any:
    return match.regex(example, regex=ISO_DATE)


def customer_body(version: str, hold: str = "AUTO") -> dict[str, Any]:
    return {
        "id": match.regex("101", regex=r"^\d+$"),
        "externalId": match.str(CUSTOMER_EID),
        "companyName": match.str("Acme Corp"),
        "subsidiary": _ref("1"),
        "currency": {"refName": match.regex("USD", regex=r"^[A-Z]{3}$")},
        "creditHoldOverride": _select(version, hold, {"AUTO": "AUTO", "ON": "ON", "OFF": "OFF"}),
        "isOnCreditHold": match.bool(False),
        "balance": match.number(0),
        "isInactive": match.bool(False),
        "dateCreated": _time(),
        "lastModifiedDate": _time(),
    }


def _lines() -> dict[str, Any]:
    return {"items": match.each_like({
        "line": match.int(1),
        "item": {"id": match.regex("12", regex=r"^\d+$"), "refName": match.str("SEAT")},
        "quantity": match.number(2),
        "rate": match.number(600),
        "amount": match.number(1200),
    })}


def sales_order_body(version: str) -> dict[str, Any]:
    return {
        "id": match.regex("1001", regex=r"^\d+$"),
        "tranId": match.str("SO00001"),
        "externalId": match.str(ORDER_EID),
        "entity": _ref("101"),
        "status": _select(version, "Pending Fulfillment", ORDER_STATUS_IDS),
        "currency": {"refName": match.regex("USD", regex=r"^[A-Z]{3}$")},
        "tranDate": _day(),
        "total": match.number(1200),
        "revision": match.int(1),
        "item": _lines(),
        "createdDate": _time(),
        "lastModifiedDate": _time(),
    }


def invoice_body(version: str) -> dict[str, Any]:
    return {
        "id": match.regex("1002", regex=r"^\d+$"),
        "tranId": match.str("INV00001"),
        "externalId": match.str(INVOICE_EID),
        "entity": _ref("101"),
        "createdFrom": _ref("1001"),
        "status": _select(version, "Open", INVOICE_STATUS_IDS),
        "currency": {"refName": match.regex("USD", regex=r"^[A-Z]{3}$")},
        "tranDate": _day(),
        "dueDate": _day("2026-01-31"),
        "total": match.number(1200),
        "amountPaid": match.number(0),
        "amountRemaining": match.number(1200),
        "item": _lines(),
        "createdDate": _time(),
        "lastModifiedDate": _time(),
    }


# ---- provider states (implemented by contracts.provider.states via the mock's seed API) -----------------

def _customer_state(hold: str = "AUTO") -> tuple[str, dict[str, Any]]:
    return "an ERP customer exists", {"externalId": CUSTOMER_EID, "companyName": "Acme Corp", "creditHold": hold}


def _order_state() -> tuple[str, dict[str, Any]]:
    return "an ERP sales order exists", {"customer": CUSTOMER_EID, "externalId": ORDER_EID, "item": "ITEM-SEAT",
                                        "quantity": 2}


def _invoice_state() -> tuple[str, dict[str, Any]]:
    return "an ERP invoice exists", {"customer": CUSTOMER_EID, "salesOrder": ORDER_EID, "externalId": INVOICE_EID,
                                     "item": "ITEM-SEAT", "quantity": 2}


def _get(pact: Pact, desc: str, state: tuple[str, dict[str, Any]], path: Any, body: dict[str, Any],
         expand: bool = False) -> None:
    interaction = pact.upon_receiving(desc).given(*state).with_request("GET", path).with_header("Authorization", AUTH)
    if expand:
        interaction.with_query_parameter("expandSubResources", "true")
    interaction.will_respond_with(200).with_body(body, content_type=SINGULAR)


def _write(pact: Pact, desc: str, state: tuple[str, dict[str, Any]], method: str, path: Any,
           body: dict[str, Any], status: int = 204) -> None:
    (pact.upon_receiving(desc).given(*state).with_request(method, path).with_header("Authorization", AUTH)
     .with_body(body, content_type="application/json").will_respond_with(status))


CUSTOMER_PATH = f"{RECORD}/customer/eid:{CUSTOMER_EID}"
ORDER_PATH = f"{RECORD}/salesOrder/eid:{ORDER_EID}"
INVOICE_PATH = f"{RECORD}/invoice/eid:{INVOICE_EID}"


# ---- cases -----------------------------------------------------------------------------------------------

def declare_get_customer(pact: Pact, version: str) -> None:
    _get(pact, "a request for a customer by external id", _customer_state(), CUSTOMER_PATH, customer_body(version))


async def drive_get_customer(client: ErpClient, version: str) -> None:
    customer = await client.get_customer(eid(CUSTOMER_EID))
    assert customer.external_id == CUSTOMER_EID and customer.currency == "USD"
    assert customer.credit_hold_override == "AUTO" and customer.subsidiary_id == "1"


def declare_upsert_customer(pact: Pact, version: str) -> None:
    _write(pact, "an upsert of a customer by external id", _customer_state(), "PUT", CUSTOMER_PATH,
           {"companyName": match.str("Acme Corp"), "email": match.regex("ap@acme.example", regex=r"^\S+@\S+$"),
            "subsidiary": {"id": match.regex("1", regex=r"^\d+$")}})
    _get(pact, "a request for a customer by external id", _customer_state(), CUSTOMER_PATH, customer_body(version))


async def drive_upsert_customer(client: ErpClient, version: str) -> None:
    customer = await client.upsert_customer(CUSTOMER_EID, CustomerInput(company_name="Acme Corp",
                                                                        email="ap@acme.example", subsidiary_id="1"))
    assert customer.external_id == CUSTOMER_EID


def declare_update_customer(pact: Pact, version: str) -> None:
    _write(pact, "an update of a customer's email", _customer_state(), "PATCH", CUSTOMER_PATH,
           {"email": match.regex("billing@acme.example", regex=r"^\S+@\S+$")})
    _get(pact, "a request for a customer by external id", _customer_state(), CUSTOMER_PATH, customer_body(version))


async def drive_update_customer(client: ErpClient, version: str) -> None:
    customer = await client.update_customer(eid(CUSTOMER_EID), CustomerInput(email="billing@acme.example"))
    assert customer.company_name == "Acme Corp"


def declare_credit_hold(pact: Pact, version: str) -> None:
    _get(pact, "a request for a customer by external id", _customer_state(), CUSTOMER_PATH, customer_body(version))
    hold = "ON" if version == V2024 else {"id": "ON"}
    by_id = from_state(f"{RECORD}/customer/101", RECORD + "/customer/${customerId}", RECORD + r"/customer/\d+$")
    _write(pact, "a credit hold placed on a customer", _customer_state(), "PATCH", by_id, {"creditHoldOverride": hold})
    _get(pact, "a request for a customer by internal id", _customer_state(), by_id, customer_body(version))


async def drive_credit_hold(client: ErpClient, version: str) -> None:
    # The contract's customer answers AUTO both times; what matters is the PATCH the connector sends.
    customer = await client.set_credit_hold(eid(CUSTOMER_EID), True)
    assert customer.id == "101"


def declare_get_sales_order(pact: Pact, version: str) -> None:
    _get(pact, "a request for a sales order with its lines", _order_state(), ORDER_PATH, sales_order_body(version),
         expand=True)


async def drive_get_sales_order(client: ErpClient, version: str) -> None:
    order = await client.get_sales_order(eid(ORDER_EID))
    assert order.external_id == ORDER_EID and order.lines and order.lines[0].quantity == Decimal(2)


def declare_create_sales_order(pact: Pact, version: str) -> None:
    _write(pact, "a new sales order keyed by external id", _customer_state(), "POST", f"{RECORD}/salesOrder",
           {"entity": {"externalId": match.str(CUSTOMER_EID)}, "externalId": match.str(ORDER_EID),
            "item": {"items": match.each_like({"item": {"externalId": match.str("ITEM-SEAT")},
                                               "quantity": match.int(2)})},
            "tranDate": _day()})
    # After the create, the connector reads the order back (the state seeds it for that read).
    _get(pact, "a request for a sales order with its lines", _order_state(), ORDER_PATH, sales_order_body(version),
         expand=True)


async def drive_create_sales_order(client: ErpClient, version: str) -> None:
    order = await client.create_sales_order(idempotency_key=ORDER_EID, customer=eid(CUSTOMER_EID),
                                            lines=[LineInput(item_external_id="ITEM-SEAT", quantity=2)],
                                            tran_date=date(2026, 1, 1))
    assert order.external_id == ORDER_EID


def declare_amend_sales_order(pact: Pact, version: str) -> None:
    _write(pact, "an amendment of a sales order's lines", _order_state(), "PATCH", ORDER_PATH,
           {"item": {"items": match.each_like({"item": {"externalId": match.str("ITEM-SEAT")},
                                               "quantity": match.int(3)})}})
    _get(pact, "a request for a sales order with its lines", _order_state(), ORDER_PATH, sales_order_body(version),
         expand=True)


async def drive_amend_sales_order(client: ErpClient, version: str) -> None:
    order = await client.amend_sales_order(eid(ORDER_EID), lines=[LineInput(item_external_id="ITEM-SEAT",
                                                                            quantity=3)])
    assert order.revision >= 1


def declare_get_invoice(pact: Pact, version: str) -> None:
    _get(pact, "a request for an invoice with its lines", _invoice_state(), INVOICE_PATH, invoice_body(version),
         expand=True)


async def drive_get_invoice(client: ErpClient, version: str) -> None:
    invoice = await client.get_invoice(eid(INVOICE_EID))
    assert invoice.status == "open" and invoice.amount_remaining == Decimal(1200)


def declare_missing_invoice(pact: Pact, version: str) -> None:
    (pact.upon_receiving("a request for an invoice that does not exist")
     .given("no ERP invoice exists", {"externalId": "in_missing"})
     .with_request("GET", f"{RECORD}/invoice/eid:in_missing").with_header("Authorization", AUTH)
     .with_query_parameter("expandSubResources", "true")
     .will_respond_with(404)
     .with_body({"o:errorDetails": match.each_like({"o:errorCode": match.str("NONEXISTENT_ID"),
                                                     "detail": match.str("Record not found")})},
                content_type=ERROR))


async def drive_missing_invoice(client: ErpClient, version: str) -> None:
    try:
        await client.get_invoice(eid("in_missing"))
    except NotFoundError:
        return
    raise AssertionError("a missing invoice must be NotFoundError")


def declare_upsert_invoice(pact: Pact, version: str) -> None:
    _get(pact, "a request for an invoice with its lines", _invoice_state(), INVOICE_PATH, invoice_body(version),
         expand=True)
    _write(pact, "an update of an invoice's due date", _invoice_state(), "PUT", INVOICE_PATH,
           {"dueDate": _day("2026-02-15")})


async def drive_upsert_invoice(client: ErpClient, version: str) -> None:
    invoice = await client.upsert_invoice(INVOICE_EID, customer=eid(CUSTOMER_EID), sales_order=eid(ORDER_EID),
                                          due_date=date(2026, 2, 15))
    assert invoice.external_id == INVOICE_EID


CASES = [
    Case("get_customer", declare_get_customer, drive_get_customer),
    Case("upsert_customer", declare_upsert_customer, drive_upsert_customer),
    Case("update_customer", declare_update_customer, drive_update_customer),
    Case("set_credit_hold", declare_credit_hold, drive_credit_hold),
    Case("get_sales_order", declare_get_sales_order, drive_get_sales_order),
    Case("create_sales_order", declare_create_sales_order, drive_create_sales_order),
    Case("amend_sales_order", declare_amend_sales_order, drive_amend_sales_order),
    Case("get_invoice", declare_get_invoice, drive_get_invoice),
    Case("get_invoice_missing", declare_missing_invoice, drive_missing_invoice),
    Case("upsert_invoice", declare_upsert_invoice, drive_upsert_invoice),
]
