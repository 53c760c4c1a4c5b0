"""The three load profiles as timetables (stages, the clock tick, the user mix), scaled to --users / --duration.

Kept free of Locust imports so the runner can build plans; loadtests/shapes.py turns each into a
LoadTestShape. Fractions of the duration, so a 40 s smoke and a 30 min run have the same form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loadtests.plan import Stage


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    stages: Callable[[int, float], list[Stage]]  # (peak users, duration s) -> stages
    tick_fraction: float | None  # when billing's month-end clock tick happens (fraction of duration)
    mix: dict[str, int]  # user class name -> weight
    runs_invoices: bool  # the estate gets monthly subscriptions renewed by the tick


def _baseline(peak: int) -> int:
    return max(1, round(peak / 15))  # the peak is ~15x the baseline (the issue asks for 10-20x)


def month_end_stages(peak: int, d: float) -> list[Stage]:
    base = _baseline(peak)
    return [
        Stage("baseline", 0.15 * d, base),
        Stage("ramp", 0.30 * d, peak, ramp=True),
        Stage("plateau", 0.55 * d, peak),
        Stage("lull", 0.62 * d, max(base, peak // 3)),
        Stage("echo", 0.75 * d, peak, echo=True),  # the spike: every write retried, webhooks redelivered
        Stage("ramp-down", d, base, ramp=True),
    ]


def quarter_end_stages(peak: int, d: float) -> list[Stage]:
    base = _baseline(peak)
    half = max(base, peak // 2)
    return [
        Stage("baseline", 0.10 * d, base),
        Stage("renewal-quotes-ramp", 0.20 * d, half, ramp=True),
        Stage("renewal-quotes", 0.40 * d, half),
        Stage("quarter-close-ramp", 0.50 * d, peak, ramp=True),
        Stage("quarter-close", 0.75 * d, peak),
        Stage("lull", 0.80 * d, max(base, peak // 3)),
        Stage("echo", 0.88 * d, peak, echo=True),
        Stage("ramp-down", d, base, ramp=True),
    ]


def backfill_stages(peak: int, d: float) -> list[Stage]:
    base = _baseline(peak)
    return [
        Stage("warm-up", 0.05 * d, base),
        Stage("ramp", 0.15 * d, peak, ramp=True),
        Stage("backfill", 0.90 * d, peak),
        Stage("ramp-down", d, base, ramp=True),
    ]


PROFILES: dict[str, Profile] = {
    "month_end_invoice_run": Profile(
        "month_end_invoice_run",
        "baseline -> ramp to ~15x -> plateau (billing's clock runs the month's invoices: finalize + pay, webhooks "
        "into the core) -> lull -> echo spike of client retries and webhook redeliveries -> ramp down",
        month_end_stages, 0.30, {"BillingUser": 4, "CrmUser": 2, "ErpUser": 2, "CsUser": 1}, True),
    "quarter_end_renewals": Profile(
        "quarter_end_renewals",
        "renewal quotes in the CRM and health updates in CS ramp up, then the quarter's last month-end invoice run, "
        "an echo spike, ramp down",
        quarter_end_stages, 0.55, {"BillingUser": 2, "CrmUser": 4, "ErpUser": 1, "CsUser": 3}, True),
    "migration_backfill": Profile(
        "migration_backfill",
        "a long flat plateau of paging reads (ERP, CRM SOQL, billing lists) and re-stamping of migrated records; "
        "no invoice run",
        backfill_stages, None, {"BillingUser": 2, "CrmUser": 3, "ErpUser": 4, "CsUser": 1}, False),
}
