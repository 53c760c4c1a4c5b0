"""Responses on `Stripe-Version: 2023-08-16` validate against Stripe's published spec (fidelity/).

Stripe marks some `anyOf` / `enum` fields `nullable: true`, which a plain OAS 3.0 validator rejects when the
value is null; as fidelity/README.md says, we accept null there (and only there).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30ReadValidator

SPEC_PATH = Path("/work/shared/fidelity/stripe-openapi-subset.json")
V2023 = "2023-08-16"
MONTH = 31 * 86400

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="fidelity spec not available")


def _accept_nullable(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _accept_nullable(v) for k, v in node.items()}
        if out.get("nullable") is True:
            if "anyOf" in out:
                out["anyOf"] = [*out["anyOf"], {"enum": [None]}]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_accept_nullable(v) for v in node]
    return node


@cache
def spec() -> dict[str, Any]:
    return _accept_nullable(json.loads(SPEC_PATH.read_text()))


def check(method: str, template: str, resp: httpx.Response) -> None:
    """Validates `resp` against the operation's documented response (errors: `default`)."""
    op = spec()["paths"][template][method.lower()]
    status = str(resp.status_code)
    documented = op["responses"].get(status) or op["responses"]["default"]
    schema = copy.copy(documented["content"]["application/json"]["schema"])
    root = {**schema, "components": spec()["components"]}
    errors = sorted(OAS30ReadValidator(root).iter_errors(resp.json()), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {template} ({status}): " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:40])


async def test_responses_match_stripes_published_spec(client: httpx.AsyncClient) -> None:
    client.headers["Stripe-Version"] = V2023
    r = await client.post("/v1/test_helpers/test_clocks", data={"frozen_time": "1767225600", "name": "t"})
    check("POST", "/v1/test_helpers/test_clocks", r)
    clock = r.json()
    r = await client.post("/v1/customers", data={"email": "a@b.co", "name": "Ada", "test_clock": clock["id"],
                                                 "metadata[k]": "v"})
    check("POST", "/v1/customers", r)
    cus = r.json()
    check("GET", "/v1/customers/{customer}", await client.get(f"/v1/customers/{cus['id']}"))
    check("POST", "/v1/customers/{customer}", await client.post(f"/v1/customers/{cus['id']}", data={"name": "A"}))
    check("GET", "/v1/customers", await client.get("/v1/customers"))
    r = await client.post("/v1/payment_methods/pm_card_visa/attach", data={"customer": cus["id"]})
    check("POST", "/v1/payment_methods/{payment_method}/attach", r)
    pm = r.json()
    check("GET", "/v1/payment_methods/{payment_method}", await client.get(f"/v1/payment_methods/{pm['id']}"))
    await client.post(f"/v1/customers/{cus['id']}", data={"invoice_settings[default_payment_method]": pm["id"]})
    r = await client.post("/v1/products", data={"name": "Starter"})
    check("POST", "/v1/products", r)
    prod = r.json()
    check("GET", "/v1/products/{id}", await client.get(f"/v1/products/{prod['id']}"))
    check("GET", "/v1/products", await client.get("/v1/products"))
    r = await client.post("/v1/prices", data={"product": prod["id"], "currency": "usd", "unit_amount": "1000",
                                              "recurring[interval]": "month"})
    check("POST", "/v1/prices", r)
    price = r.json()
    check("GET", "/v1/prices/{price}", await client.get(f"/v1/prices/{price['id']}"))
    check("GET", "/v1/prices", await client.get("/v1/prices"))
    r = await client.post("/v1/subscriptions", data={"customer": cus["id"], "items[0][price]": price["id"]})
    check("POST", "/v1/subscriptions", r)
    sub = r.json()
    r = await client.post(f"/v1/test_helpers/test_clocks/{clock['id']}/advance",
                          data={"frozen_time": str(clock["frozen_time"] + MONTH + 7200)})
    check("POST", "/v1/test_helpers/test_clocks/{test_clock}/advance", r)
    r = await client.get(f"/v1/test_helpers/test_clocks/{clock['id']}")
    check("GET", "/v1/test_helpers/test_clocks/{test_clock}", r)
    assert r.json()["status"] == "ready"
    check("GET", "/v1/subscriptions/{subscription_exposed_id}", await client.get(f"/v1/subscriptions/{sub['id']}"))
    check("GET", "/v1/subscriptions", await client.get("/v1/subscriptions", params={"status": "all"}))
    r = await client.get("/v1/invoices", params={"customer": cus["id"]})
    check("GET", "/v1/invoices", r)
    invoices = r.json()["data"]
    assert len(invoices) >= 2 and invoices[0]["status"] == "paid"
    inv = invoices[0]
    check("GET", "/v1/invoices/{invoice}", await client.get(f"/v1/invoices/{inv['id']}"))
    check("GET", "/v1/invoices/{invoice}/lines", await client.get(f"/v1/invoices/{inv['id']}/lines"))
    check("GET", "/v1/payment_intents/{intent}", await client.get(f"/v1/payment_intents/{inv['payment_intent']}"))
    r = await client.post("/v1/invoiceitems", data={"customer": cus["id"], "amount": "250", "currency": "usd"})
    check("POST", "/v1/invoiceitems", r)
    r = await client.post("/v1/invoices", data={"customer": cus["id"]})
    check("POST", "/v1/invoices", r)
    draft = r.json()
    check("POST", "/v1/invoices/{invoice}/finalize", await client.post(f"/v1/invoices/{draft['id']}/finalize"))
    check("POST", "/v1/invoices/{invoice}/void", await client.post(f"/v1/invoices/{draft['id']}/void"))
    r = await client.post("/v1/webhook_endpoints", data={"url": "https://example.com/h", "enabled_events[0]": "*"})
    check("POST", "/v1/webhook_endpoints", r)
    check("GET", "/v1/webhook_endpoints", await client.get("/v1/webhook_endpoints"))
    check("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}",
          await client.delete(f"/v1/webhook_endpoints/{r.json()['id']}"))
    r = await client.get("/v1/events", params={"limit": "100"})
    check("GET", "/v1/events", r)
    assert len(r.json()["data"]) > 10
    check("GET", "/v1/events/{id}", await client.get(f"/v1/events/{r.json()['data'][0]['id']}"))
    check("DELETE", "/v1/subscriptions/{subscription_exposed_id}",
          await client.delete(f"/v1/subscriptions/{sub['id']}"))
    check("DELETE", "/v1/products/{id}", await client.delete(f"/v1/products/{prod['id']}"))
    check("DELETE", "/v1/customers/{customer}", await client.delete(f"/v1/customers/{cus['id']}"))
    check("DELETE", "/v1/test_helpers/test_clocks/{test_clock}",
          await client.delete(f"/v1/test_helpers/test_clocks/{clock['id']}"))
    # Errors validate against `default`.
    check("GET", "/v1/customers/{customer}", await client.get("/v1/customers/cus_nope"))
    check("POST", "/v1/customers", await client.post("/v1/customers", data={"bogus": "1"}))


async def test_the_validator_can_fail(client: httpx.AsyncClient) -> None:
    """Guards the guard: a wrong shape must not validate."""
    r = await client.post("/v1/customers", data={"email": "a@b.co"})
    bad = httpx.Response(200, json={**r.json(), "created": "yesterday"})
    with pytest.raises(AssertionError):
        check("GET", "/v1/customers/{customer}", bad)
