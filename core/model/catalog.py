"""The canonical entities by name: the one vocabulary shared by the crosswalk and the ownership matrix."""

from __future__ import annotations

from core.model.base import CanonicalModel
from core.model.billing import Invoice, Payment, Subscription
from core.model.party import Account, Contact
from core.model.sales import Contract, Opportunity, Order
from core.model.success import Entitlement, HealthScore, OnboardingMilestone

MODELS: tuple[type[CanonicalModel], ...] = (
    Account,
    Contact,
    Opportunity,
    Order,
    Contract,
    Subscription,
    Invoice,
    Payment,
    Entitlement,
    HealthScore,
    OnboardingMilestone,
)
ENTITIES: dict[str, type[CanonicalModel]] = {model.entity: model for model in MODELS}
