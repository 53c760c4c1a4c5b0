"""What was sold: Opportunity (CRM), Order and its lines (ERP), Contract."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from core.model.base import AccountRef, CanonicalModel, Frozen, NonEmptyStr, OpportunityRef, OrderRef
from core.model.enums import ContractStatus, OpportunityStage, OrderStatus
from core.model.money import Currency, Money

Quantity = Annotated[int, Field(ge=1)]


def check_currency_of(currency: str, amounts: dict[str, Money | None]) -> None:
    """Every amount on a document is in the document's currency; name the first one that is not."""
    for where, amount in amounts.items():
        if amount is not None and amount.currency != currency:
            raise ValueError(f"{where} is in {amount.currency}, the document is in {currency}")


class Opportunity(CanonicalModel):
    entity: ClassVar[str] = "opportunity"

    account_id: AccountRef
    name: NonEmptyStr
    stage: OpportunityStage = OpportunityStage.PROSPECTING
    amount: Money
    close_date: date
    probability: int = Field(default=10, ge=0, le=100)


class OrderLine(Frozen):
    sku: NonEmptyStr
    description: NonEmptyStr
    quantity: Quantity
    unit_price: Money

    @property
    def amount(self) -> Money:
        return self.unit_price * self.quantity

    @model_validator(mode="after")
    def _non_negative(self) -> Self:
        if self.unit_price.amount_minor < 0:
            raise ValueError("unit_price must not be negative on an order line (use a credit memo)")
        return self


class Order(CanonicalModel):
    entity: ClassVar[str] = "order"

    account_id: AccountRef
    opportunity_id: OpportunityRef | None = None
    number: NonEmptyStr | None = None
    status: OrderStatus = OrderStatus.DRAFT
    currency: Currency
    order_date: date
    lines: list[OrderLine] = Field(min_length=1)

    @property
    def total(self) -> Money:
        return Money.total((line.amount for line in self.lines), self.currency)

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        check_currency_of(self.currency, {f"lines[{i}].unit_price": ln.unit_price for i, ln in enumerate(self.lines)})
        return self


class Contract(CanonicalModel):
    entity: ClassVar[str] = "contract"

    account_id: AccountRef
    order_id: OrderRef | None = None
    status: ContractStatus = ContractStatus.DRAFT
    start_date: date
    end_date: date
    term_months: int = Field(ge=1, le=120)
    auto_renew: bool = True
    total_value: Money

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.end_date <= self.start_date:
            raise ValueError(f"end_date {self.end_date} must be after start_date {self.start_date}")
        if self.total_value.amount_minor < 0:
            raise ValueError("total_value must not be negative")
        return self
