"""The month-end burst bench, small: real `lockstep up` (mocks + core in their own processes), real HTTP.

Proves the bench's own accounting on a live run (every burst invoice reaches the ERP exactly once, through
one flow per business key) so `make bench`'s figures can be trusted; speed is reported by `make bench` only.
"""

from __future__ import annotations

import pytest

from bench.burst import run_burst


@pytest.mark.slow  # ~30 s of `lockstep up` + lead-to-cash set-up: make test-all, not make test
def test_a_small_burst_reaches_every_system_once_and_loses_nothing() -> None:
    result = run_burst(events=20, subs_per_account=5, limits=False, timeout=240, say=lambda _line: None)
    assert result["invoices"] == 10 and result["events"] == 20, result
    assert result["duplicates"] == 0 and result["lost"] == 0, result
    assert result["flows_not_success"] == 0 and result["lost_detail"]["erp_invoice_missing"] == 0, result
    assert result["events_per_s"] and result["events_per_s"] > 0
