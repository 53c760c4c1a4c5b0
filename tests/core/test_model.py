"""Canonical model validation: money, currencies, ids, refs, timestamps, versions, document consistency."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from core.model import (
    Account,
    CurrencyMismatchError,
    IdSource,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    Order,
    OrderLine,
    SourceRef,
    entity_of,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IDS = IdSource.seeded(3)


def usd(minor: int) -> Money:
    return Money(amount_minor=minor, currency="USD")


def account(**overrides: object) -> Account:
    data: dict[str, object] = {
        "id": IDS.new("account"),
        "name": "Acme GmbH",
        "country": "DE",
        "currency": "EUR",
        "created_at": T0,
        "updated_at": T0,
    }
    return Account.model_validate({**data, **overrides})


# -- money ---------------------------------------------------------------------------------------------


def test_money_arithmetic_within_one_currency() -> None:
    assert usd(1999) + usd(1) == usd(2000)
    assert usd(500) - usd(1500) == usd(-1000)
    assert -usd(5) == usd(-5)
    assert usd(250) * 4 == usd(1000)
    assert usd(1) < usd(2) and usd(2) >= usd(2)
    assert Money.total([usd(1), usd(2), usd(3)], "USD") == usd(6)
    assert Money.total([], "EUR") == Money.zero("EUR")


def test_money_refuses_to_mix_currencies() -> None:
    eur = Money(amount_minor=100, currency="EUR")
    with pytest.raises(CurrencyMismatchError, match="USD and EUR"):
        usd(100) + eur
    with pytest.raises(CurrencyMismatchError):
        usd(100).sub(eur)
    with pytest.raises(CurrencyMismatchError):
        _ = usd(100) < eur
    with pytest.raises(TypeError, match="integer"):
        usd(100) * 1.5  # type: ignore[operator]


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (100, "usd", "upper-case"),
        (100, "US", "three upper-case letters"),
        (100, "ABC", "not an ISO 4217 code"),
        (100, "XAU", "not an ISO 4217 code"),  # gold: a code, but not money we invoice in
        ("100", "USD", "valid integer"),
        (100.0, "USD", "valid integer"),
        (True, "USD", "valid integer"),
    ],
)
def test_money_rejects_bad_amounts_and_currencies(amount: object, currency: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Money(amount_minor=amount, currency=currency)  # type: ignore[arg-type]


def test_money_major_units_follow_each_currencys_exponent() -> None:
    assert Money.from_major("19.99", "USD") == usd(1999)
    assert Money.from_major(Decimal("1500"), "JPY").amount_minor == 1500
    assert Money.from_major("1.234", "KWD").amount_minor == 1234
    assert Money(amount_minor=1999, currency="USD").to_major() == Decimal("19.99")
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        Money.from_major("19.999", "USD")
    with pytest.raises(ValueError, match="more than 0 decimal places"):
        Money.from_major("1.5", "JPY")


# -- ids, timestamps, refs, versions ---------------------------------------------------------------------


def test_id_sources_mint_sortable_prefixed_ids() -> None:
    seeded = [IdSource.seeded(9).new("invoice") for _ in range(2)]
    assert seeded[0] == seeded[1]
    source = IdSource()
    minted = [source.new("account") for _ in range(500)]
    assert minted == sorted(minted) and len(set(minted)) == 500  # monotonic within a millisecond
    assert entity_of(minted[0]) == "account"
    with pytest.raises(ValueError, match="not a canonical id"):
        entity_of("001xx000003DGb2AAG")
    with pytest.raises(ValueError, match="unknown entity"):
        source.new("lead")


def test_ids_must_carry_their_entitys_prefix() -> None:
    with pytest.raises(ValidationError, match="not a canonical account id"):
        account(id=IDS.new("invoice"))
    with pytest.raises(ValidationError, match="not a canonical account id"):
        account(id="acc_123")


def test_timestamps_must_be_aware_and_are_normalized_to_utc() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        account(created_at=datetime(2026, 1, 1), updated_at=datetime(2026, 1, 1))
    berlin = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    acc = account(created_at=berlin, updated_at=berlin)
    assert acc.created_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC) and acc.created_at.tzinfo is UTC
    with pytest.raises(ValidationError, match="updated_at is before created_at"):
        account(updated_at=T0 - timedelta(seconds=1))


def test_records_are_strict_and_immutable() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        account(nmae="typo")
    with pytest.raises(ValidationError, match="status"):
        account(status="zombie")
    with pytest.raises(ValidationError, match="country"):
        account(country="Germany")
    with pytest.raises(ValidationError, match="billing_email"):
        account(billing_email="not-an-email")
    with pytest.raises(ValidationError, match="arr is in USD"):
        account(arr=usd(100))
    with pytest.raises(ValidationError, match="frozen"):
        account().name = "Other"  # type: ignore[misc]
    assert account(status="active").status == "active"


def test_source_refs_one_per_system_and_with_ref_bumps_the_version() -> None:
    crm = SourceRef(system="crm", native_id="001A", version_tag="2026-01-02T00:00:00Z", last_seen=T0)
    with pytest.raises(ValidationError, match="system"):
        SourceRef(system="sap", native_id="1", last_seen=T0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="native_id"):
        SourceRef(system="crm", native_id="", last_seen=T0)
    with pytest.raises(ValidationError, match="more than one source ref for system"):
        account(source_refs=[crm, crm])

    original = account()
    later = T0 + timedelta(hours=1)
    v2 = original.with_ref(crm.model_copy(update={"last_seen": later}))
    assert (v2.version, v2.updated_at, v2.ref_for("crm").native_id) == (2, later, "001A")  # type: ignore[union-attr]
    assert original.version == 1 and original.source_refs == []  # the old version is untouched
    assert v2.ref_for("billing") is None

    refreshed = v2.with_ref(SourceRef(system="crm", native_id="001A", version_tag="etag-2", last_seen=later))
    assert refreshed.version == 3 and refreshed.ref_for("crm").version_tag == "etag-2"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="already refers to crm '001A'"):
        v2.with_ref(SourceRef(system="crm", native_id="001B", last_seen=later))
    assert v2.with_ref(SourceRef(system="crm", native_id="001B", last_seen=later), replace=True).version == 3


def test_with_changes_revalidates_and_protects_bookkeeping_fields() -> None:
    acc = account()
    v2 = acc.with_changes({"name": "Acme AG", "health_score": 80}, at=T0 + timedelta(days=1))
    assert (v2.name, v2.health_score, v2.version, v2.id) == ("Acme AG", 80, 2, acc.id)
    with pytest.raises(ValidationError, match="health_score"):
        acc.with_changes({"health_score": 101}, at=T0)
    with pytest.raises(ValueError, match=r"managed by the core can.t be changed directly: version"):
        acc.with_changes({"version": 9}, at=T0)
    with pytest.raises(ValueError, match="no field"):
        acc.with_changes({"nmae": "x"}, at=T0)


# -- documents ------------------------------------------------------------------------------------------


def _invoice(**overrides: object) -> Invoice:
    data: dict[str, object] = {
        "id": IDS.new("invoice"),
        "account_id": IDS.new("account"),
        "currency": "USD",
        "lines": [
            InvoiceLine(description="Seats", quantity=10, unit_amount=usd(1000)),
            InvoiceLine(description="Unused time", unit_amount=usd(-500), proration=True),
        ],
        "amount_paid": usd(0),
        "issued_at": T0,
        "due_date": date(2026, 1, 31),
        "status": "open",
        "created_at": T0,
        "updated_at": T0,
    }
    return Invoice.model_validate({**data, **overrides})


def test_invoice_totals_and_consistency() -> None:
    invoice = _invoice()
    assert invoice.total == usd(9500) and invoice.amount_remaining == usd(9500)
    paid = _invoice(status=InvoiceStatus.PAID, paid_at=T0, amount_paid=usd(9500))
    assert paid.amount_remaining == usd(0)
    with pytest.raises(ValidationError, match=r"lines\[0\].unit_amount is in EUR"):
        _invoice(lines=[InvoiceLine(description="x", unit_amount=Money(amount_minor=1, currency="EUR"))])
    with pytest.raises(ValidationError, match="paid_at is set exactly when"):
        _invoice(status="paid")
    with pytest.raises(ValidationError, match="exceeds the invoice total"):
        _invoice(amount_paid=usd(10_000))
    with pytest.raises(ValidationError, match="account_id"):
        _invoice(account_id=IDS.new("contact"))
    with pytest.raises(ValidationError, match="lines"):
        _invoice(lines=[])


def test_order_totals_lines_in_its_currency() -> None:
    line = OrderLine(sku="PLAT", description="Platinum", quantity=3, unit_price=usd(9900))
    order = Order(
        id=IDS.new("order"),
        account_id=IDS.new("account"),
        currency="USD",
        order_date=date(2026, 1, 5),
        lines=[line, line],
        created_at=T0,
        updated_at=T0,
    )
    assert order.total == usd(59_400)
    with pytest.raises(ValidationError, match="quantity"):
        OrderLine(sku="PLAT", description="Platinum", quantity=0, unit_price=usd(1))
    with pytest.raises(ValidationError, match="is in USD, the document is in GBP"):
        Order(
            id=IDS.new("order"),
            account_id=IDS.new("account"),
            currency="GBP",
            order_date=date(2026, 1, 5),
            lines=[line],
            created_at=T0,
            updated_at=T0,
        )
