"""Canonical statuses. Values are lower snake case; connectors map each vendor's vocabulary onto them."""

from __future__ import annotations

from enum import StrEnum


class AccountStatus(StrEnum):
    PROSPECT = "prospect"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"


class ContactStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class OpportunityStage(StrEnum):
    PROSPECTING = "prospecting"
    QUALIFICATION = "qualification"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    CLOSED_WON = "closed_won"
    CLOSED_LOST = "closed_lost"


class OrderStatus(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class ContractStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    AMENDED = "amended"
    EXPIRED = "expired"
    TERMINATED = "terminated"


class SubscriptionStatus(StrEnum):
    # Stripe's lifecycle, the richest of the four systems; the others map onto it.
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"


class BillingInterval(StrEnum):
    MONTH = "month"
    YEAR = "year"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


class EntitlementStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPIRED = "expired"


class HealthTrend(StrEnum):
    UP = "up"
    FLAT = "flat"
    DOWN = "down"


class MilestoneStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BLOCKED = "blocked"
