"""Signature checks per system, against the mocks' own signers (what the core receives in the sandbox)."""

from __future__ import annotations

import pytest

from core.intake.signatures import SIGNATURE_HEADERS, SignatureError, sign, verify
from mocks.billing.system import sign as billing_sign
from mocks.crm.events import sign as crm_sign
from mocks.cs.events import sign as cs_sign
from mocks.erp.events import sign as erp_sign

BODY = b'{"id":"evt_1","type":"invoice.paid"}'
NOW = 1_800_000_000
MOCK_SIGNERS = {"billing": billing_sign, "crm": crm_sign, "erp": erp_sign, "cs": cs_sign}


@pytest.mark.parametrize("system", sorted(MOCK_SIGNERS))
def test_each_mock_signature_verifies_under_its_own_header(system: str) -> None:
    headers = MOCK_SIGNERS[system](BODY, "s3cret", NOW)
    assert list(headers) == [SIGNATURE_HEADERS[system]]
    assert verify(system, headers, BODY, ["s3cret"], now=NOW + 10).timestamp == NOW
    assert sign(system, BODY, "s3cret", NOW) == headers  # and ours is byte-identical


@pytest.mark.parametrize("system", sorted(MOCK_SIGNERS))
def test_another_systems_header_is_not_accepted(system: str) -> None:
    other = next(s for s in MOCK_SIGNERS if SIGNATURE_HEADERS[s] != SIGNATURE_HEADERS[system])
    with pytest.raises(SignatureError) as err:
        verify(system, MOCK_SIGNERS[other](BODY, "s3cret", NOW), BODY, ["s3cret"], now=NOW)
    assert (err.value.reason, err.value.status) == ("missing", 400)


@pytest.mark.parametrize(
    ("case", "reason", "status"),
    [
        ("forged body", "mismatch", 401),
        ("wrong secret", "mismatch", 401),
        ("stale", "stale", 401),
        ("from the future", "stale", 401),
        ("unsigned", "missing", 400),
        ("empty header", "missing", 400),
        ("no v1", "malformed", 400),
        ("bad timestamp", "malformed", 400),
        ("garbage", "malformed", 400),
    ],
)
def test_refusals(case: str, reason: str, status: int) -> None:
    good = billing_sign(BODY, "s3cret", NOW)["Stripe-Signature"]
    headers, body, secret, now = {"Stripe-Signature": good}, BODY, "s3cret", NOW
    if case == "forged body":
        body = BODY.replace(b"paid", b"void")
    elif case == "wrong secret":
        secret = "other"
    elif case == "stale":
        now = NOW + 301
    elif case == "from the future":
        now = NOW - 301
    elif case == "unsigned":
        headers = {}
    elif case == "empty header":
        headers = {"Stripe-Signature": "  "}
    elif case == "no v1":
        headers = {"Stripe-Signature": f"t={NOW}"}
    elif case == "bad timestamp":
        headers = {"Stripe-Signature": good.replace(f"t={NOW}", "t=yesterday")}
    elif case == "garbage":
        headers = {"Stripe-Signature": "not a signature"}
    with pytest.raises(SignatureError) as err:
        verify("billing", headers, body, [secret], now=now)
    assert (err.value.reason, err.value.status) == (reason, status)


def test_tolerance_edge_rotation_and_extra_schemes() -> None:
    header = billing_sign(BODY, "new", NOW)["Stripe-Signature"]
    assert verify("billing", {"Stripe-Signature": header}, BODY, ["old", "new"], now=NOW + 300)
    # Stripe sends several v1 during its own rotation, and a v0 test scheme: one good v1 is enough.
    old = billing_sign(BODY, "old", NOW)["Stripe-Signature"].split("v1=")[1]
    mixed = f"{header},v1={old},v0=deadbeef"
    assert verify("billing", {"stripe-signature": mixed}, BODY, ["old"], now=NOW)
    with pytest.raises(SignatureError):
        verify("billing", {"Stripe-Signature": header}, BODY, [], now=NOW)
