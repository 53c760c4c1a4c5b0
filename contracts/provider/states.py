"""Provider states, implemented the way a tester would set a vendor sandbox up: through the mock's control
API (`/_sandbox/...`: reset, API version, seed, user actions), over HTTP, never by reaching into its state.

Each handler returns the values the pact's provider-state expressions need (`${customerId}` ...): the ids
the mock generated for what was seeded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from contracts.pactkit import TOKENS

__all__ = ["HANDLERS", "StateError", "setup"]

Json = dict[str, Any]
Handler = Callable[[httpx.Client, Json], Json]


class StateError(RuntimeError):
    pass


def _ok(response: httpx.Response, what: str) -> Json:
    if response.status_code >= 400:
        raise StateError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json()


def _tenant(system: str) -> str:
    return f"/_sandbox/tenants/{TOKENS[system]}"


def _seed(client: httpx.Client, system: str, body: Json) -> Json:
    return _ok(client.post(f"{_tenant(system)}/seed", json=body), f"seeding {system}")


# ---- ERP -------------------------------------------------------------------------------------------------

def _erp_customer(p: Json) -> Json:
    return {"companyName": p.get("companyName", "Acme Corp"), "externalId": p["externalId"] if "externalId" in p
            else p["customer"], "subsidiary": {"id": "1"}}


def _erp_order(p: Json) -> Json:
    return {"entity": {"externalId": p["customer"]}, "externalId": p.get("salesOrder", p.get("externalId")),
            "tranDate": "2026-01-01",
            "item": {"items": [{"item": {"externalId": p.get("item", "ITEM-SEAT")}, "quantity": p.get("quantity", 1)}]}}


def erp_customer(client: httpx.Client, p: Json) -> Json:
    out = _seed(client, "erp", {"customers": 0, "records": {"customer": [_erp_customer(p)]}})
    customer_id = out["created"]["customer"][0]
    if p.get("creditHold") not in (None, "AUTO"):
        _ok(client.post(f"{_tenant('erp')}/actions", json={"action": "place_credit_hold",
                                                            "customer": customer_id}), "credit hold")
    return {"customerId": customer_id}


def erp_sales_order(client: httpx.Client, p: Json) -> Json:
    out = _seed(client, "erp", {"customers": 0, "records": {"customer": [_erp_customer({"externalId": p["customer"]})],
                                                            "salesOrder": [_erp_order(p)]}})
    return {"customerId": out["created"]["customer"][0], "salesOrderId": out["created"]["salesOrder"][0]}


def erp_invoice(client: httpx.Client, p: Json) -> Json:
    out = _seed(client, "erp", {"customers": 0, "records": {
        "customer": [_erp_customer({"externalId": p["customer"]})],
        "salesOrder": [_erp_order({**p, "externalId": p["salesOrder"]})],
        "invoice": [{"entity": {"externalId": p["customer"]}, "createdFrom": {"externalId": p["salesOrder"]},
                     "externalId": p["externalId"], "tranDate": "2026-01-01", "dueDate": "2026-01-31"}]}})
    return {"customerId": out["created"]["customer"][0], "invoiceId": out["created"]["invoice"][0]}


def erp_nothing(client: httpx.Client, p: Json) -> Json:
    _seed(client, "erp", {"customers": 0})
    return {}


# ---- CS --------------------------------------------------------------------------------------------------

def _cs_company(client: httpx.Client, p: Json, plan: str | None = None) -> str:
    record = {"Name": p.get("name", "Acme Corp"), "ExternalId": p["externalId"], "ARR": 120000, "MRR": 10000,
              "RenewalDate": "2026-12-31", "CSM": "csm.alex@example.com", "Stage": "Onboarding",
              "measures": dict.fromkeys(("Product Adoption", "Support", "Engagement", "NPS", "Relationship"), 80),
              "plan": plan}
    out = _seed(client, "cs", {"companies": 0, "records": [record]})
    return out["records"][0]["Gsid"]


def cs_company(client: httpx.Client, p: Json) -> Json:
    return {"companyId": _cs_company(client, p)}


def cs_company_with_cta(client: httpx.Client, p: Json) -> Json:
    company_id = _cs_company(client, p)
    # Opening a CTA is something a CSM does through the API (no sandbox action needed).
    answer = _ok(client.post("/v2/cockpit/cta", headers={"accesskey": TOKENS["cs"]}, json={"requests": [{
        "Name": "Payment risk", "CompanyId": company_id, "TypeName": "Risk", "PriorityName": "High",
        "DueDate": "2026-01-08", "Comments": f"overdue {p.get('marker', '[lockstep:risk-1]')}"}]}), "opening a CTA")
    return {"companyId": company_id, "ctaId": answer["data"]["records"][0]["Gsid"]}


def cs_company_with_plan(client: httpx.Client, p: Json) -> Json:
    return {"companyId": _cs_company(client, p, plan=p.get("template", "Standard Onboarding"))}


# ---- CRM -------------------------------------------------------------------------------------------------

def _crm_account(p: Json) -> Json:
    return {"@ref": "account", "Name": p.get("name", "Acme Corp"),
            "External_Id__c": p.get("externalId", p.get("account")),
            "Industry": "Technology", "Website": "https://acme.example", "BillingCountry": "United States",
            "Health_Score__c": 80, "Renewal_Date__c": "2026-12-31", "AR_Balance__c": 1200.5}


def crm_account(client: httpx.Client, p: Json) -> Json:
    out = _seed(client, "crm", {"demo": False, "records": {"Account": [_crm_account(p)]}})
    return {"accountId": out["created"]["Account"][0]}


def crm_opportunity(client: httpx.Client, p: Json) -> Json:
    out = _seed(client, "crm", {"demo": False, "records": {
        "Account": [_crm_account(p)],
        "Opportunity": [{"AccountId": "@account", "Name": "Acme Corp - New Business", "StageName": p["stage"],
                         "Amount": 120000, "CloseDate": "2026-03-31", "Probability": 50}]}})
    return {"accountId": out["created"]["Account"][0], "opportunityId": out["created"]["Opportunity"][0]}


def crm_nothing(client: httpx.Client, p: Json) -> Json:
    _seed(client, "crm", {"demo": False})
    return {}


# ---- billing ---------------------------------------------------------------------------------------------

def _stripe_get(client: httpx.Client, path: str) -> Json:
    return _ok(client.get(path, headers={"Authorization": f"Bearer {TOKENS['billing']}"}), f"GET {path}")


def billing_catalog(client: httpx.Client, p: Json) -> Json:
    out = _seed(client, "billing", {"customers": 0})
    return {"priceId": out["prices"][p.get("lookupKey", "growth_monthly")]}


def billing_customer(client: httpx.Client, p: Json) -> Json:
    out = _seed(client, "billing", {"customers": 1, "subscriptions": False})
    customer_id = out["customers"][0]
    customer = _stripe_get(client, f"/v1/customers/{customer_id}")
    return {"customerId": customer_id, "paymentMethodId": customer["invoice_settings"]["default_payment_method"],
            "priceId": out["prices"]["growth_monthly"]}


def billing_subscription(client: httpx.Client, p: Json) -> Json:
    out = _seed(client, "billing", {"customers": 1, "subscriptions": True})
    sub = _stripe_get(client, f"/v1/subscriptions/{out['subscriptions'][0]}")
    item = sub["items"]["data"][0]
    return {"customerId": out["customers"][0], "subscriptionId": sub["id"], "itemId": item["id"],
            "priceId": item["price"]["id"], "invoiceId": sub["latest_invoice"]}


HANDLERS: dict[str, dict[str, Handler]] = {
    "billing": {
        "billing has a price catalog": billing_catalog,
        "a billing customer with a default card exists": billing_customer,
        "a billing customer with an active subscription exists": billing_subscription,
    },
    "crm": {
        "a CRM account exists": crm_account,
        "a CRM opportunity in negotiation exists": crm_opportunity,
        "no CRM account exists": crm_nothing,
    },
    "cs": {
        "a CS company exists": cs_company,
        "a CS company with an open CTA exists": cs_company_with_cta,
        "a CS company with an active onboarding plan exists": cs_company_with_plan,
    },
    "erp": {
        "an ERP customer exists": erp_customer,
        "an ERP sales order exists": erp_sales_order,
        "an ERP invoice exists": erp_invoice,
        "no ERP invoice exists": erp_nothing,
    },
}


def setup(client: httpx.Client, system: str, version: str, state: str, params: Json | None) -> Json:
    """A clean tenant on `version`, then the state. Unknown states are errors, not silent passes."""
    handler = HANDLERS.get(system, {}).get(state)
    if handler is None:
        raise StateError(f"{system}: no provider state {state!r}; known: {sorted(HANDLERS.get(system, {}))}")
    tenant = _tenant(system)
    # The tenant appears on first use; make sure it exists before configuring it.
    existing = _ok(client.get("/_sandbox/tenants"), "listing tenants")
    if not any(t["key"] == TOKENS[system] for t in existing):
        _ok(client.post("/_sandbox/tenants", json={"key": TOKENS[system], "api_version": version}), "tenant")
    _ok(client.post(f"{tenant}/reset"), "reset")
    _ok(client.put(f"{tenant}/version", json={"api_version": version}), "version")
    return handler(client, params or {})
