"""Polyfactory factories for every canonical model, with seeded Faker: for tests and demo data.

All factories share one `random.Random`, one Faker per locale and one `IdSource`, so `seeded(seed)` resets
every source of variation at once: two runs that call `seeded(7)` and then build the same sequence of
objects get identical objects (ids and timestamps included; nothing here reads the wall clock).

    seeded(7)
    account = AccountFactory.build()
    invoice = InvoiceFactory.build(account_id=account.id, currency=account.currency)
    customer = build_customer()          # a coherent set of records for one account
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from faker import Faker
from polyfactory import PostGenerated
from polyfactory.factories.base import BaseFactory
from polyfactory.factories.pydantic_factory import ModelFactory
from polyfactory.field_meta import FieldMeta, Null

from core.model.base import CanonicalModel
from core.model.billing import Invoice, InvoiceLine, Payment, Subscription, SubscriptionItem
from core.model.enums import (
    AccountStatus,
    ContractStatus,
    EntitlementStatus,
    HealthTrend,
    InvoiceStatus,
    MilestoneStatus,
    OpportunityStage,
    OrderStatus,
    PaymentStatus,
    SubscriptionStatus,
)
from core.model.ids import IdSource
from core.model.money import Money
from core.model.party import Account, Contact
from core.model.sales import Contract, Opportunity, Order, OrderLine
from core.model.success import Entitlement, HealthScore, OnboardingMilestone

T = TypeVar("T", bound=CanonicalModel)

# Demo data lives around this instant (the sandbox clock's default start), never around "now".
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CompanyProfile:
    country: str
    currency: str
    locale: str
    tax_format: str  # Faker `numerify` pattern: '#' is a digit


PROFILES: tuple[CompanyProfile, ...] = (
    CompanyProfile("US", "USD", "en_US", "##-#######"),
    CompanyProfile("GB", "GBP", "en_GB", "GB#########"),
    CompanyProfile("DE", "EUR", "de_DE", "DE#########"),
    CompanyProfile("FR", "EUR", "fr_FR", "FR###########"),
    CompanyProfile("NL", "EUR", "nl_NL", "NL#########B01"),
    CompanyProfile("CA", "CAD", "en_CA", "#########RT0001"),
    CompanyProfile("AU", "AUD", "en_AU", "###########"),
    CompanyProfile("JP", "JPY", "ja_JP", "T#############"),
)
_BY_COUNTRY = {profile.country: profile for profile in PROFILES}
_PLANS = (("PLAT-SEAT", 9_900), ("GROWTH-SEAT", 4_900), ("START-SEAT", 1_900), ("ANALYTICS", 25_000))
_MILESTONES = ("Kickoff", "Technical setup", "Data migration", "Training", "Go-live")


class _Sources:
    """The mutable seeded state behind every factory; replaced wholesale by `seeded`."""

    random = random.Random(0)
    fakers: ClassVar[dict[str, Faker]] = {p.locale: Faker(p.locale) for p in PROFILES}
    ids = IdSource.seeded(0, start=EPOCH)


def seeded(seed: int) -> None:
    """Reset every factory's randomness, Faker streams and id source to `seed`."""
    _Sources.random.seed(seed)
    for offset, faker in enumerate(_Sources.fakers.values()):
        faker.seed_instance(seed * 1_000 + offset)  # one stream per locale, all derived from the seed
    _Sources.ids = IdSource.seeded(seed, start=EPOCH)


def _rng() -> random.Random:
    return _Sources.random


def _faker(country: str = "US") -> Faker:
    return _Sources.fakers[_BY_COUNTRY.get(country, PROFILES[0]).locale]


def _instant(days_back: int = 365) -> datetime:
    return EPOCH - timedelta(days=_rng().randint(1, days_back), seconds=_rng().randint(0, 86_399))


def _later(_name: str, values: dict[str, Any]) -> datetime:
    return values["created_at"] + timedelta(hours=_rng().randint(0, 24 * 30))


def _money(currency: str, low: int, high: int) -> Money:
    return Money(amount_minor=_rng().randint(low, high), currency=currency)


def _new_account_id() -> str:
    return _Sources.ids.new("account")


class CanonicalFactory(ModelFactory[T]):
    """Shared wiring: seeded sources, ids by entity, coherent timestamps, declared defaults elsewhere."""

    __is_base_factory__ = True
    __faker__ = _Sources.fakers["en_US"]
    __random__ = _Sources.random

    @classmethod
    def should_use_default_value(cls, field_meta: FieldMeta) -> bool:
        # A field the factory declares is generated; every other field keeps the model's default, so
        # optional fields stay None instead of being filled with random strings.
        if hasattr(cls, field_meta.name) and not hasattr(BaseFactory, field_meta.name):
            return False
        return field_meta.default is not Null

    @classmethod
    def id(cls) -> str:
        return _Sources.ids.new(cls.__model__.entity)

    @classmethod
    def created_at(cls) -> datetime:
        return _instant()

    updated_at = PostGenerated(_later)


class AccountFactory(CanonicalFactory[Account]):
    @classmethod
    def country(cls) -> str:
        return _rng().choice(PROFILES).country

    currency = PostGenerated(lambda _n, v: _BY_COUNTRY[v["country"]].currency if v["country"] in _BY_COUNTRY else "USD")
    name = PostGenerated(lambda _n, v: _faker(v["country"]).company())
    legal_name = PostGenerated(lambda _n, v: v["name"])
    domain = PostGenerated(lambda _n, v: _faker(v["country"]).domain_name())
    billing_email = PostGenerated(lambda _n, v: f"billing@{v['domain']}")
    tax_registration = PostGenerated(
        lambda _n, v: (
            _faker(v["country"]).numerify(_BY_COUNTRY[v["country"]].tax_format) if v["country"] in _BY_COUNTRY else None
        )
    )

    @classmethod
    def industry(cls) -> str:
        return _rng().choice(("Software", "Manufacturing", "Retail", "Healthcare", "Logistics", "Finance"))

    @classmethod
    def status(cls) -> AccountStatus:
        return _rng().choice([AccountStatus.PROSPECT, AccountStatus.ACTIVE, AccountStatus.ACTIVE])


class ContactFactory(CanonicalFactory[Contact]):
    account_id = _new_account_id
    first_name = PostGenerated(lambda _n, _v: _faker().first_name())
    last_name = PostGenerated(lambda _n, _v: _faker().last_name())
    email = PostGenerated(lambda _n, v: f"{v['first_name']}.{v['last_name']}@{_faker().domain_name()}".lower())

    @classmethod
    def title(cls) -> str:
        return _rng().choice(("CFO", "VP Operations", "IT Director", "Procurement Lead", "Head of Finance"))


class OpportunityFactory(CanonicalFactory[Opportunity]):
    account_id = _new_account_id
    name = PostGenerated(lambda _n, _v: f"{_rng().choice(_PLANS)[0].split('-')[0].title()} - new business")

    @classmethod
    def stage(cls) -> OpportunityStage:
        return _rng().choice(list(OpportunityStage))

    @classmethod
    def amount(cls) -> Money:
        return _money("USD", 100_000, 25_000_000)

    @classmethod
    def close_date(cls) -> date:
        return (EPOCH + timedelta(days=_rng().randint(0, 120))).date()

    @classmethod
    def probability(cls) -> int:
        return _rng().randrange(0, 101, 10)


def _order_lines(_name: str, values: dict[str, Any]) -> list[OrderLine]:
    return [
        OrderLine(
            sku=sku,
            description=f"{sku} licence",
            quantity=_rng().randint(1, 50),
            unit_price=Money(amount_minor=price, currency=values["currency"]),
        )
        for sku, price in _rng().sample(_PLANS, k=_rng().randint(1, 3))
    ]


class OrderFactory(CanonicalFactory[Order]):
    account_id = _new_account_id
    currency = "USD"
    lines = PostGenerated(_order_lines)

    @classmethod
    def number(cls) -> str:
        return f"SO-{_rng().randint(10_000, 99_999)}"

    @classmethod
    def status(cls) -> OrderStatus:
        return _rng().choice(list(OrderStatus))

    @classmethod
    def order_date(cls) -> date:
        return _instant().date()


def _contract_end(_name: str, values: dict[str, Any]) -> date:
    start: date = values["start_date"]
    months = values["term_months"]
    return date(start.year + (start.month - 1 + months) // 12, (start.month - 1 + months) % 12 + 1, 1)


class ContractFactory(CanonicalFactory[Contract]):
    account_id = _new_account_id

    @classmethod
    def status(cls) -> ContractStatus:
        return _rng().choice([ContractStatus.ACTIVE, ContractStatus.ACTIVE, ContractStatus.DRAFT])

    @classmethod
    def start_date(cls) -> date:
        return _instant().date().replace(day=1)

    @classmethod
    def term_months(cls) -> int:
        return _rng().choice((12, 24, 36))

    end_date = PostGenerated(_contract_end)

    @classmethod
    def total_value(cls) -> Money:
        return _money("USD", 1_000_000, 50_000_000)


def _sub_items(_name: str, values: dict[str, Any]) -> list[SubscriptionItem]:
    return [
        SubscriptionItem(
            sku=sku, quantity=_rng().randint(1, 50), unit_amount=Money(amount_minor=price, currency=values["currency"])
        )
        for sku, price in _rng().sample(_PLANS, k=_rng().randint(1, 2))
    ]


class SubscriptionFactory(CanonicalFactory[Subscription]):
    account_id = _new_account_id
    currency = "USD"
    items = PostGenerated(_sub_items)

    @classmethod
    def status(cls) -> SubscriptionStatus:
        return _rng().choice(
            [
                SubscriptionStatus.ACTIVE,
                SubscriptionStatus.ACTIVE,
                SubscriptionStatus.TRIALING,
                SubscriptionStatus.PAST_DUE,
            ]
        )

    @classmethod
    def current_period_start(cls) -> datetime:
        return EPOCH - timedelta(days=_rng().randint(0, 27))

    current_period_end = PostGenerated(lambda _n, v: v["current_period_start"] + timedelta(days=30))


def _invoice_lines(_name: str, values: dict[str, Any]) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            description=f"{sku} x seats",
            quantity=_rng().randint(1, 20),
            unit_amount=Money(amount_minor=price, currency=values["currency"]),
        )
        for sku, price in _rng().sample(_PLANS, k=_rng().randint(1, 3))
    ]


def _amount_paid(_name: str, values: dict[str, Any]) -> Money:
    total = Money.total((line.amount for line in values["lines"]), values["currency"])
    return total if values["status"] is InvoiceStatus.PAID else Money.zero(values["currency"])


class InvoiceFactory(CanonicalFactory[Invoice]):
    account_id = _new_account_id
    currency = "USD"
    lines = PostGenerated(_invoice_lines)
    amount_paid = PostGenerated(_amount_paid)

    @classmethod
    def number(cls) -> str:
        return f"INV-{_rng().randint(100_000, 999_999)}"

    @classmethod
    def status(cls) -> InvoiceStatus:
        return _rng().choice([InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.PAID])

    @classmethod
    def issued_at(cls) -> datetime:
        return _instant(90)

    due_date = PostGenerated(lambda _n, v: (v["issued_at"] + timedelta(days=30)).date())
    paid_at = PostGenerated(
        lambda _n, v: (
            v["issued_at"] + timedelta(days=_rng().randint(0, 29)) if v["status"] is InvoiceStatus.PAID else None
        )
    )


class PaymentFactory(CanonicalFactory[Payment]):
    account_id = _new_account_id

    @classmethod
    def amount(cls) -> Money:
        return _money("USD", 1_000, 5_000_000)

    @classmethod
    def status(cls) -> PaymentStatus:
        return _rng().choice([PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED])

    @classmethod
    def attempted_at(cls) -> datetime:
        return _instant(90)

    failure_code = PostGenerated(
        lambda _n, v: (
            _rng().choice(("card_declined", "insufficient_funds", "expired_card"))
            if v["status"] is PaymentStatus.FAILED
            else None
        )
    )


class EntitlementFactory(CanonicalFactory[Entitlement]):
    account_id = _new_account_id

    @classmethod
    def feature(cls) -> str:
        return _rng().choice(("seats", "api_calls", "sso", "analytics", "sandboxes"))

    @classmethod
    def quantity(cls) -> int:
        return _rng().randint(1, 500)

    @classmethod
    def status(cls) -> EntitlementStatus:
        return EntitlementStatus.ACTIVE

    @classmethod
    def starts_at(cls) -> datetime:
        return _instant()

    ends_at = PostGenerated(lambda _n, v: v["starts_at"] + timedelta(days=365))


class HealthScoreFactory(CanonicalFactory[HealthScore]):
    account_id = _new_account_id

    @classmethod
    def score(cls) -> int:
        return _rng().randint(20, 100)

    @classmethod
    def trend(cls) -> HealthTrend:
        return _rng().choice(list(HealthTrend))

    @classmethod
    def measured_at(cls) -> datetime:
        return _instant(30)

    @classmethod
    def components(cls) -> dict[str, int]:
        return {name: _rng().randint(0, 100) for name in ("usage", "support", "payments", "sentiment")}


class OnboardingMilestoneFactory(CanonicalFactory[OnboardingMilestone]):
    account_id = _new_account_id

    @classmethod
    def sequence(cls) -> int:
        return _rng().randint(1, len(_MILESTONES))

    name = PostGenerated(lambda _n, v: _MILESTONES[(v["sequence"] - 1) % len(_MILESTONES)])

    @classmethod
    def status(cls) -> MilestoneStatus:
        return _rng().choice(list(MilestoneStatus))

    @classmethod
    def due_date(cls) -> date:
        return (EPOCH + timedelta(days=_rng().randint(0, 90))).date()

    completed_at = PostGenerated(
        lambda _n, v: (
            v["created_at"] + timedelta(days=_rng().randint(1, 30))
            if v["status"] is MilestoneStatus.COMPLETED
            else None
        )
    )


FACTORIES: dict[str, type[CanonicalFactory[Any]]] = {
    factory.__model__.entity: factory
    for factory in (
        AccountFactory,
        ContactFactory,
        OpportunityFactory,
        OrderFactory,
        ContractFactory,
        SubscriptionFactory,
        InvoiceFactory,
        PaymentFactory,
        EntitlementFactory,
        HealthScoreFactory,
        OnboardingMilestoneFactory,
    )
}


@dataclass(frozen=True)
class Customer:
    """One account and the records around it, consistent with each other (ids, currency, dates)."""

    account: Account
    contacts: list[Contact]
    opportunity: Opportunity
    order: Order
    contract: Contract
    subscription: Subscription
    invoice: Invoice
    payment: Payment
    entitlement: Entitlement
    health: HealthScore
    milestones: list[OnboardingMilestone]


def build_customer(**account_fields: Any) -> Customer:
    """A closed-won customer: account, contacts, won opportunity, order, contract, subscription, paid invoice."""
    account = AccountFactory.build(status=AccountStatus.ACTIVE, **account_fields)
    cur, acc = account.currency, account.id
    order = OrderFactory.build(account_id=acc, currency=cur, status=OrderStatus.APPROVED)
    opportunity = OpportunityFactory.build(
        account_id=acc, stage=OpportunityStage.CLOSED_WON, probability=100, amount=order.total
    )
    order = order.with_changes({"opportunity_id": opportunity.id}, at=order.updated_at)
    contract = ContractFactory.build(
        account_id=acc, order_id=order.id, status=ContractStatus.ACTIVE, total_value=order.total * 12
    )
    subscription = SubscriptionFactory.build(
        account_id=acc, contract_id=contract.id, currency=cur, status=SubscriptionStatus.ACTIVE
    )
    invoice = InvoiceFactory.build(
        account_id=acc, subscription_id=subscription.id, currency=cur, status=InvoiceStatus.PAID
    )
    payment = PaymentFactory.build(
        account_id=acc, invoice_id=invoice.id, amount=invoice.total, status=PaymentStatus.SUCCEEDED
    )
    return Customer(
        account=account,
        contacts=[ContactFactory.build(account_id=acc) for _ in range(_rng().randint(1, 3))],
        opportunity=opportunity,
        order=order,
        contract=contract,
        subscription=subscription,
        invoice=invoice,
        payment=payment,
        entitlement=EntitlementFactory.build(account_id=acc, subscription_id=subscription.id),
        health=HealthScoreFactory.build(account_id=acc),
        milestones=[
            OnboardingMilestoneFactory.build(account_id=acc, sequence=i, status=MilestoneStatus.NOT_STARTED)
            for i in range(1, len(_MILESTONES) + 1)
        ],
    )
