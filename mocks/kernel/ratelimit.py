"""Rate limits as vendors enforce them: fixed windows, sliding windows, daily quotas, concurrency.

Pure logic, no HTTP. The rate-limit middleware calls `RateLimiter.acquire(method, path)` on every
request, renders a refusal in the vendor's envelope (429 / Salesforce's 403 `REQUEST_LIMIT_EXCEEDED`
...), and calls `release(admission)` when the response is finished so concurrency slots free up.

Policy kinds:
- ``fixed``: at most `limit` requests per aligned window ``[k*window_s, (k+1)*window_s)``.
- ``rolling``: at most `limit` requests in *any* half-open span of `window_s` seconds (exact sliding log:
  one timestamp per admitted request, so memory is O(limit) per policy).
- ``daily``: a quota per day, days aligned on multiples of 86400 s of the injected clock (UTC days when
  the clock is the Unix wall clock).
- ``concurrency``: at most `limit` requests in flight (NetSuite governance); `release()` frees a slot.

Routes are fnmatch-style globs (``*`` also matches ``/``), matched case-sensitively. A pattern with a
space is matched against ``"METHOD /path"`` (method upper-cased), one without against the path alone;
``None`` means every route. The path is the URL path without the query string.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DAY_S",
    "Admission",
    "PolicyKind",
    "RateLimitPolicy",
    "RateLimiter",
    "RouteMatcher",
    "route_matcher",
    "validate_route",
]

DAY_S = 86_400.0
PolicyKind = Literal["fixed", "rolling", "daily", "concurrency"]
RouteMatcher = Callable[[str, str], bool]

# Float arithmetic on window edges (e.g. 0.1 * 3) must not make a window look one step early or late.
_EPS = 1e-9
_CACHE_MAX = 4096
_METHOD_RE = re.compile(r"^[A-Za-z*?\[\]!]+$")


def validate_route(route: str) -> str:
    """Checks a route glob; raises ValueError for one that could never match a request path."""
    route = route.strip()
    if not route:
        raise ValueError("route must not be empty")
    if " " in route:
        method, _, path = route.partition(" ")
        path = path.strip()
        if not _METHOD_RE.match(method):
            raise ValueError(f"route {route!r}: {method!r} is not an HTTP method pattern")
    else:
        path = route
    # Paths always start with "/", so a pattern starting with a letter is a typo that silently never matches.
    if not path or path[0] not in "/*?[":
        raise ValueError(f"route {route!r}: the path pattern must start with '/' or a wildcard")
    return route


@lru_cache(maxsize=1024)
def route_matcher(route: str | None) -> RouteMatcher:
    """A compiled `(method, path) -> bool` for a route glob; cached so nothing compiles per request."""
    if route is None or route.strip() == "*":
        return _match_all
    route = route.strip()
    if " " in route:
        method, _, path = route.partition(" ")
        method_re = re.compile(fnmatch.translate(method.upper())).match
        path_re = re.compile(fnmatch.translate(path.strip())).match

        def match_method_path(method_: str, path_: str) -> bool:
            return method_re(method_.upper()) is not None and path_re(path_) is not None

        return match_method_path
    path_only = re.compile(fnmatch.translate(route)).match

    def match_path(_method: str, path_: str) -> bool:
        return path_only(path_) is not None

    return match_path


def _match_all(_method: str, _path: str) -> bool:
    return True


class RateLimitPolicy(BaseModel):
    """One limit. JSON-able, so the control API can accept it as is."""

    # Frozen: a policy is a value; the limiter keeps its counters elsewhere. Unknown keys are typos.
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    kind: PolicyKind
    limit: int = Field(ge=1)
    # Used by fixed / rolling; daily always uses one day, concurrency has no window.
    window_s: float = Field(default=1.0, gt=0)
    route: str | None = None

    @field_validator("route")
    @classmethod
    def _check_route(cls, value: str | None) -> str | None:
        return None if value is None else validate_route(value)

    @property
    def period_s(self) -> float:
        return DAY_S if self.kind == "daily" else self.window_s


# ---- counters: one object per policy, kept across set_policies() when the policy's shape is unchanged ----


class _Counter:
    __slots__ = ("limit", "name", "policy")

    def __init__(self, policy: RateLimitPolicy) -> None:
        self.policy = policy
        self.name = policy.name
        self.limit = policy.limit

    def full(self, now: float) -> bool:
        raise NotImplementedError

    def take(self, now: float) -> None:
        raise NotImplementedError

    def retry_after(self, now: float) -> float | None:
        raise NotImplementedError

    def used(self) -> int:
        """Usage as of the last `full()` / `refresh()` call."""
        raise NotImplementedError

    def refresh(self, now: float) -> None:
        self.full(now)

    def dump(self) -> dict[str, Any] | None:
        return None

    def load(self, data: dict[str, Any]) -> None:
        return None


class _Fixed(_Counter):
    __slots__ = ("count", "end", "period")

    def __init__(self, policy: RateLimitPolicy) -> None:
        super().__init__(policy)
        self.period = policy.period_s
        self.count = 0
        self.end = -math.inf  # forces a roll on first use

    def _roll(self, now: float) -> None:
        if now + _EPS >= self.end:
            index = math.floor(now / self.period)
            # floor() of a quotient can land one window early at an exact edge; never stay in a past window.
            if (index + 1) * self.period <= now + _EPS:
                index += 1
            self.end = (index + 1) * self.period
            self.count = 0

    def full(self, now: float) -> bool:
        self._roll(now)
        return self.count >= self.limit

    def take(self, now: float) -> None:
        self.count += 1

    def retry_after(self, now: float) -> float:
        return max(0.0, self.end - now)

    def used(self) -> int:
        return self.count

    def dump(self) -> dict[str, Any]:
        return {"count": self.count, "end": self.end if math.isfinite(self.end) else None}

    def load(self, data: dict[str, Any]) -> None:
        end = data.get("end")
        self.end = -math.inf if end is None else float(end)
        self.count = int(data.get("count", 0))


class _Rolling(_Counter):
    __slots__ = ("expiries", "period")

    def __init__(self, policy: RateLimitPolicy) -> None:
        super().__init__(policy)
        self.period = policy.window_s
        # When each admitted request stops counting; appended in time order, so the left end expires first.
        self.expiries: deque[float] = deque()

    def full(self, now: float) -> bool:
        expiries = self.expiries
        while expiries and expiries[0] <= now + _EPS:
            expiries.popleft()
        return len(expiries) >= self.limit

    def take(self, now: float) -> None:
        self.expiries.append(now + self.period)

    def retry_after(self, now: float) -> float:
        # The log may exceed the limit after the limit was lowered: wait until enough entries expire.
        over = len(self.expiries) - self.limit
        return max(0.0, self.expiries[over] - now) if over >= 0 else 0.0

    def used(self) -> int:
        return len(self.expiries)

    def dump(self) -> dict[str, Any]:
        return {"expiries": list(self.expiries)}

    def load(self, data: dict[str, Any]) -> None:
        self.expiries = deque(sorted(float(x) for x in data.get("expiries", [])))


class _Concurrency(_Counter):
    __slots__ = ("in_flight",)

    def __init__(self, policy: RateLimitPolicy) -> None:
        super().__init__(policy)
        self.in_flight = 0

    def full(self, now: float) -> bool:
        return self.in_flight >= self.limit

    def take(self, now: float) -> None:
        self.in_flight += 1

    def release(self) -> None:
        if self.in_flight > 0:
            self.in_flight -= 1

    def retry_after(self, now: float) -> None:
        return None  # a slot frees when some request finishes; no time can be promised

    def used(self) -> int:
        return self.in_flight


def _new_counter(policy: RateLimitPolicy) -> _Counter:
    if policy.kind == "rolling":
        return _Rolling(policy)
    if policy.kind == "concurrency":
        return _Concurrency(policy)
    return _Fixed(policy)  # fixed and daily differ only in period


def _same_shape(a: RateLimitPolicy, b: RateLimitPolicy) -> bool:
    """Counters survive a policy update that only changes limit or route (e.g. a quota lowered at runtime)."""
    return a.kind == b.kind and a.period_s == b.period_s


@dataclass(eq=False)
class Admission:
    """The limiter's verdict on one request.

    `policy` is the policy that refused (None when allowed); `retry_after` is how long until it would
    admit (None when allowed, and for concurrency, where it depends on other requests finishing).
    `usage` maps each policy that applies to this request to (used, limit), counting this request
    when it was admitted: what headers like Salesforce's `Sforce-Limit-Info` report.
    """

    allowed: bool
    policy: RateLimitPolicy | None = None
    retry_after: float | None = None
    usage: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Concurrency slots this request holds; release() frees them once.
    _slots: tuple[_Concurrency, ...] = field(default=(), repr=False)


class RateLimiter:
    """Per-tenant limiter over a list of policies, driven by an injected clock `now()` in seconds."""

    def __init__(self, policies: Iterable[RateLimitPolicy], now: Callable[[], float]) -> None:
        self._now = now
        self._counters: list[_Counter] = []
        # (method, path) -> the counters whose route matches; cleared when policies change.
        self._route_cache: dict[tuple[str, str], tuple[_Counter, ...]] = {}
        self.set_policies(policies)

    # ---- configuration ----

    def set_policies(self, policies: Iterable[RateLimitPolicy]) -> None:
        """Replace the policies. A policy keeping its name, kind and window keeps its counters."""
        parsed = [RateLimitPolicy.model_validate(p) for p in policies]
        names = [p.name for p in parsed]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate rate-limit policy names: {dupes}")
        old = {c.name: c for c in self._counters}
        counters: list[_Counter] = []
        for policy in parsed:
            counter = old.get(policy.name)
            if counter is not None and _same_shape(counter.policy, policy):
                counter.policy = policy
                counter.limit = policy.limit
            else:
                counter = _new_counter(policy)
            counters.append(counter)
        self._counters = counters
        self._route_cache = {}

    def policies(self) -> list[RateLimitPolicy]:
        return [c.policy for c in self._counters]

    # ---- the hot path ----

    def _matching(self, method: str, path: str) -> tuple[_Counter, ...]:
        key = (method, path)
        hit = self._route_cache.get(key)
        if hit is None:
            hit = tuple(c for c in self._counters if route_matcher(c.policy.route)(method, path))
            # Paths carry ids, so the cache is unbounded in principle: start over rather than grow.
            if len(self._route_cache) >= _CACHE_MAX:
                self._route_cache.clear()
            self._route_cache[key] = hit
        return hit

    def acquire(self, method: str, path: str) -> Admission:
        """Admit or refuse one request. It counts against every matching policy only when all admit it."""
        counters = self._matching(method, path)
        if not counters:
            return Admission(True)
        now = self._now()
        refused: _Counter | None = None
        refused_after: float | None = None
        for counter in counters:
            # Check every policy (not just until the first refusal) so the reported wait is the longest one.
            if counter.full(now):
                after = counter.retry_after(now)
                # A timed wait outranks concurrency's None: retrying before it elapses is pointless.
                longer = after is not None and (refused_after is None or after > refused_after)
                if refused is None or longer:
                    refused, refused_after = counter, after
        if refused is not None:
            return Admission(
                False,
                refused.policy,
                refused_after,
                {c.name: (c.used(), c.limit) for c in counters},
            )
        slots: list[_Concurrency] = []
        for counter in counters:
            counter.take(now)
            if isinstance(counter, _Concurrency):
                slots.append(counter)
        return Admission(True, None, None, {c.name: (c.used(), c.limit) for c in counters}, tuple(slots))

    def release(self, admission: Admission) -> None:
        """Free the concurrency slots an admission holds. Safe to call twice, or on a refusal."""
        slots, admission._slots = admission._slots, ()
        for slot in slots:
            slot.release()

    # ---- inspection and state ----

    def usage(self) -> dict[str, tuple[int, int]]:
        now = self._now()
        out: dict[str, tuple[int, int]] = {}
        for counter in self._counters:
            counter.refresh(now)
            out[counter.name] = (counter.used(), counter.limit)
        return out

    def reset_counters(self) -> None:
        """Zero every counter. In-flight requests released afterwards are ignored (never below zero)."""
        self._counters = [_new_counter(c.policy) for c in self._counters]
        self._route_cache = {}

    def dump(self) -> dict[str, Any]:
        """Policies and window / quota counters, JSON-able. In-flight counts are not state worth restoring."""
        counters: dict[str, Any] = {}
        for counter in self._counters:
            data = counter.dump()
            if data is not None:
                counters[counter.name] = data
        return {"policies": [c.policy.model_dump() for c in self._counters], "counters": counters}

    def load(self, data: dict[str, Any]) -> None:
        """Restore from `dump()`. An empty dict keeps the current policies with fresh counters."""
        if "policies" in data:
            self._counters = []  # fresh counters: the snapshot's are applied below
            self.set_policies(RateLimitPolicy.model_validate(p) for p in data["policies"])
        else:
            self.reset_counters()
        saved = data.get("counters", {})
        for counter in self._counters:
            if counter.name in saved:
                counter.load(saved[counter.name])
