"""Shared plumbing of the billing state: store, ids, clocks (tenant + test clocks), events, settings.

Every object may live on a test clock (`test_clock` field, inherited from its customer). Its `created`
times and its scheduled jobs use that clock; objects without one use the tenant's sandbox clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from mocks.billing.errors import BillingError, invalid, missing
from mocks.billing.events import EventLog
from mocks.billing.ids import new_id
from mocks.billing.store import Store
from mocks.kernel.clock import SandboxClock
from mocks.kernel.data import clone

JOB_PREFIX = "billing."


def advancing_error(test_clock: str) -> BillingError:
    """Stripe refuses work on a clock while it advances (429, the library's RateLimitError)."""
    return BillingError(
        f"Test clock {test_clock} advancement underway; wait until its status is `ready`.",
        status=429,
        param="test_clock",
    )


class BillingSettings(BaseModel):
    # Gaps in days between payment attempts of a failed renewal: [3, 5, 7] -> retries on day 3, 8, 15.
    retry_schedule_days: list[int] = [3, 5, 7]
    # What happens to the subscription once the last retry fails (the invoice stays open either way).
    after_retries: Literal["cancel", "mark_unpaid"] = "cancel"
    # Renewal drafts finalize (and are charged) this long after creation, like Stripe's auto-advance.
    invoice_finalize_delay_s: int = 3600
    # A subscription whose first invoice stays unpaid becomes incomplete_expired after this.
    incomplete_expiry_s: int = 23 * 3600
    default_currency: str = "usd"
    # trial_will_end fires this long before the trial ends.
    trial_will_end_s: int = 3 * 86_400


class BillingBase:
    def __init__(
        self,
        *,
        clock: SandboxClock,
        rng: random.Random,
        publish: Callable[[dict[str, Any]], None] | None = None,
        settings: BillingSettings | None = None,
    ) -> None:
        self.clock = clock
        if clock.runner is None:
            clock.runner = self.run_job
        self.rng = rng
        self.settings = settings or BillingSettings()
        self.store = Store()
        self.events = EventLog(rng, clock.now_int, publish)
        self._test_clocks: dict[str, SandboxClock] = {}

    # --- jobs are implemented by the facade ---------------------------------------------------------
    def run_job(self, kind: str, payload: dict[str, Any]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    # --- clocks ----------------------------------------------------------------------------------------
    def _clock(self, test_clock: str | None) -> SandboxClock | None:
        """The clock an object lives on; None once its test clock was deleted (its jobs died with it)."""
        if test_clock is None:
            return self.clock
        return self._test_clocks.get(test_clock)

    def _now(self, test_clock: str | None = None) -> int:
        return (self._clock(test_clock) or self.clock).now_int()

    def _schedule(self, test_clock: str | None, at: int, kind: str, payload: dict[str, Any], key: str) -> None:
        clock = self._clock(test_clock)
        if clock is not None:
            clock.schedule(at, JOB_PREFIX + kind, payload, key=JOB_PREFIX + key)

    def _unschedule(self, test_clock: str | None, key: str) -> None:
        clock = self._clock(test_clock)
        if clock is not None:
            clock.cancel(JOB_PREFIX + key)

    # --- objects ---------------------------------------------------------------------------------------
    def _new_id(self, kind: str) -> str:
        return new_id(self.rng, kind)

    def _require(self, kind: str, obj_id: Any, label: str | None = None, param: str = "id") -> dict[str, Any]:
        obj = self.store.get(kind, obj_id)
        if obj is None or obj.get("deleted"):
            raise missing(label or kind, str(obj_id), param)
        return obj

    def _emit(self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
        self.events.emit(type_, obj, previous)

    @staticmethod
    def _out(obj: dict[str, Any]) -> dict[str, Any]:
        return clone(obj)

    @staticmethod
    def _apply_metadata(obj: dict[str, Any], metadata: Any) -> None:
        """Stripe semantics: keys merge, an empty value unsets a key, an empty string unsets all."""
        if metadata is None:
            return
        if metadata == "":
            obj["metadata"] = {}
            return
        if not isinstance(metadata, dict):
            raise invalid("Invalid metadata: must be a hash of keys to values.", "metadata")
        merged = dict(obj.get("metadata") or {})
        for key, value in metadata.items():
            if value in ("", None):
                merged.pop(key, None)
            else:
                merged[str(key)] = str(value)
        obj["metadata"] = merged

    @staticmethod
    def _changes(obj: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
        """Apply top-level updates; return previous values of the fields that actually changed."""
        previous: dict[str, Any] = {}
        for key, value in updates.items():
            if obj.get(key) != value:
                previous[key] = clone(obj.get(key))
                obj[key] = value
        return previous
