"""The locustfile `lockstep load` runs (master and workers): the lifecycle users and the plan's one shape.

Locust takes the first LoadTestShape it finds in this module, so only the shape the plan names is bound here.
Run it through `lockstep load SHAPE` (which builds the estate and writes the plan), not by hand.
"""

from __future__ import annotations

import locust.runners

from loadtests.shapes import shape_for
from loadtests.users import BillingUser, CrmUser, CsUser, EchoUser, ErpUser, MonthEndClockUser, bind, plan

# A shared 2-core machine can starve a worker for seconds; with Locust's default (3 missed 1 s heartbeats) the
# master drops it and, once the last one is gone, ends the run early. Thirty seconds of tolerance.
locust.runners.HEARTBEAT_LIVENESS = 30

_plan = plan()
bind(_plan)
Shape = shape_for(_plan)

__all__ = ["BillingUser", "CrmUser", "CsUser", "EchoUser", "ErpUser", "MonthEndClockUser", "Shape"]
