"""The load plan: what `lockstep load` hands to every Locust process (master and workers) as one JSON file.

The runner (loadtests/run.py) builds the sandbox's estate, then writes the plan and points Locust at it with
`LOCKSTEP_LOAD_PLAN=<path>`. The plan carries everything a user class needs (URLs, credentials, the estate's
record ids, the seed) and the shape's timetable, so master and workers agree on the stages without talking.
Pure data and pure functions: no Locust or gevent import here (the runner imports it too).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PLAN_ENV = "LOCKSTEP_LOAD_PLAN"
LOAD_CORRELATION_PREFIX = "load-"  # every load request carries X-Correlation-Id: load-...; the core's never do
CONTROL_USERS = 2  # MonthEndClockUser + EchoUser, one each (Locust fixed_count)
MONTH_END_ADVANCE_S = 32 * 86_400  # one renewal of every monthly subscription (as bench/burst.py)


@dataclass(frozen=True)
class Stage:
    """Until `until_s` into the run: `users` from the stage's start (a step), or with `ramp`, a linear ramp from
    the previous stage's users to `users`."""

    name: str
    until_s: float
    users: int
    ramp: bool = False
    echo: bool = False  # retries and webhook redeliveries on (the echo of a burst)


@dataclass
class Plan:
    shape: str
    users: int  # peak users
    duration_s: float
    seed: int
    urls: dict[str, str]
    keys: dict[str, str]  # the core-wired tenant of each mock
    admin_token: str
    accounts: list[dict[str, str]] = field(default_factory=list)  # account, crm_account, erp_customer, ...
    stages: list[Stage] = field(default_factory=list)
    tick_at_s: float | None = None  # when the clock user moves billing's clock (None: no invoice run)
    tick_to: float | None = None  # billing's sandbox clock target (epoch s): idempotent, `to` not `by`
    mix: dict[str, int] = field(default_factory=dict)  # user class name -> weight

    def dump(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: Path) -> Plan:
        raw: dict[str, Any] = json.loads(path.read_text())
        raw["stages"] = [Stage(**s) for s in raw.get("stages", [])]
        return cls(**raw)

    @classmethod
    def from_env(cls) -> Plan:
        path = os.environ.get(PLAN_ENV)
        if not path:
            raise RuntimeError(f"{PLAN_ENV} is not set: run the load tests with `lockstep load SHAPE`")
        return cls.load(Path(path))

    def stage_at(self, t: float) -> Stage | None:
        return next((s for s in self.stages if t < s.until_s), None)

    def users_at(self, t: float) -> int | None:
        """Target user count `t` s into the run (linear within a ramp stage); None once the run is over."""
        start_t, start_users = 0.0, (self.stages[0].users if self.stages else 0)
        for stage in self.stages:
            if t < stage.until_s and not stage.ramp:
                return max(1, stage.users)
            if t < stage.until_s:
                span = stage.until_s - start_t
                frac = (t - start_t) / span if span > 0 else 1.0
                return max(1, round(start_users + (stage.users - start_users) * frac))
            start_t, start_users = stage.until_s, stage.users
        return None

    def echo_at(self, t: float) -> bool:
        stage = self.stage_at(t)
        return bool(stage and stage.echo)
