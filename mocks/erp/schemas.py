"""OpenAPI documentation of the ERP's wire shapes (internal model = version 2024.2).

These pydantic models only describe; requests are checked by `fields.py` so errors keep NetSuite's
envelope. Component names are what `versions.SCHEMA_NAMES` points at, so the per-version OpenAPI
rewrites them (e.g. `status` becomes an `{id, refName}` object on 2025.1).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MODELS", "Collection", "ErrorBody", "SuiteQLResult"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Link(_Open):
    rel: str
    href: str


class Ref(_Open):
    """A reference to another record or a list value: send `{"id": "12"}` (or `{"externalId": ...}`)."""

    links: list[Link] | None = Field(default=None, json_schema_extra={"readOnly": True})
    id: str | None = None
    refName: str | None = Field(default=None, json_schema_extra={"readOnly": True})
    externalId: str | None = None


class Address(_Open):
    country: str = Field(description="ISO 3166-1 alpha-2 code", min_length=2, max_length=2)
    addressee: str | None = None
    attention: str | None = None
    addr1: str | None = None
    addr2: str | None = None
    addr3: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    addrPhone: str | None = None


class AddressBookEntry(_Open):
    label: str | None = None
    defaultBilling: bool | None = None
    defaultShipping: bool | None = None
    addressBookAddress: Address


class AddressBook(_Open):
    links: list[Link] | None = None
    items: list[AddressBookEntry] | None = None


class TaxRegistration(BaseModel):
    country: str = Field(min_length=2, max_length=2)
    number: str = Field(description="validated per country, e.g. GB + 9 digits, DE + 9 digits, US NN-NNNNNNN")


class Line(_Open):
    item: Ref
    quantity: float | None = Field(default=None, gt=0)
    rate: float | None = Field(default=None, ge=0)
    amount: float | None = Field(default=None, ge=0)
    description: str | None = None
    line: int | None = Field(default=None, json_schema_extra={"readOnly": True})


class Lines(_Open):
    links: list[Link] | None = None
    items: list[Line] | None = None


class Amendment(_Open):
    version: int
    date: str
    changes: dict[str, Any]


_RO: Any = {"readOnly": True}


class Customer(_Open):
    links: list[Link] | None = Field(default=None, json_schema_extra=_RO)
    id: str | None = Field(default=None, json_schema_extra=_RO)
    companyName: str | None = Field(default=None, max_length=83, description="required on create")
    legalName: str | None = None
    email: str | None = None
    phone: str | None = None
    externalId: str | None = None
    subsidiary: Ref | None = None
    currency: Ref | None = None
    terms: Ref | None = None
    creditLimit: float | None = Field(default=None, ge=0)
    creditHoldOverride: Literal["AUTO", "ON", "OFF"] | None = None
    isOnCreditHold: bool | None = Field(default=None, json_schema_extra=_RO)
    balance: float | None = Field(default=None, json_schema_extra=_RO)
    taxRegistration: TaxRegistration | None = None
    addressBook: AddressBook | None = None
    isInactive: bool | None = None
    comments: str | None = None
    dateCreated: str | None = Field(default=None, json_schema_extra=_RO)
    lastModifiedDate: str | None = Field(default=None, json_schema_extra=_RO)


class _Transaction(_Open):
    links: list[Link] | None = Field(default=None, json_schema_extra=_RO)
    id: str | None = Field(default=None, json_schema_extra=_RO)
    tranId: str | None = Field(default=None, json_schema_extra=_RO)
    entity: Ref | None = Field(default=None, description="the customer; required on create")
    tranDate: str | None = Field(default=None, description="YYYY-MM-DD")
    externalId: str | None = None
    memo: str | None = None
    subsidiary: Ref | None = Field(default=None, json_schema_extra=_RO)
    currency: Ref | None = Field(default=None, json_schema_extra=_RO)
    item: Lines | None = None
    subtotal: float | None = Field(default=None, json_schema_extra=_RO)
    total: float | None = Field(default=None, json_schema_extra=_RO)
    createdDate: str | None = Field(default=None, json_schema_extra=_RO)
    lastModifiedDate: str | None = Field(default=None, json_schema_extra=_RO)


class SalesOrder(_Transaction):
    status: Literal["Pending Approval", "Pending Fulfillment", "Cancelled", "Billed", "Closed"] | None = Field(
        default=None, json_schema_extra=_RO)
    otherRefNum: str | None = None
    amountBilled: float | None = Field(default=None, json_schema_extra=_RO)
    revision: int | None = Field(default=None, json_schema_extra=_RO)
    amendments: list[Amendment] | None = Field(default=None, json_schema_extra=_RO)


class Invoice(_Transaction):
    createdFrom: Ref | None = Field(default=None, description="the sales order; required on create")
    status: Literal["Open", "Paid In Full", "Voided"] | None = Field(default=None, json_schema_extra=_RO)
    dueDate: str | None = None
    terms: Ref | None = None
    amountPaid: float | None = Field(default=None, json_schema_extra=_RO)
    amountRemaining: float | None = Field(default=None, json_schema_extra=_RO)
    daysOverdue: int | None = Field(default=None, json_schema_extra=_RO)


class CreditMemo(_Transaction):
    createdFrom: Ref | None = Field(default=None, description="the invoice; required on create")
    status: Literal["Open", "Fully Applied"] | None = Field(default=None, json_schema_extra=_RO)
    applied: float | None = Field(default=None, json_schema_extra=_RO)
    unapplied: float | None = Field(default=None, json_schema_extra=_RO)


class Item(_Open):
    links: list[Link] | None = Field(default=None, json_schema_extra=_RO)
    id: str | None = Field(default=None, json_schema_extra=_RO)
    itemId: str | None = Field(default=None, max_length=60, description="required on create; unique")
    displayName: str | None = None
    description: str | None = None
    basePrice: float | None = Field(default=None, ge=0)
    itemType: Literal["InvtPart", "NonInvtPart", "Service", "OthCharge", "Discount"] | None = None
    externalId: str | None = None
    isInactive: bool | None = None
    createdDate: str | None = Field(default=None, json_schema_extra=_RO)
    lastModifiedDate: str | None = Field(default=None, json_schema_extra=_RO)


class CollectionItem(_Open):
    links: list[Link]
    id: str


class Collection(_Open):
    links: list[Link]
    count: int
    hasMore: bool
    items: list[CollectionItem]
    offset: int
    totalResults: int


class SuiteQLResult(_Open):
    links: list[Link]
    count: int
    hasMore: bool
    items: list[dict[str, Any]]
    offset: int
    totalResults: int


class ErrorDetail(_Open):
    detail: str
    o_errorCode: str = Field(alias="o:errorCode")
    o_errorPath: str | None = Field(default=None, alias="o:errorPath")


class ErrorBody(_Open):
    type: str
    title: str
    status: int
    o_errorDetails: list[ErrorDetail] = Field(alias="o:errorDetails")


MODELS: dict[str, type[BaseModel]] = {
    "customer": Customer,
    "salesOrder": SalesOrder,
    "invoice": Invoice,
    "creditMemo": CreditMemo,
    "item": Item,
}
