"""The canonical model: one shape per business object, whichever system of record it came from."""

from core.model.base import BOOKKEEPING_FIELDS, SYSTEMS, CanonicalModel, SourceRef, System
from core.model.billing import Invoice, InvoiceLine, Payment, Subscription, SubscriptionItem
from core.model.catalog import ENTITIES, MODELS
from core.model.enums import (
    AccountStatus,
    BillingInterval,
    ContactStatus,
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
from core.model.ids import PREFIXES, CanonicalId, IdSource, entity_of
from core.model.money import CurrencyMismatchError, Money
from core.model.party import Account, Contact
from core.model.sales import Contract, Opportunity, Order, OrderLine
from core.model.success import Entitlement, HealthScore, OnboardingMilestone

__all__ = [
    "BOOKKEEPING_FIELDS",
    "ENTITIES",
    "MODELS",
    "PREFIXES",
    "SYSTEMS",
    "Account",
    "AccountStatus",
    "BillingInterval",
    "CanonicalId",
    "CanonicalModel",
    "Contact",
    "ContactStatus",
    "Contract",
    "ContractStatus",
    "CurrencyMismatchError",
    "Entitlement",
    "EntitlementStatus",
    "HealthScore",
    "HealthTrend",
    "IdSource",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "MilestoneStatus",
    "Money",
    "OnboardingMilestone",
    "Opportunity",
    "OpportunityStage",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Payment",
    "PaymentStatus",
    "SourceRef",
    "Subscription",
    "SubscriptionItem",
    "SubscriptionStatus",
    "System",
    "entity_of",
]
