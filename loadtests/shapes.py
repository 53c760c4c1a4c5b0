"""Locust LoadTestShape classes, one per profile (loadtests/profiles.py), read from the load plan.

Locust runs the first shape class it finds in the locustfile, so loadtests/locustfile.py exposes only the
shape the plan names (`shape_for(plan)`).
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests.plan import CONTROL_USERS, Plan


class PlannedShape(LoadTestShape):
    """Follows the plan's stages; spawn rate high enough to reach each tick's target within about a second."""

    abstract = True
    plan: Plan

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        users = self.plan.users_at(t)
        if users is None:
            return None
        users += CONTROL_USERS  # the clock and echo users (fixed_count 1 each) count in Locust's total
        current = self.get_current_user_count() if self.runner is not None else 0
        return users, float(max(1, abs(users - current)))


class month_end_invoice_run(PlannedShape):  # lower case: the names the CLI takes
    abstract = False


class quarter_end_renewals(PlannedShape):
    abstract = False


class migration_backfill(PlannedShape):
    abstract = False


SHAPES: dict[str, type[PlannedShape]] = {
    "month_end_invoice_run": month_end_invoice_run,
    "quarter_end_renewals": quarter_end_renewals,
    "migration_backfill": migration_backfill,
}


def shape_for(plan: Plan) -> type[PlannedShape]:
    shape = SHAPES[plan.shape]
    shape.plan = plan
    return shape
