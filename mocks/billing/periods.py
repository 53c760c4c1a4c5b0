"""Calendar arithmetic for billing periods and exact proration amounts.

Periods follow Stripe's billing_cycle_anchor rule: the n-th period ends n intervals after the anchor,
clamped to the month's last day (an anchor on Jan 31 renews on Feb 28/29, then Mar 31).
Timestamps are unix seconds; conversion to calendar dates is pure (no wall clock).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from fractions import Fraction

DAY = 86_400
FIXED_SECONDS = {"day": DAY, "week": 7 * DAY}


def add_interval(anchor: int, interval: str, count: int, n: int) -> int:
    """`anchor` moved forward by n * count intervals (calendar-correct for month and year)."""
    if interval in FIXED_SECONDS:
        return anchor + FIXED_SECONDS[interval] * count * n
    months = count * n * (12 if interval == "year" else 1)
    start = datetime.fromtimestamp(anchor, tz=UTC)
    total = start.year * 12 + (start.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def period_end_after(anchor: int, interval: str, count: int, after: int) -> int:
    """The first period boundary (anchor + k intervals, k >= 1) strictly after `after`."""
    n = 1
    while (end := add_interval(anchor, interval, count, n)) <= after:
        n += 1
    return end


def round_half_away(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero (minor units never drift by banker's rounding)."""
    sign = -1 if value < 0 else 1
    return sign * int(abs(value) + Fraction(1, 2))


def prorate(amount: int, start: int, end: int, at: int) -> int:
    """The share of `amount` (for the period start..end) covering at..end, to the nearest minor unit."""
    if end <= start:
        return 0
    remaining = end - min(max(at, start), end)
    return round_half_away(Fraction(amount * remaining, end - start))


def fmt_date(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%d %b %Y")
