"""Who the customer is: Account and Contact."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from core.model.base import AccountRef, CanonicalModel, NonEmptyStr
from core.model.enums import AccountStatus, ContactStatus
from core.model.money import Currency, Money

# Deliberately simple: a full RFC 5322 check belongs to the vendors; this catches garbage and typos.
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$", max_length=254)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
Score = Annotated[int, Field(ge=0, le=100)]


class Account(CanonicalModel):
    entity: ClassVar[str] = "account"

    name: NonEmptyStr
    legal_name: NonEmptyStr | None = None
    domain: NonEmptyStr | None = None
    industry: NonEmptyStr | None = None
    country: CountryCode
    currency: Currency
    billing_email: Email | None = None
    tax_registration: NonEmptyStr | None = None
    status: AccountStatus = AccountStatus.PROSPECT
    credit_hold: bool = False
    health_score: Score | None = None
    arr: Money | None = None
    renewal_date: date | None = None

    @model_validator(mode="after")
    def _arr_in_account_currency(self) -> Self:
        if self.arr is not None and self.arr.currency != self.currency:
            raise ValueError(f"arr is in {self.arr.currency}, the account bills in {self.currency}")
        return self


class Contact(CanonicalModel):
    entity: ClassVar[str] = "contact"

    account_id: AccountRef
    first_name: NonEmptyStr
    last_name: NonEmptyStr
    email: Email
    phone: NonEmptyStr | None = None
    title: NonEmptyStr | None = None
    status: ContactStatus = ContactStatus.ACTIVE
