"""FaultPlan: ordered first-match rules, seeded reproducible rolls, counters, validation, state."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from mocks.kernel.faults import FaultDecision, FaultPlan, FaultRule

REQUESTS = [("GET", "/v1/customers"), ("POST", "/v1/charges"), ("GET", "/v1/invoices/in_1")] * 100


def kinds(plan: FaultPlan, requests: list[tuple[str, str]] = REQUESTS) -> list[str | None]:
    out: list[str | None] = []
    for method, path in requests:
        d = plan.pick(method, path)
        out.append(None if d is None else f"{d.rule.id}:{d.kind}:{d.delay_s:.6f}")
    return out


def test_no_rules_no_fault() -> None:
    plan = FaultPlan([], seed=1)
    assert plan.pick("GET", "/x") is None
    assert plan.hits() == {}


def test_first_matching_rule_wins() -> None:
    plan = FaultPlan(
        [
            FaultRule(id="charges", route="/v1/charges*", kind="error", status=503),
            FaultRule(id="all", kind="latency", latency_ms=250),
        ],
        seed=0,
    )
    d = plan.pick("POST", "/v1/charges")
    assert d is not None and d.rule.id == "charges" and d.kind == "error" and d.status == 503
    d = plan.pick("GET", "/v1/customers")
    assert d is not None and d.rule.id == "all" and d.kind == "latency"
    assert d.delay_s == pytest.approx(0.25) and d.status is None
    assert plan.hits() == {"charges": 1, "all": 1}


def test_rule_that_does_not_fire_falls_through_to_next() -> None:
    plan = FaultPlan(
        [
            FaultRule(id="never", kind="error", probability=0.0),
            FaultRule(id="slow", kind="latency", latency_ms=10),
        ],
        seed=0,
    )
    for _ in range(20):
        d = plan.pick("GET", "/x")
        assert d is not None and d.rule.id == "slow"


def test_error_decision_carries_vendor_fields() -> None:
    rule = FaultRule(kind="error", status=429, error_code="rate_limit", message="Too many", latency_ms=100)
    d = FaultPlan([rule], seed=0).pick("GET", "/x")
    assert d is not None
    assert d == FaultDecision(d.rule, "error", 0.1, 429, "rate_limit", "Too many")
    assert not d.drops_connection
    assert d.to_dict() == {
        "rule_id": "f1",
        "kind": "error",
        "delay_s": 0.1,
        "status": 429,
        "error_code": "rate_limit",
        "message": "Too many",
    }


def test_timeout_and_drop_decisions() -> None:
    plan = FaultPlan(
        [
            FaultRule(route="/slow", kind="timeout", timeout_s=12, latency_ms=5, latency_jitter_ms=5),
            FaultRule(route="/gone", kind="drop"),
        ],
        seed=0,
    )
    t = plan.pick("GET", "/slow")
    assert t is not None and t.kind == "timeout" and t.delay_s == 12
    assert t.drops_connection and t.status is None
    d = plan.pick("GET", "/gone")
    assert d is not None and d.kind == "drop" and d.delay_s == 0 and d.drops_connection


def test_probability_is_seeded_and_reproducible() -> None:
    rules = [
        FaultRule(id="e", route="POST *", kind="error", probability=0.3),
        FaultRule(id="l", kind="latency", probability=0.5, latency_ms=100, latency_jitter_ms=50),
    ]
    a = kinds(FaultPlan(rules, seed=42))
    b = kinds(FaultPlan(rules, seed=42))
    c = kinds(FaultPlan(rules, seed=43))
    assert a == b
    assert a != c
    fired = [k for k in a if k is not None]
    # Probabilities are honoured roughly (300 requests: well away from 0% and 100%).
    assert 0 < sum(k.startswith("e:") for k in fired) < 100
    assert 50 < sum(k.startswith("l:") for k in fired) < 250


def test_jitter_is_uniform_within_bounds_and_seeded() -> None:
    plan = FaultPlan([FaultRule(kind="latency", latency_ms=100, latency_jitter_ms=50)], seed=7)
    delays = [d.delay_s for d in (plan.pick("GET", "/x") for _ in range(200)) if d is not None]
    assert len(delays) == 200
    assert all(0.1 <= x <= 0.15 for x in delays)
    assert len(set(delays)) > 150  # really varies
    assert min(delays) < 0.11 and max(delays) > 0.14


def test_set_rules_restarts_the_rolls() -> None:
    rules = [FaultRule(id="e", kind="error", probability=0.5)]
    plan = FaultPlan(rules, seed=5)
    first = kinds(plan)
    plan.set_rules(rules)
    assert kinds(plan) == first
    plan.set_rules(rules, seed=6)
    assert plan.seed == 6
    assert kinds(plan) == kinds(FaultPlan(rules, seed=6))


def test_certain_rules_consume_no_rolls() -> None:
    # Adding an always-firing rule for another route must not change which requests the random rule hits.
    random_rule = FaultRule(id="e", route="/a", kind="error", probability=0.5)
    always = FaultRule(id="x", route="/b", kind="latency")
    reqs = [("GET", "/a"), ("GET", "/b")] * 100
    plain = kinds(FaultPlan([random_rule], seed=3), reqs)
    mixed = kinds(FaultPlan([always, random_rule], seed=3), reqs)
    on_a_plain = [k for k, (_, p) in zip(plain, reqs, strict=True) if p == "/a"]
    on_a_mixed = [k for k, (_, p) in zip(mixed, reqs, strict=True) if p == "/a"]
    assert on_a_plain == on_a_mixed
    assert 10 < sum(k is not None for k in on_a_plain) < 90
    on_b_mixed = [k for k, (_, p) in zip(mixed, reqs, strict=True) if p == "/b"]
    assert all(k is not None and k.startswith("x:") for k in on_b_mixed)


def test_max_hits_stops_injecting() -> None:
    plan = FaultPlan([FaultRule(id="e", kind="error", max_hits=3)], seed=0)
    results = [plan.pick("GET", "/x") for _ in range(6)]
    assert [r is not None for r in results] == [True, True, True, False, False, False]
    assert plan.hits() == {"e": 3}


def test_after_n_skips_first_matching_requests() -> None:
    plan = FaultPlan([FaultRule(id="e", route="/v1/*", kind="error", after_n=2, max_hits=2)], seed=0)
    # Non-matching requests do not count towards after_n.
    assert plan.pick("GET", "/other") is None
    results = [plan.pick("GET", "/v1/x") is not None for _ in range(6)]
    assert results == [False, False, True, True, False, False]


def test_method_filter() -> None:
    plan = FaultPlan([FaultRule(id="p", kind="error", method="post")], seed=0)
    assert plan.rules()[0].method == "POST"
    assert plan.pick("GET", "/x") is None
    assert plan.pick("post", "/x") is not None
    assert plan.pick("POST", "/x") is not None
    assert plan.hits() == {"p": 2}


def test_route_with_method_in_glob() -> None:
    plan = FaultPlan([FaultRule(route="DELETE /v1/customers/*", kind="drop")], seed=0)
    assert plan.pick("DELETE", "/v1/customers/cus_1") is not None
    assert plan.pick("GET", "/v1/customers/cus_1") is None
    assert plan.pick("DELETE", "/v1/products/prod_1") is None


def test_ids_assigned_unique_and_rules_editable() -> None:
    plan = FaultPlan([FaultRule(kind="latency"), FaultRule(id="f2", kind="error")], seed=0)
    plan.add(FaultRule(kind="drop"))
    ids = [r.id for r in plan.rules()]
    assert ids[1] == "f2" and len(set(ids)) == 3 and None not in ids
    with pytest.raises(ValueError, match="duplicate"):
        plan.add(FaultRule(id="f2", kind="drop"))
    with pytest.raises(ValueError, match="duplicate"):
        plan.set_rules([FaultRule(id="a", kind="drop"), FaultRule(id="a", kind="error")])
    assert plan.remove("f2") is True and plan.remove("f2") is False
    added = plan.add({"kind": "timeout", "timeout_s": 1})
    assert added.kind == "timeout" and added.id not in ids[1:]
    plan.clear()
    assert plan.rules() == [] and plan.pick("GET", "/x") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "error", "probability": 1.5},
        {"kind": "error", "probability": -0.1},
        {"kind": "explode"},
        {"kind": "error", "status": 200},
        {"kind": "latency", "latency_ms": -1},
        {"kind": "timeout", "timeout_s": 0},
        {"kind": "error", "max_hits": 0},
        {"kind": "error", "after_n": -1},
        {"kind": "error", "route": "customers"},
        {"kind": "error", "method": "G E T"},
        {"kind": "error", "probabilty": 0.5},  # typo'd key is an error, not a silent default
    ],
)
def test_rule_validation(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FaultRule.model_validate(bad)


def test_dump_load_continues_identically() -> None:
    rules = [
        FaultRule(id="e", kind="error", probability=0.4, max_hits=50),
        FaultRule(kind="latency", probability=0.5, latency_ms=10, latency_jitter_ms=20, after_n=3),
    ]
    original = FaultPlan(rules, seed=9)
    kinds(original, REQUESTS[:50])
    snapshot = json.loads(json.dumps(original.dump()))

    restored = FaultPlan([], seed=0)
    restored.load(snapshot)
    assert restored.rules() == original.rules()
    assert restored.hits() == original.hits()
    assert restored.seed == 9
    assert kinds(restored, REQUESTS[50:]) == kinds(original, REQUESTS[50:])
    # New rules after a restore never reuse an id.
    assert restored.add(FaultRule(kind="drop")).id not in {r.id for r in rules}


def test_load_empty_clears() -> None:
    plan = FaultPlan([FaultRule(kind="drop")], seed=1)
    plan.load({})
    assert plan.rules() == [] and plan.pick("GET", "/x") is None
