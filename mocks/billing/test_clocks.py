"""Test clocks: simulated time for a group of customers, advanced on demand.

Each test clock owns a SandboxClock; customers created with `test_clock` (and their subscriptions,
invoices, payment intents ...) take `created` from it and schedule their jobs on it, so advancing one
clock runs only its customers' work. Advancing is two-step, like Stripe: `advance_test_clock` marks
the clock `advancing`; `complete_test_clock_advance` (the HTTP layer calls it after responding) runs the
due jobs and marks it `ready`.
"""

from __future__ import annotations

from typing import Any

from mocks.billing.base import BillingBase, advancing_error
from mocks.billing.errors import invalid
from mocks.kernel.clock import SandboxClock

DELETES_AFTER_S = 30 * 86_400


class TestClocksMixin(BillingBase):
    def create_test_clock(self, frozen_time: int, name: str | None = None) -> dict[str, Any]:
        if not isinstance(frozen_time, int) or isinstance(frozen_time, bool):
            raise invalid("Missing required param: frozen_time.", "frozen_time", code="parameter_missing")
        now = self._now()
        clock = {
            "id": self._new_id("test_clock"),
            "object": "test_helpers.test_clock",
            "created": now,
            "deletes_after": now + DELETES_AFTER_S,
            "frozen_time": frozen_time,
            "livemode": False,
            "name": name,
            "status": "ready",
            "status_details": {},
        }
        self._test_clocks[clock["id"]] = SandboxClock(frozen_time, runner=self.run_job)
        self.store.put(clock)
        self._emit("test_helpers.test_clock.created", clock)
        return self._out(clock)

    def get_test_clock(self, clock_id: str) -> dict[str, Any]:
        return self._out(self._require("test_clock", clock_id, "test_helpers.test_clock"))

    def list_test_clocks(self) -> list[dict[str, Any]]:
        return [self._out(c) for c in self.store.select("test_clock")]

    def advance_test_clock(self, clock_id: str, frozen_time: int) -> dict[str, Any]:
        clock = self._require("test_clock", clock_id, "test_helpers.test_clock")
        if clock["status"] == "advancing":
            raise advancing_error(clock_id)
        if not isinstance(frozen_time, int) or frozen_time <= clock["frozen_time"]:
            raise invalid("The frozen_time must be after the test clock's current frozen_time.", "frozen_time")
        clock["status"] = "advancing"
        clock["status_details"] = {"advancing": {"target_frozen_time": frozen_time}}
        self._emit("test_helpers.test_clock.advancing", clock)
        return self._out(clock)

    def complete_test_clock_advance(self, clock_id: str) -> dict[str, Any]:
        """Run everything due on the clock up to its target time, in order, then mark it `ready`."""
        clock = self._require("test_clock", clock_id, "test_helpers.test_clock")
        if clock["status"] != "advancing":
            return self._out(clock)
        target = clock["status_details"]["advancing"]["target_frozen_time"]
        self._test_clocks[clock_id].advance(target)
        clock.update(frozen_time=target, status="ready", status_details={})
        self._emit("test_helpers.test_clock.ready", clock)
        return self._out(clock)

    def delete_test_clock(self, clock_id: str) -> dict[str, Any]:
        """Deletes the clock and, like Stripe, the customers on it (their subscriptions end)."""
        clock = self._require("test_clock", clock_id, "test_helpers.test_clock")
        if clock["status"] == "advancing":
            raise advancing_error(clock_id)
        for customer in self.store.select("customer", lambda c: c.get("test_clock") == clock_id):
            if not customer.get("deleted"):
                self.delete_customer(customer["id"])
        del self._test_clocks[clock_id]
        self.store.remove("test_clock", clock_id)
        self._emit("test_helpers.test_clock.deleted", clock)
        return {"id": clock_id, "object": "test_helpers.test_clock", "deleted": True}
