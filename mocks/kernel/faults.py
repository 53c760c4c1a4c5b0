"""Seeded fault injection: an ordered rule list, first match wins (STYLE point 6).

Pure logic, no HTTP. The fault middleware asks `FaultPlan.pick(method, path)` once per request and acts
on the returned `FaultDecision`; it records `decision.to_dict()` in the request journal so every injected
fault is visible there.

How a rule is chosen: rules are tried in order. A rule is *eligible* when its route glob (the rule of
`mocks.kernel.ratelimit.route_matcher`) and its `method` match. An eligible rule first skips its first
`after_n` eligible requests, then stops once it has injected `max_hits` faults, then fires with
`probability`. A rule that matches but does not fire lets the next rule try, so "error 10% of the time,
otherwise add 200 ms" is two rules. Rolls come from a `random.Random` owned by the plan: the same seed
and the same request sequence give the same faults. A roll is drawn only for 0 < probability < 1 (and
jitter only when it is non-zero), so adding an always/never rule does not shift the other rules' rolls.

What the middleware does with each kind (all delays are real time, `asyncio.sleep`, not the sandbox
clock: the client's own timeouts run on the wall clock):
- ``latency``: sleep `delay_s`, then pass the request on unchanged.
- ``error``: sleep `delay_s`, then answer `status` in the vendor's error envelope without calling the
  routes (`KernelRejection("fault", message, status, code=error_code)`); `message` / `error_code` default
  to the vendor's usual ones for that status when None.
- ``timeout``: hold the request `delay_s` (= `timeout_s`) without answering, then drop it as below.
  Clients with a shorter timeout give up first; that is the point. Stop waiting early if `receive()`
  yields `http.disconnect`.
- ``drop``: sleep `delay_s`, then close the connection without sending a response, so the client sees a
  connection error (requests: `ConnectionError`, which stripe-python retries; httpx:
  `RemoteProtocolError: Server disconnected without sending a response`). Plain ASGI cannot do this:
  uvicorn answers 500 when an app raises or returns before `http.response.start`. So:
    1. Served by uvicorn: run it with a small `H11Protocol` / `HttpToolsProtocol` subclass (`--http
       module:Class`) that wraps `self.app` per connection to put a callable in
       `scope["extensions"]["lockstep.abort"]` which calls `self.transport.abort()`. The middleware calls
       it and returns without sending anything.
    2. No such extension (another server): send `http.response.start` (status 200, a non-zero
       `content-length`) and then raise; uvicorn / hypercorn then close the transport mid-response, which
       clients report as an incomplete read: the nearest pure-ASGI drop.
    3. In-process tests (`httpx.ASGITransport`, which re-raises app exceptions): raise
       `httpx.RemoteProtocolError("Server disconnected without sending a response.")` so the client sees
       what it would over a socket.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mocks.kernel.ratelimit import route_matcher, validate_route

__all__ = ["FaultDecision", "FaultKind", "FaultPlan", "FaultRule"]

FaultKind = Literal["latency", "error", "timeout", "drop"]


class FaultRule(BaseModel):
    """One fault rule. JSON-able, so the control API can accept it as is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Assigned by the plan ("f1", "f2", ...) when None, so hits can be reported and rules removed by id.
    id: str | None = Field(default=None, min_length=1)
    route: str = "*"
    method: str | None = None
    kind: FaultKind
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    # Any kind may be delayed first (an error after 2 s is a realistic failure); timeout uses timeout_s.
    latency_ms: float = Field(default=0.0, ge=0.0)
    latency_jitter_ms: float = Field(default=0.0, ge=0.0)
    status: int = Field(default=500, ge=400, le=599)
    error_code: str | None = None
    message: str | None = None
    timeout_s: float = Field(default=30.0, gt=0.0)
    max_hits: int | None = Field(default=None, ge=1)
    after_n: int = Field(default=0, ge=0)

    @field_validator("route")
    @classmethod
    def _check_route(cls, value: str) -> str:
        return validate_route(value)

    @field_validator("method")
    @classmethod
    def _upper_method(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        if not value.isalpha():
            raise ValueError(f"method {value!r} is not an HTTP method")
        return value


@dataclass(frozen=True)
class FaultDecision:
    """What to inject into one request; see the module docstring for how the middleware performs it."""

    rule: FaultRule
    kind: FaultKind
    # Seconds to wait before acting (latency + jitter; timeout_s for a timeout).
    delay_s: float
    # HTTP status for an error; None for the other kinds.
    status: int | None = None
    error_code: str | None = None
    message: str | None = None

    @property
    def rule_id(self) -> str:
        return self.rule.id or ""

    @property
    def drops_connection(self) -> bool:
        return self.kind in ("timeout", "drop")

    def to_dict(self) -> dict[str, Any]:
        """The journal's record of this fault."""
        return {
            "rule_id": self.rule_id,
            "kind": self.kind,
            "delay_s": self.delay_s,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
        }


class _RuleState:
    """A rule plus its counters; `seen` counts eligible requests that reached the rule."""

    __slots__ = ("hits", "match", "rule", "seen")

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.match = route_matcher(rule.route)
        self.seen = 0
        self.hits = 0


class FaultPlan:
    """A tenant's ordered fault rules, their hit counters and the seeded RNG that rolls them."""

    def __init__(self, rules: Iterable[FaultRule], seed: int) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._states: list[_RuleState] = []
        self._next_id = 1
        self.set_rules(rules)

    # ---- configuration ----

    def _with_id(self, rule: FaultRule, taken: set[str]) -> FaultRule:
        if rule.id is not None:
            return rule
        while f"f{self._next_id}" in taken:
            self._next_id += 1
        rule = rule.model_copy(update={"id": f"f{self._next_id}"})
        self._next_id += 1
        return rule

    def set_rules(self, rules: Iterable[FaultRule | dict[str, Any]], seed: int | None = None) -> None:
        """Replace all rules, zeroing hit counters. A new `seed` (or the current one) restarts the rolls."""
        parsed = [r if isinstance(r, FaultRule) else FaultRule.model_validate(r) for r in rules]
        explicit = [r.id for r in parsed if r.id is not None]
        if len(set(explicit)) != len(explicit):
            raise ValueError("duplicate fault rule ids")
        taken = set(explicit)
        states: list[_RuleState] = []
        for rule in parsed:
            rule = self._with_id(rule, taken)
            taken.add(rule.id or "")
            states.append(_RuleState(rule))
        self._states = states
        if seed is not None:
            self._seed = seed
        # Restarting the RNG with the rules makes "same seed + same rules + same requests" reproducible.
        self._rng = random.Random(self._seed)

    def rules(self) -> list[FaultRule]:
        return [s.rule for s in self._states]

    def add(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        """Append a rule (last in priority); returns it with its id. The RNG stream is not restarted."""
        parsed = rule if isinstance(rule, FaultRule) else FaultRule.model_validate(rule)
        taken = {s.rule.id or "" for s in self._states}
        if parsed.id is not None and parsed.id in taken:
            raise ValueError(f"duplicate fault rule id {parsed.id!r}")
        parsed = self._with_id(parsed, taken)
        self._states.append(_RuleState(parsed))
        return parsed

    def remove(self, rule_id: str) -> bool:
        before = len(self._states)
        self._states = [s for s in self._states if s.rule.id != rule_id]
        return len(self._states) != before

    def clear(self) -> None:
        self._states = []

    @property
    def seed(self) -> int:
        return self._seed

    def hits(self) -> dict[str, int]:
        return {s.rule.id or "": s.hits for s in self._states}

    # ---- the hot path ----

    def pick(self, method: str, path: str) -> FaultDecision | None:
        """The fault to inject into this request, or None. Updates counters and consumes rolls."""
        if not self._states:
            return None
        method = method.upper()
        for state in self._states:
            rule = state.rule
            if rule.method is not None and rule.method != method:
                continue
            if not state.match(method, path):
                continue
            state.seen += 1
            if state.seen <= rule.after_n:
                continue
            if rule.max_hits is not None and state.hits >= rule.max_hits:
                continue
            p = rule.probability
            if p <= 0.0 or (p < 1.0 and self._rng.random() >= p):
                continue
            state.hits += 1
            return self._decide(rule)
        return None

    def _decide(self, rule: FaultRule) -> FaultDecision:
        if rule.kind == "timeout":
            return FaultDecision(rule, "timeout", rule.timeout_s)
        delay_ms = rule.latency_ms
        if rule.latency_jitter_ms > 0:
            delay_ms += self._rng.uniform(0.0, rule.latency_jitter_ms)
        if rule.kind == "error":
            return FaultDecision(rule, "error", delay_ms / 1000.0, rule.status, rule.error_code, rule.message)
        return FaultDecision(rule, rule.kind, delay_ms / 1000.0)

    # ---- state ----

    def dump(self) -> dict[str, Any]:
        """Rules, counters, seed and the RNG position, JSON-able, so a restored plan continues identically."""
        version, internal, gauss = self._rng.getstate()
        return {
            "seed": self._seed,
            "next_id": self._next_id,
            "rules": [s.rule.model_dump() for s in self._states],
            "counters": {s.rule.id: {"seen": s.seen, "hits": s.hits} for s in self._states},
            "rng": [version, list(internal), gauss],
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore from `dump()`; an empty dict clears the rules and restarts the RNG from the seed."""
        self.set_rules(data.get("rules", []), seed=data.get("seed", self._seed))
        self._next_id = max(self._next_id, int(data.get("next_id", 1)))
        counters = data.get("counters", {})
        for state in self._states:
            saved = counters.get(state.rule.id, {})
            state.seen = int(saved.get("seen", 0))
            state.hits = int(saved.get("hits", 0))
        rng = data.get("rng")
        if rng is not None:
            version, internal, gauss = rng
            self._rng.setstate((version, tuple(internal), gauss))
