"""Money: an integer amount in the currency's minor unit plus an ISO 4217 code.

Integers, never floats: vendors (Stripe) speak minor units, and sums must be exact. Arithmetic is only
defined between amounts of one currency; mixing raises `CurrencyMismatchError` rather than guessing a rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Strict

from core.model.iso4217 import CURRENCIES, EXPONENTS


class CurrencyMismatchError(ValueError):
    """Arithmetic or comparison between amounts in different currencies."""


def check_currency(code: str) -> str:
    if len(code) != 3 or not code.isascii() or not code.isalpha() or not code.isupper():
        raise ValueError(f"currency {code!r} must be three upper-case letters, e.g. 'USD'")
    if code not in CURRENCIES:
        raise ValueError(f"currency {code!r} is not an ISO 4217 code in circulation")
    return code


Currency = Annotated[str, Strict(), AfterValidator(check_currency)]


class Money(BaseModel):
    """An exact amount: `Money(amount_minor=1999, currency="USD")` is 19.99 USD. Negative for credits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Strict: "100", 100.0 and True are rejected; an amount must already be an integer of minor units.
    amount_minor: Annotated[int, Strict()]
    currency: Currency

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount_minor=0, currency=currency)

    @classmethod
    def from_major(cls, amount: Decimal | str | int, currency: str) -> Money:
        """From a decimal major-unit amount ("19.99" USD, NetSuite style); extra precision is an error."""
        exponent = EXPONENTS[check_currency(currency)]
        minor = Decimal(amount).scaleb(exponent)
        if minor != minor.to_integral_value():
            raise ValueError(f"{amount} {currency} has more than {exponent} decimal places")
        return cls(amount_minor=int(minor), currency=currency)

    @classmethod
    def total(cls, amounts: Iterable[Money], currency: str) -> Money:
        """Sum of amounts that must all be in `currency` (the total of no amounts is zero)."""
        result = cls.zero(currency)
        for amount in amounts:
            result = result + amount
        return result

    def to_major(self) -> Decimal:
        return Decimal(self.amount_minor).scaleb(-EXPONENTS[self.currency])

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"expected Money, got {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} and {other.currency} amounts")
        return other

    def add(self, other: Money) -> Money:
        return Money(amount_minor=self.amount_minor + self._same(other).amount_minor, currency=self.currency)

    def sub(self, other: Money) -> Money:
        return Money(amount_minor=self.amount_minor - self._same(other).amount_minor, currency=self.currency)

    def times(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError("money can only be multiplied by an integer (quantities); round explicitly first")
        return Money(amount_minor=self.amount_minor * factor, currency=self.currency)

    __add__ = add
    __sub__ = sub
    __mul__ = times

    def __neg__(self) -> Money:
        return Money(amount_minor=-self.amount_minor, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount_minor < self._same(other).amount_minor

    def __le__(self, other: Money) -> bool:
        return self.amount_minor <= self._same(other).amount_minor

    def __gt__(self, other: Money) -> bool:
        return self.amount_minor > self._same(other).amount_minor

    def __ge__(self, other: Money) -> bool:
        return self.amount_minor >= self._same(other).amount_minor

    def __str__(self) -> str:
        return f"{self.to_major()} {self.currency}"
