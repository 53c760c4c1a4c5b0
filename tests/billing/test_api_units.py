"""Unit tests of billing's HTTP-layer pieces: form decoding, lists/expand, idempotency, versions."""

from __future__ import annotations

import pytest

from mocks.billing import forms, lists
from mocks.billing.errors import BillingError
from mocks.billing.forms import Arr, Bool, Enum, Int, Metadata, Obj, Range, Str
from mocks.billing.idempotency import IdempotencyStore, fingerprint
from mocks.billing.versions import ENDIVE, V2023, billing_versions

# ---- forms -----------------------------------------------------------------------------------------------


def test_decode_nests_brackets_and_indexes() -> None:
    raw = b"email=a%40b.co&metadata[plan]=gold&items[0][price]=p1&items[1][price]=p2&items[1][quantity]=3"
    assert forms.decode(raw) == {
        "email": "a@b.co",
        "metadata": {"plan": "gold"},
        "items": [{"price": "p1"}, {"price": "p2", "quantity": "3"}],
    }


@pytest.mark.parametrize("raw", [b"expand[]=customer&expand[]=latest_invoice",
                                 b"expand[0]=customer&expand[1]=latest_invoice",
                                 b"expand[1]=latest_invoice&expand[0]=customer"])
def test_expand_forms(raw: bytes) -> None:
    assert forms.decode(raw) == {"expand": ["customer", "latest_invoice"]}


def test_coerce_types() -> None:
    spec = {"n": Int(minimum=0), "b": Bool(), "e": Enum("x", "y"), "m": Metadata(), "o": Obj(s=Str()),
            "a": Arr(Int()), "c": Range()}
    out = forms.parse(b"n=12&b=true&e=y&m[k]=v&o[s]=hi&a[0]=1&a[1]=2&c[gte]=5", spec)
    assert out == {"n": 12, "b": True, "e": "y", "m": {"k": "v"}, "o": {"s": "hi"}, "a": [1, 2],
                   "c": {"gte": 5}}


@pytest.mark.parametrize(("raw", "param", "fragment"), [
    (b"foo=1", "foo", "Received unknown parameter: foo"),
    (b"o[zzz]=1", "o[zzz]", "Received unknown parameter: o[zzz]"),
    (b"n=abc", "n", "Invalid integer: abc"),
    (b"n=-1", "n", "greater than or equal to 0"),
    (b"b=yes", "b", "Invalid boolean: yes"),
    (b"e=z", "e", "must be one of"),
    (b"o=scalar", "o", "Invalid object"),
    (b"n[x]=1", "n", "Invalid integer"),
    (b'{"n": 1}', '{"n": 1}', "Received unknown parameter"),
])
def test_coerce_errors_name_the_param(raw: bytes, param: str, fragment: str) -> None:
    spec = {"n": Int(minimum=0), "b": Bool(), "e": Enum("x", "y"), "o": Obj(s=Str())}
    with pytest.raises(BillingError) as info:
        forms.parse(raw, spec)
    assert info.value.status == 400
    assert info.value.type == "invalid_request_error"
    assert info.value.param == param
    assert fragment in info.value.message


@pytest.mark.parametrize("raw", [b"a[b=1", b"a]=1", b"[x]=1", b"\xff\xfe=1", b"a=1&a[b]=2", b"a[b]=1&a=2",
                                 b"items[0]=x&items[0][y]=1"])
def test_malformed_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(BillingError) as info:
        forms.parse(raw, {"a": forms.Any_(), "items": forms.Any_()})
    assert info.value.status == 400


def test_required_and_empty_values() -> None:
    with pytest.raises(BillingError) as info:
        forms.parse(b"", {"customer": Str()}, required=("customer",))
    assert info.value.param == "customer" and info.value.code == "parameter_missing"
    # An empty string unsets: scalars become None, `metadata=` clears all.
    assert forms.parse(b"description=&metadata=", {"description": Str(), "metadata": Metadata()}) == {
        "description": None, "metadata": ""}


# ---- lists -----------------------------------------------------------------------------------------------


def _objs(n: int) -> list[dict]:
    return [{"id": f"cus_{i}", "object": "customer", "created": i} for i in range(n, 0, -1)]  # newest first


def test_paginate_forward_and_back() -> None:
    items = _objs(25)
    first = lists.paginate(items, url="/v1/customers")
    assert first["object"] == "list" and first["url"] == "/v1/customers"
    assert [o["id"] for o in first["data"]] == [f"cus_{i}" for i in range(25, 15, -1)]
    assert first["has_more"] is True
    page3 = lists.paginate(items, url="/v1/customers", limit=10, starting_after="cus_6")
    assert [o["id"] for o in page3["data"]] == [f"cus_{i}" for i in range(5, 0, -1)]
    assert page3["has_more"] is False
    back = lists.paginate(items, url="/v1/customers", limit=3, ending_before="cus_20")
    assert [o["id"] for o in back["data"]] == ["cus_23", "cus_22", "cus_21"]
    assert back["has_more"] is True
    with pytest.raises(BillingError):
        lists.paginate(items, url="/x", starting_after="cus_nope")
    with pytest.raises(BillingError):
        lists.paginate(items, url="/x", limit=101)


def test_expand_nested_and_in_lists() -> None:
    store = {"in_1": {"id": "in_1", "object": "invoice", "payment_intent": "pi_1"},
             "pi_1": {"id": "pi_1", "object": "payment_intent"},
             "cus_1": {"id": "cus_1", "object": "customer"}}
    sub = {"id": "sub_1", "object": "subscription", "customer": "cus_1", "latest_invoice": "in_1"}
    out = lists.expand(sub, ["latest_invoice.payment_intent", "customer"], lambda i: dict(store[i]))
    assert out["latest_invoice"]["payment_intent"] == {"id": "pi_1", "object": "payment_intent"}
    assert out["customer"]["object"] == "customer"
    assert sub["customer"] == "cus_1"  # the input is untouched
    page = lists.envelope([sub], "/v1/subscriptions", False)
    out = lists.expand(page, ["data.customer"], lambda i: dict(store[i]))
    assert out["data"][0]["customer"]["id"] == "cus_1"
    with pytest.raises(BillingError) as info:
        lists.expand(sub, ["id"], lambda i: None)
    assert "cannot be expanded" in info.value.message


# ---- idempotency -----------------------------------------------------------------------------------------


def test_idempotency_store_replays_detects_mismatch_and_expires() -> None:
    now = [1000.0]
    store = IdempotencyStore(lambda: now[0], max_keys=2)
    fp = fingerprint("POST", "/v1/customers", b"email=a&name=b")
    assert fp == fingerprint("POST", "/v1/customers", b"name=b&email=a")  # order-insensitive
    assert store.lookup("k1", fp) is None
    store.store("k1", fp, 200, b'{"id":"cus_1"}')
    assert store.lookup("k1", fp).body == b'{"id":"cus_1"}'
    with pytest.raises(BillingError) as info:
        store.lookup("k1", fingerprint("POST", "/v1/customers", b"email=other"))
    assert info.value.type == "idempotency_error" and info.value.status == 400
    dumped = store.dump()
    copy = IdempotencyStore(lambda: now[0])
    copy.load(dumped)
    assert copy.lookup("k1", fp).status == 200
    now[0] += 24 * 3600
    assert store.lookup("k1", fp) is None  # 24 h later the key is free again
    for key in ("a", "b", "c"):
        store.store(key, fp, 200, b"{}")
    assert len(store) == 2  # bounded: the oldest key went first


# ---- versions --------------------------------------------------------------------------------------------


def test_versions_render_periods_and_payments() -> None:
    reg = billing_versions()
    assert reg.default == V2023 and ENDIVE in reg
    sub = {"id": "sub_1", "object": "subscription", "current_period_start": 1, "current_period_end": 2,
           "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item",
                                                 "current_period_start": 1, "current_period_end": 2}]}}
    old = reg.render("subscription", sub, V2023)
    assert old["current_period_end"] == 2 and "current_period_end" not in old["items"]["data"][0]
    new = reg.render("subscription", sub, ENDIVE)
    assert "current_period_end" not in new and new["items"]["data"][0]["current_period_end"] == 2
    inv = {"id": "in_1", "object": "invoice", "payment_intent": "pi_1", "charge": "ch_1", "paid": True,
           "payments": {"object": "list", "data": []}}
    assert set(reg.render("invoice", inv, V2023)) == {"id", "object", "payment_intent", "charge", "paid"}
    assert set(reg.render("invoice", inv, ENDIVE)) == {"id", "object", "payments"}
    assert reg.operation_exists("GET", "/v1/invoices/upcoming", V2023)
    assert not reg.operation_exists("GET", "/v1/invoices/upcoming", ENDIVE)
    assert reg.operation_exists("POST", "/v1/invoices/create_preview", ENDIVE)
    assert not reg.operation_exists("POST", "/v1/invoices/create_preview", V2023)
