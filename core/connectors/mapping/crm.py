"""CRM (Salesforce REST) <-> canonical, per pinned API version.

Versions: `59.0` and `60.0`. The declared breaking change: Opportunity.StageName "Negotiation/Review"
(59.0) is called "Negotiation" on 60.0. A stage the pinned version does not know is drift.

Decisions:
- Stage -> canonical: Prospecting -> prospecting; Qualification, Needs Analysis -> qualification;
  Value Proposition, Id. Decision Makers, Perception Analysis, Proposal/Price Quote -> proposal;
  Negotiation/Review (59.0) or Negotiation (60.0) -> negotiation; Closed Won / Closed Lost.
- Salesforce amounts are major units; the org's currency is not in the record (no multi-currency), so the
  caller passes it to `to_canonical` (the account's currency from the crosswalk / ownership matrix).
- `BillingCountry` may be an ISO code or a country name; names map through a small table, anything else
  needs the caller's `country` (the mapping never guesses).
- Writes: `AccountUpdate` names the canonical intent (at risk, receivables, renewal, health); the body
  uses the custom fields At_Risk__c, AR_Balance__c, Renewal_Date__c, Health_Score__c.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.connectors.mapping.common import Reader, major_to_money, unsupported_version
from core.model import Account, AccountStatus, Money, Opportunity, OpportunityStage, SourceRef

__all__ = [
    "V59",
    "V60",
    "VERSIONS",
    "AccountUpdate",
    "CrmAccount",
    "CrmOpportunity",
    "account_update_body",
    "parse_account",
    "parse_opportunity",
    "stage_name",
]

SYSTEM = "crm"
V59 = "59.0"
V60 = "60.0"
VERSIONS: tuple[str, ...] = (V59, V60)

_COMMON_STAGES = {
    "Prospecting": OpportunityStage.PROSPECTING,
    "Qualification": OpportunityStage.QUALIFICATION,
    "Needs Analysis": OpportunityStage.QUALIFICATION,
    "Value Proposition": OpportunityStage.PROPOSAL,
    "Id. Decision Makers": OpportunityStage.PROPOSAL,
    "Perception Analysis": OpportunityStage.PROPOSAL,
    "Proposal/Price Quote": OpportunityStage.PROPOSAL,
    "Closed Won": OpportunityStage.CLOSED_WON,
    "Closed Lost": OpportunityStage.CLOSED_LOST,
}
STAGES: dict[str, dict[str, OpportunityStage]] = {
    V59: {**_COMMON_STAGES, "Negotiation/Review": OpportunityStage.NEGOTIATION},
    V60: {**_COMMON_STAGES, "Negotiation": OpportunityStage.NEGOTIATION},
}
COUNTRY_NAMES = {
    "united states": "US", "usa": "US", "germany": "DE", "united kingdom": "GB", "uk": "GB", "france": "FR",
    "canada": "CA", "japan": "JP", "australia": "AU", "brazil": "BR", "netherlands": "NL", "spain": "ES",
    "italy": "IT", "ireland": "IE", "switzerland": "CH", "austria": "AT", "sweden": "SE",
}


def stage_name(stage: OpportunityStage, version: str) -> str:
    """The picklist value the pinned version uses for a canonical stage (the first one listed)."""
    for name, canonical in STAGES[version].items():
        if canonical is stage:
            return name
    raise ValueError(f"no {version} stage for {stage}")  # pragma: no cover - every stage is listed


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


def _seen(modstamp: datetime, seen_at: datetime | None) -> datetime:
    return max(seen_at or datetime.now(UTC), modstamp)


class CrmAccount(_View):
    id: str
    name: str
    external_id: str | None
    industry: str | None
    website: str | None
    billing_country: str | None
    at_risk: bool
    health_score: Decimal | None
    renewal_date: date | None
    ar_balance: Decimal | None
    is_deleted: bool
    master_record_id: str | None
    created: datetime
    modstamp: datetime

    def country_code(self) -> str | None:
        raw = (self.billing_country or "").strip()
        if len(raw) == 2 and raw.isalpha():
            return raw.upper()
        return COUNTRY_NAMES.get(raw.lower())

    def to_canonical(self, *, id: str, currency: str, country: str | None = None,
                     seen_at: datetime | None = None) -> Account:
        code = self.country_code() or country
        if code is None:
            raise ValueError(f"account {self.id}: BillingCountry {self.billing_country!r} is not a known country; "
                             "pass country=")
        seen = _seen(self.modstamp, seen_at)
        score = int(self.health_score) if self.health_score is not None else None
        return Account(
            id=id, name=self.name, industry=self.industry, domain=_domain(self.website), country=code,
            currency=currency, status=AccountStatus.AT_RISK if self.at_risk else AccountStatus.ACTIVE,
            health_score=score, renewal_date=self.renewal_date, created_at=self.created, updated_at=seen,
            source_refs=[SourceRef(system=SYSTEM, native_id=self.id, version_tag=self.modstamp.isoformat(),
                                   last_seen=seen)],
        )


def _domain(website: str | None) -> str | None:
    if not website:
        return None
    host = website.split("://", 1)[-1].split("/", 1)[0]
    return host.removeprefix("www.") or None


class CrmOpportunity(_View):
    id: str
    account_id: str | None
    name: str
    stage: OpportunityStage
    stage_name: str
    amount: Decimal | None
    close_date: date
    probability: int | None
    is_closed: bool
    is_won: bool
    created: datetime
    modstamp: datetime

    def to_canonical(self, *, id: str, account_id: str, currency: str,
                     seen_at: datetime | None = None) -> Opportunity:
        seen = _seen(self.modstamp, seen_at)
        amount = major_to_money(self.amount, currency) if self.amount is not None else Money.zero(currency)
        return Opportunity(
            id=id, account_id=account_id, name=self.name, stage=self.stage, amount=amount,
            close_date=self.close_date, probability=self.probability if self.probability is not None else 10,
            created_at=self.created, updated_at=seen,
            source_refs=[SourceRef(system=SYSTEM, native_id=self.id, version_tag=self.modstamp.isoformat(),
                                   last_seen=seen)],
        )


def _reader(obj: str, payload: Any, version: str) -> Reader:
    if version not in VERSIONS:
        raise unsupported_version(SYSTEM, obj, version, VERSIONS)
    r = Reader(SYSTEM, obj, payload, version)
    attributes = r.opt("attributes", dict)
    if attributes is not None and attributes.get("type") not in (None, obj):
        raise r.drift("attributes", f"expected a {obj}, got {attributes.get('type')!r}")
    return r


def parse_account(payload: Any, version: str) -> CrmAccount:
    r = _reader("Account", payload, version)
    return CrmAccount(
        id=r.req("Id", str), name=r.req("Name", str), external_id=r.req("External_Id__c", str, nullable=True),
        industry=r.req("Industry", str, nullable=True), website=r.req("Website", str, nullable=True),
        billing_country=r.req("BillingCountry", str, nullable=True), at_risk=r.req("At_Risk__c", bool),
        health_score=r.number("Health_Score__c", nullable=True), renewal_date=r.date("Renewal_Date__c", nullable=True),
        ar_balance=r.number("AR_Balance__c", nullable=True), is_deleted=r.req("IsDeleted", bool),
        master_record_id=r.req("MasterRecordId", str, nullable=True), created=r.datetime("CreatedDate"),
        modstamp=r.datetime("SystemModstamp"),
    )


def parse_opportunity(payload: Any, version: str) -> CrmOpportunity:
    r = _reader("Opportunity", payload, version)
    probability = r.number("Probability", nullable=True)
    return CrmOpportunity(
        id=r.req("Id", str), account_id=r.req("AccountId", str, nullable=True), name=r.req("Name", str),
        stage=r.enum("StageName", STAGES[version]), stage_name=r.req("StageName", str),
        amount=r.number("Amount", nullable=True), close_date=r.date("CloseDate"),
        probability=int(probability) if probability is not None else None, is_closed=r.req("IsClosed", bool),
        is_won=r.req("IsWon", bool), created=r.datetime("CreatedDate"), modstamp=r.datetime("SystemModstamp"),
    )


class AccountUpdate(BaseModel):
    """Fields the flows write on a CRM account; unset fields are not sent. `extra` passes raw API fields."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    at_risk: bool | None = None
    ar_balance: Money | None = None
    renewal_date: date | None = None
    health_score: int | None = None
    extra: dict[str, Any] = {}


def account_update_body(update: AccountUpdate, version: str) -> dict[str, Any]:
    if version not in VERSIONS:
        raise unsupported_version(SYSTEM, "Account", version, VERSIONS)
    fields = update.model_fields_set
    body: dict[str, Any] = {}
    if "name" in fields:
        body["Name"] = update.name
    if "at_risk" in fields:
        body["At_Risk__c"] = bool(update.at_risk)
    if "ar_balance" in fields:
        body["AR_Balance__c"] = float(update.ar_balance.to_major()) if update.ar_balance is not None else None
    if "renewal_date" in fields:
        body["Renewal_Date__c"] = update.renewal_date.isoformat() if update.renewal_date else None
    if "health_score" in fields:
        body["Health_Score__c"] = update.health_score
    body.update(update.extra)
    return body
