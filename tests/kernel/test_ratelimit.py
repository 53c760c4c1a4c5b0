"""RateLimiter: each policy kind, windows, sliding behaviour, isolation between policies, state."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import ValidationError

from mocks.kernel.ratelimit import DAY_S, RateLimiter, RateLimitPolicy, route_matcher


class FakeClock:
    """A mutable time source: tests move it by hand instead of sleeping."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def limiter(*policies: RateLimitPolicy, t: float = 1000.0) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock(t)
    return RateLimiter(list(policies), now=clock), clock


def admit_n(rl: RateLimiter, n: int, method: str = "GET", path: str = "/x") -> int:
    return sum(rl.acquire(method, path).allowed for _ in range(n))


# ---- fixed ----


def test_fixed_admits_limit_then_refuses_until_window_edge() -> None:
    rl, clock = limiter(RateLimitPolicy(name="f", kind="fixed", limit=3, window_s=10), t=1002.5)
    assert admit_n(rl, 3) == 3
    refusal = rl.acquire("GET", "/x")
    assert not refusal.allowed
    assert refusal.policy is not None and refusal.policy.name == "f"
    # Windows are aligned on multiples of 10 s: [1000, 1010).
    assert refusal.retry_after == pytest.approx(7.5)
    assert refusal.usage == {"f": (3, 3)}
    clock.t = 1009.999
    assert not rl.acquire("GET", "/x").allowed
    clock.t = 1010.0
    assert admit_n(rl, 4) == 3


def test_fixed_window_resets_after_idle_gap() -> None:
    rl, clock = limiter(RateLimitPolicy(name="f", kind="fixed", limit=2, window_s=1), t=5.0)
    assert admit_n(rl, 3) == 2
    clock.t = 42.25  # many windows later
    first = rl.acquire("GET", "/x")
    assert first.allowed and first.usage == {"f": (1, 2)}
    assert admit_n(rl, 2) == 1
    assert rl.acquire("GET", "/x").retry_after == pytest.approx(0.75)


def test_fixed_window_edges_survive_float_arithmetic() -> None:
    # 0.1-wide windows: 0.1 * k is inexact in binary; the window must still turn over exactly at the edge.
    rl, clock = limiter(RateLimitPolicy(name="f", kind="fixed", limit=1, window_s=0.1), t=0.0)
    for k in range(1, 50):
        clock.t = 0.1 * k
        assert rl.acquire("GET", "/x").allowed, k
        assert not rl.acquire("GET", "/x").allowed, k


# ---- rolling ----


def test_rolling_admits_limit_then_refuses_with_time_until_oldest_expires() -> None:
    rl, clock = limiter(RateLimitPolicy(name="r", kind="rolling", limit=3, window_s=10), t=100.0)
    assert rl.acquire("GET", "/x").allowed  # t=100
    clock.t = 104.0
    assert admit_n(rl, 2) == 2  # t=104
    clock.t = 105.0
    refusal = rl.acquire("GET", "/x")
    assert not refusal.allowed
    assert refusal.retry_after == pytest.approx(5.0)  # the t=100 request leaves the window at 110
    clock.t = 110.0
    assert rl.acquire("GET", "/x").allowed
    refusal = rl.acquire("GET", "/x")
    assert not refusal.allowed and refusal.retry_after == pytest.approx(4.0)  # next expiry: 114


def test_rolling_is_truly_sliding_unlike_fixed() -> None:
    # A fixed window would admit a burst of 2*limit across an aligned edge; a rolling one must not.
    rl, clock = limiter(RateLimitPolicy(name="r", kind="rolling", limit=5, window_s=1), t=10.9)
    assert admit_n(rl, 5) == 5
    clock.t = 11.1  # a fixed 1 s window would have reset at 11.0
    assert admit_n(rl, 5) == 0
    clock.t = 11.9
    assert admit_n(rl, 5) == 5


def test_rolling_never_exceeds_limit_in_any_window_span() -> None:
    window, limit = 2.0, 4
    rl, clock = limiter(RateLimitPolicy(name="r", kind="rolling", limit=limit, window_s=window), t=0.0)
    admitted: list[float] = []
    for step in range(400):
        clock.t = step * 0.125  # 8 attempts per second: well over the limit
        if rl.acquire("GET", "/x").allowed:
            admitted.append(clock.t)
    for i, start in enumerate(admitted):
        in_span = [t for t in admitted[i:] if t < start + window]
        assert len(in_span) <= limit
    # ...and it is not stingier than it must be: 4 per 2 s over 50 s.
    assert len(admitted) == 100


# ---- daily ----


def test_daily_quota_resets_at_day_boundary_and_ignores_window() -> None:
    start = 20_000 * DAY_S + 3600.0  # 01:00 on some day
    rl, clock = limiter(RateLimitPolicy(name="d", kind="daily", limit=5, window_s=1.0), t=start)
    assert admit_n(rl, 5) == 5
    clock.t = start + 10.0  # window_s=1 must not matter
    refusal = rl.acquire("GET", "/x")
    assert not refusal.allowed
    assert refusal.retry_after == pytest.approx(DAY_S - 3610.0)
    clock.t = 20_001 * DAY_S - 0.5
    assert not rl.acquire("GET", "/x").allowed
    clock.t = 20_001 * DAY_S
    assert admit_n(rl, 6) == 5


# ---- concurrency ----


def test_concurrency_admits_limit_in_flight_and_release_frees_a_slot() -> None:
    rl, _ = limiter(RateLimitPolicy(name="c", kind="concurrency", limit=2))
    a = rl.acquire("POST", "/x")
    b = rl.acquire("POST", "/x")
    assert a.allowed and b.allowed
    assert b.usage == {"c": (2, 2)}
    refusal = rl.acquire("POST", "/x")
    assert not refusal.allowed
    assert refusal.policy is not None and refusal.policy.kind == "concurrency"
    assert refusal.retry_after is None
    rl.release(a)
    assert rl.usage() == {"c": (1, 2)}
    c = rl.acquire("POST", "/x")
    assert c.allowed
    assert not rl.acquire("POST", "/x").allowed


def test_release_is_idempotent_and_refusals_hold_nothing() -> None:
    rl, _ = limiter(RateLimitPolicy(name="c", kind="concurrency", limit=2))
    a = rl.acquire("GET", "/x")
    rl.acquire("GET", "/x")
    refusal = rl.acquire("GET", "/x")
    rl.release(refusal)
    assert rl.usage() == {"c": (2, 2)}
    rl.release(a)
    rl.release(a)  # a middleware releasing in two code paths must not free someone else's slot
    assert rl.usage() == {"c": (1, 2)}


# ---- several policies ----


def test_refusal_by_one_policy_does_not_consume_another() -> None:
    rl, clock = limiter(
        RateLimitPolicy(name="burst", kind="fixed", limit=2, window_s=1),
        RateLimitPolicy(name="daily", kind="daily", limit=100),
        RateLimitPolicy(name="conc", kind="concurrency", limit=10),
        t=500.0,
    )
    assert admit_n(rl, 10) == 2  # 8 refused by "burst"
    usage = rl.usage()
    assert usage["daily"] == (2, 100)
    assert usage["burst"] == (2, 2)
    # Refused requests hold no concurrency slot (the 2 admitted ones were never released).
    assert usage["conc"] == (2, 10)
    clock.t = 501.0
    assert rl.acquire("GET", "/x").usage == {"burst": (1, 2), "daily": (3, 100), "conc": (3, 10)}


def test_refusal_reports_the_longest_wait() -> None:
    rl, _ = limiter(
        RateLimitPolicy(name="sec", kind="fixed", limit=1, window_s=1),
        RateLimitPolicy(name="min", kind="fixed", limit=1, window_s=60),
        t=120.0,
    )
    assert rl.acquire("GET", "/x").allowed
    refusal = rl.acquire("GET", "/x")
    assert refusal.policy is not None and refusal.policy.name == "min"
    assert refusal.retry_after == pytest.approx(60.0)


def test_time_refusal_outranks_concurrency_refusal() -> None:
    rl, _ = limiter(
        RateLimitPolicy(name="conc", kind="concurrency", limit=1),
        RateLimitPolicy(name="quota", kind="daily", limit=1),
        t=DAY_S * 3,
    )
    assert rl.acquire("GET", "/x").allowed
    refusal = rl.acquire("GET", "/x")
    assert refusal.policy is not None and refusal.policy.name == "quota"
    assert refusal.retry_after == pytest.approx(DAY_S)


# ---- routes ----


@pytest.mark.parametrize(
    ("route", "method", "path", "expected"),
    [
        (None, "GET", "/anything", True),
        ("*", "DELETE", "/a/b", True),
        ("/v1/customers*", "GET", "/v1/customers/cus_1", True),
        ("/v1/customers*", "GET", "/v1/invoices", False),
        ("/v1/*/search", "GET", "/v1/customers/search", True),
        ("POST /v1/*", "post", "/v1/charges", True),
        ("POST /v1/*", "GET", "/v1/charges", False),
        ("* /v1/charges", "PATCH", "/v1/charges", True),
        ("/services/data/v??.0/query", "GET", "/services/data/v59.0/query", True),
        ("/services/data/v??.0/query", "GET", "/services/data/v59.0/queryAll", False),
        ("/V1/customers", "GET", "/v1/customers", False),  # paths are case-sensitive
    ],
)
def test_route_matcher(route: str | None, method: str, path: str, expected: bool) -> None:
    assert route_matcher(route)(method, path) is expected


def test_policies_apply_only_to_matching_routes() -> None:
    rl, _ = limiter(
        RateLimitPolicy(name="search", kind="fixed", limit=1, window_s=60, route="GET /v1/*/search"),
        RateLimitPolicy(name="all", kind="fixed", limit=3, window_s=60),
    )
    assert rl.acquire("GET", "/v1/customers/search").usage == {"search": (1, 1), "all": (1, 3)}
    refusal = rl.acquire("GET", "/v1/customers/search")
    assert not refusal.allowed and refusal.policy is not None and refusal.policy.name == "search"
    other = rl.acquire("GET", "/v1/customers")
    assert other.allowed and other.usage == {"all": (2, 3)}


def test_no_matching_policy_is_allowed_with_empty_usage() -> None:
    rl, _ = limiter(RateLimitPolicy(name="p", kind="fixed", limit=1, route="/only"))
    for _ in range(3):
        adm = rl.acquire("GET", "/elsewhere")
        assert adm.allowed and adm.usage == {} and adm.policy is None


# ---- configuration ----


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "p", "kind": "fixed", "limit": 0},
        {"name": "p", "kind": "fixed", "limit": 1, "window_s": 0},
        {"name": "p", "kind": "sliding", "limit": 1},
        {"name": "", "kind": "fixed", "limit": 1},
        {"name": "p", "kind": "fixed", "limit": 1, "route": "v1/customers"},
        {"name": "p", "kind": "fixed", "limit": 1, "route": "G3T /x"},
        {"name": "p", "kind": "fixed", "limit": 1, "windows": 2},
    ],
)
def test_policy_validation(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RateLimitPolicy.model_validate(bad)


def test_policy_round_trips_as_json() -> None:
    p = RateLimitPolicy(name="p", kind="rolling", limit=200, window_s=60, route="/api/*")
    assert RateLimitPolicy.model_validate_json(p.model_dump_json()) == p


def test_duplicate_policy_names_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        limiter(
            RateLimitPolicy(name="p", kind="fixed", limit=1),
            RateLimitPolicy(name="p", kind="daily", limit=1),
        )


def test_set_policies_switches_at_runtime_and_keeps_counts_of_same_shape() -> None:
    rl, _ = limiter(
        RateLimitPolicy(name="q", kind="daily", limit=10),
        RateLimitPolicy(name="f", kind="fixed", limit=10, window_s=60),
    )
    assert admit_n(rl, 4) == 4
    rl.set_policies(
        [
            RateLimitPolicy(name="q", kind="daily", limit=5),  # lowered quota: the 4 already used still count
            RateLimitPolicy(name="f", kind="fixed", limit=10, window_s=30),  # new window: fresh counter
        ]
    )
    assert [p.limit for p in rl.policies()] == [5, 10]
    assert rl.usage() == {"q": (4, 5), "f": (0, 10)}
    assert admit_n(rl, 3) == 1


def test_set_policies_accepts_dicts_from_the_control_api() -> None:
    rl, _ = limiter()
    rl.set_policies([{"name": "c", "kind": "concurrency", "limit": 1}])  # type: ignore[list-item]
    assert rl.acquire("GET", "/x").allowed
    assert not rl.acquire("GET", "/x").allowed


def test_lowering_a_rolling_limit_waits_for_enough_expiries() -> None:
    rl, clock = limiter(RateLimitPolicy(name="r", kind="rolling", limit=4, window_s=10), t=0.0)
    for t in (0.0, 1.0, 2.0, 3.0):
        clock.t = t
        assert rl.acquire("GET", "/x").allowed
    rl.set_policies([RateLimitPolicy(name="r", kind="rolling", limit=2, window_s=10)])
    clock.t = 4.0
    refusal = rl.acquire("GET", "/x")
    assert not refusal.allowed
    # 4 in the log, limit 2: admit once 3 have expired, i.e. when the t=2 entry leaves at 12.
    assert refusal.retry_after == pytest.approx(8.0)


def test_reset_counters_zeroes_everything() -> None:
    rl, _ = limiter(
        RateLimitPolicy(name="d", kind="daily", limit=2),
        RateLimitPolicy(name="c", kind="concurrency", limit=5),
    )
    held = rl.acquire("GET", "/x")
    assert admit_n(rl, 2) == 1
    rl.reset_counters()
    assert rl.usage() == {"d": (0, 2), "c": (0, 5)}
    rl.release(held)  # a slot from before the reset must not drive the new counter negative
    assert rl.usage() == {"d": (0, 2), "c": (0, 5)}
    assert admit_n(rl, 3) == 2


# ---- dump / load ----


def test_dump_load_keeps_policies_and_counters_through_json() -> None:
    policies = [
        RateLimitPolicy(name="d", kind="daily", limit=10),
        RateLimitPolicy(name="f", kind="fixed", limit=5, window_s=60),
        RateLimitPolicy(name="r", kind="rolling", limit=3, window_s=10, route="POST *"),
        RateLimitPolicy(name="c", kind="concurrency", limit=5),
    ]
    rl, clock = limiter(*policies, t=DAY_S * 100 + 10.0)
    assert admit_n(rl, 3, method="POST") == 3
    snapshot = json.loads(json.dumps(rl.dump()))

    restored, clock2 = limiter(RateLimitPolicy(name="other", kind="fixed", limit=1), t=clock.t + 1)
    restored.load(snapshot)
    assert restored.policies() == policies
    # Concurrency is in-flight state, not restored; the window and quota counters are.
    assert restored.usage() == {"d": (3, 10), "f": (3, 5), "r": (3, 3), "c": (0, 5)}
    refusal = restored.acquire("POST", "/x")
    assert not refusal.allowed and refusal.policy is not None and refusal.policy.name == "r"
    assert refusal.retry_after == pytest.approx(9.0)
    clock2.t += 60  # past both the fixed and rolling windows; the daily quota still remembers
    assert restored.usage() == {"d": (3, 10), "f": (0, 5), "r": (0, 3), "c": (0, 5)}


def test_load_of_stale_snapshot_starts_a_new_day() -> None:
    rl, clock = limiter(RateLimitPolicy(name="d", kind="daily", limit=2), t=DAY_S * 10)
    admit_n(rl, 2)
    snapshot = rl.dump()
    clock.t = DAY_S * 11 + 5
    rl.load(snapshot)
    assert rl.usage() == {"d": (0, 2)}


def test_load_empty_keeps_policies_with_fresh_counters() -> None:
    rl, _ = limiter(RateLimitPolicy(name="d", kind="daily", limit=2))
    admit_n(rl, 2)
    rl.load({})
    assert rl.usage() == {"d": (0, 2)}


# ---- speed ----


def test_acquire_fast_path_is_microseconds() -> None:
    rl, _ = limiter(
        RateLimitPolicy(name="f", kind="fixed", limit=10**9, window_s=1),
        RateLimitPolicy(name="d", kind="daily", limit=10**9, route="/v1/*"),
        RateLimitPolicy(name="c", kind="concurrency", limit=10**9),
    )
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        rl.release(rl.acquire("GET", "/v1/customers"))
    per_call = (time.perf_counter() - start) / n
    # Generous bound so slow CI does not flake; typical is a few microseconds.
    assert per_call < 50e-6, per_call


def test_route_cache_stays_bounded_with_id_bearing_paths() -> None:
    rl, _ = limiter(RateLimitPolicy(name="f", kind="fixed", limit=10**9, route="/v1/customers/*"))
    for i in range(10_000):
        assert rl.acquire("GET", f"/v1/customers/cus_{i}").usage["f"][0] == i + 1
    assert len(rl._route_cache) <= 4096


def test_set_policies_takes_effect_for_already_seen_routes() -> None:
    rl, _ = limiter(RateLimitPolicy(name="a", kind="fixed", limit=100, window_s=60))
    assert rl.acquire("GET", "/x").usage == {"a": (1, 100)}
    rl.set_policies([RateLimitPolicy(name="b", kind="fixed", limit=1, window_s=60, route="/x")])
    assert rl.acquire("GET", "/x").usage == {"b": (1, 1)}
    assert not rl.acquire("GET", "/x").allowed
