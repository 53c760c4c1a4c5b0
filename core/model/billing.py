"""What is billed and paid: Subscription and its items, Invoice and its lines, Payment."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Self

from pydantic import Field, model_validator

from core.model.base import (
    AccountRef,
    CanonicalModel,
    ContractRef,
    Frozen,
    InvoiceRef,
    NonEmptyStr,
    SubscriptionRef,
    UtcDatetime,
)
from core.model.enums import BillingInterval, InvoiceStatus, PaymentStatus, SubscriptionStatus
from core.model.money import Currency, Money
from core.model.sales import Quantity, check_currency_of


class SubscriptionItem(Frozen):
    sku: NonEmptyStr
    quantity: Quantity
    unit_amount: Money
    interval: BillingInterval = BillingInterval.MONTH

    @property
    def amount(self) -> Money:
        return self.unit_amount * self.quantity


class Subscription(CanonicalModel):
    entity: ClassVar[str] = "subscription"

    account_id: AccountRef
    contract_id: ContractRef | None = None
    status: SubscriptionStatus = SubscriptionStatus.INCOMPLETE
    currency: Currency
    items: list[SubscriptionItem] = Field(min_length=1)
    current_period_start: UtcDatetime
    current_period_end: UtcDatetime
    cancel_at_period_end: bool = False
    trial_end: UtcDatetime | None = None

    @property
    def recurring_amount(self) -> Money:
        return Money.total((item.amount for item in self.items), self.currency)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.current_period_end <= self.current_period_start:
            raise ValueError("current_period_end must be after current_period_start")
        check_currency_of(self.currency, {f"items[{i}].unit_amount": it.unit_amount for i, it in enumerate(self.items)})
        return self


class InvoiceLine(Frozen):
    description: NonEmptyStr
    quantity: Quantity = 1
    # Negative for credits, e.g. the unused-time line of a proration.
    unit_amount: Money
    proration: bool = False
    period_start: UtcDatetime | None = None
    period_end: UtcDatetime | None = None

    @property
    def amount(self) -> Money:
        return self.unit_amount * self.quantity


class Invoice(CanonicalModel):
    entity: ClassVar[str] = "invoice"

    account_id: AccountRef
    subscription_id: SubscriptionRef | None = None
    number: NonEmptyStr | None = None
    status: InvoiceStatus = InvoiceStatus.DRAFT
    currency: Currency
    lines: list[InvoiceLine] = Field(min_length=1)
    amount_paid: Money
    issued_at: UtcDatetime
    due_date: date
    paid_at: UtcDatetime | None = None

    @property
    def total(self) -> Money:
        return Money.total((line.amount for line in self.lines), self.currency)

    @property
    def amount_remaining(self) -> Money:
        return self.total - self.amount_paid

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        amounts: dict[str, Money | None] = {"amount_paid": self.amount_paid}
        amounts.update({f"lines[{i}].unit_amount": ln.unit_amount for i, ln in enumerate(self.lines)})
        check_currency_of(self.currency, amounts)
        if self.amount_paid.amount_minor < 0:
            raise ValueError("amount_paid must not be negative")
        if self.amount_paid.amount_minor > max(self.total.amount_minor, 0):
            raise ValueError(f"amount_paid {self.amount_paid} exceeds the invoice total {self.total}")
        if (self.status is InvoiceStatus.PAID) != (self.paid_at is not None):
            raise ValueError("paid_at is set exactly when the status is 'paid'")
        return self


class Payment(CanonicalModel):
    entity: ClassVar[str] = "payment"

    account_id: AccountRef
    invoice_id: InvoiceRef | None = None
    amount: Money
    status: PaymentStatus = PaymentStatus.PENDING
    attempt: int = Field(default=1, ge=1)
    attempted_at: UtcDatetime
    failure_code: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.amount.amount_minor <= 0:
            raise ValueError("a payment amount must be positive")
        if (self.status is PaymentStatus.FAILED) != (self.failure_code is not None):
            raise ValueError("failure_code is set exactly when the status is 'failed'")
        return self
