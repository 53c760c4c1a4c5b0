"""BillingState: the Stripe-compatible billing domain of one tenant (state + business rules, no HTTP).

Everything takes and returns internal dicts shaped like Stripe objects; the internal shape carries every
field either served API version needs (versions.py derives each rendering). Time comes only from the
injected SandboxClock (and per-test-clock SandboxClocks), randomness only from the injected RNG, so two
states with the same seed doing the same operations are identical. The rules live in one module per job:

  catalog.py        products, prices            customers.py   customers
  payments.py       payment methods, test cards, payment intents, charges
  subscriptions.py  create, renew, trial, expire, cancel
  subscription_updates.py  item changes, prorations (proration.py), cycle resets
  invoices.py       invoice items, invoices     dunning.py     failed payments, retries, recovery
  preview.py        upcoming invoice            test_clocks.py test clocks
  events.py         the event log               periods.py     calendar math
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from mocks.billing.base import JOB_PREFIX, BillingSettings
from mocks.billing.catalog import CatalogMixin
from mocks.billing.customers import CustomersMixin
from mocks.billing.dunning import DunningMixin
from mocks.billing.invoices import InvoicesMixin
from mocks.billing.payments import PaymentsMixin
from mocks.billing.preview import PreviewMixin
from mocks.billing.subscriptions import SubscriptionsMixin
from mocks.billing.test_clocks import TestClocksMixin
from mocks.kernel.clock import SandboxClock

__all__ = ["BillingSettings", "BillingState"]

DUMP_VERSION = 1


class BillingState(
    SubscriptionsMixin,
    PreviewMixin,
    InvoicesMixin,
    DunningMixin,
    PaymentsMixin,
    CustomersMixin,
    CatalogMixin,
    TestClocksMixin,
):
    def __init__(
        self,
        *,
        clock: SandboxClock,
        rng: random.Random,
        publish: Callable[[dict[str, Any]], None] | None = None,
        settings: BillingSettings | None = None,
    ) -> None:
        super().__init__(clock=clock, rng=rng, publish=publish, settings=settings)

    # --- time ------------------------------------------------------------------------------------------
    def advance_clock(self, to: float) -> int:
        """Move the tenant's sandbox clock to `to`, running billing work that falls due (test clocks stay)."""
        self.clock.advance(to)
        return self.clock.now_int()

    def run_job(self, kind: str, payload: dict[str, Any]) -> None:
        """Run a scheduled job (the clocks call this). Kinds: billing.renew, billing.invoice_finalize,
        billing.invoice_retry, billing.dunning_end, billing.incomplete_expire, billing.trial_will_end."""
        name = kind.removeprefix(JOB_PREFIX)
        handler = getattr(self, f"_job_{name}", None)
        if handler is None:
            return
        handler(payload)

    # --- events ----------------------------------------------------------------------------------------
    def get_event(self, event_id: str) -> dict[str, Any]:
        return self.events.get(event_id)

    def list_events(
        self,
        type: str | None = None,
        types: list[str] | None = None,
        created_gte: int | None = None,
        created_gt: int | None = None,
        created_lte: int | None = None,
        created_lt: int | None = None,
        *,
        copy: bool = True,
    ) -> list[dict[str, Any]]:
        return self.events.list(type, types, created_gte, created_gt, created_lte, created_lt, copy=copy)

    # --- snapshot --------------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "version": DUMP_VERSION,
            "settings": self.settings.model_dump(),
            "store": self.store.dump(),
            "events": self.events.dump(),
            "rng": [version, list(internal), gauss],
            "clock": self.clock.dump(),
            "test_clocks": {cid: c.dump() for cid, c in self._test_clocks.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        if not data:
            return
        if "settings" in data:
            self.settings = BillingSettings(**data["settings"])
        self.store.load(data.get("store", {}))
        self.events.load(data.get("events", []))
        if data.get("rng"):
            version, internal, gauss = data["rng"]
            self.rng.setstate((version, tuple(internal), gauss))
        if data.get("clock"):
            self.clock.load(data["clock"])
        self._test_clocks = {}
        for cid, cdata in data.get("test_clocks", {}).items():
            clock = SandboxClock(cdata["now"], runner=self.run_job)
            clock.load(cdata)
            self._test_clocks[cid] = clock
