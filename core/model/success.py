"""How the customer is doing: Entitlement, HealthScore, OnboardingMilestone (customer success)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Self

from pydantic import Field, model_validator

from core.model.base import AccountRef, CanonicalModel, NonEmptyStr, SubscriptionRef, UtcDatetime
from core.model.enums import EntitlementStatus, HealthTrend, MilestoneStatus
from core.model.party import Score


class Entitlement(CanonicalModel):
    entity: ClassVar[str] = "entitlement"

    account_id: AccountRef
    subscription_id: SubscriptionRef | None = None
    feature: NonEmptyStr
    quantity: int = Field(ge=0)
    status: EntitlementStatus = EntitlementStatus.ACTIVE
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class HealthScore(CanonicalModel):
    entity: ClassVar[str] = "health_score"

    account_id: AccountRef
    score: Score
    trend: HealthTrend = HealthTrend.FLAT
    measured_at: UtcDatetime
    # Named sub-scores (usage, support, payment, ...), each 0-100.
    components: dict[NonEmptyStr, Score] = Field(default_factory=dict)


class OnboardingMilestone(CanonicalModel):
    entity: ClassVar[str] = "onboarding_milestone"

    account_id: AccountRef
    name: NonEmptyStr
    sequence: int = Field(ge=1)
    status: MilestoneStatus = MilestoneStatus.NOT_STARTED
    due_date: date
    completed_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _completion(self) -> Self:
        if (self.status is MilestoneStatus.COMPLETED) != (self.completed_at is not None):
            raise ValueError("completed_at is set exactly when the status is 'completed'")
        return self
