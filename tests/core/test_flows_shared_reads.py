"""SharedRuns: callers of one key share a run that started after they asked; runs never overlap."""

from __future__ import annotations

import asyncio

import pytest

from core.flows.shared_reads import SharedRuns


async def test_callers_during_a_run_share_the_next_run_never_the_one_already_running() -> None:
    shared = SharedRuns()
    state = {"value": 0}
    started: list[int] = []
    gate = asyncio.Event()
    running = 0

    async def read() -> int:
        nonlocal running
        running += 1
        assert running == 1, "two runs of one key overlapped"
        seen = state["value"]  # what a run reads is the state when it starts
        started.append(seen)
        await gate.wait()
        running -= 1
        return seen

    first = asyncio.create_task(shared.run("cus_1", read))
    await asyncio.sleep(0)  # the first run has started and read 0
    state["value"] = 1  # changes made after the first run read: its callers must not get the old read
    later = [asyncio.create_task(shared.run("cus_1", read)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(first, *later)
    assert outcomes[0].value == 0 and not outcomes[0].shared
    assert [o.value for o in outcomes[1:]] == [1] * 10  # each saw the state as of after it asked
    assert sum(not o.shared for o in outcomes[1:]) == 1  # ten callers, one run between them
    assert started == [0, 1] and shared.runs == 2 and shared.calls == 11


async def test_keys_run_apart_and_a_failed_run_fails_only_the_callers_it_served() -> None:
    shared = SharedRuns()
    calls: list[str] = []

    async def ok(key: str) -> str:
        calls.append(key)
        await asyncio.sleep(0)
        return key

    async def boom() -> str:
        await asyncio.sleep(0)
        raise RuntimeError("CRM 503")

    a, b = await asyncio.gather(shared.run("a", lambda: ok("a")), shared.run("b", lambda: ok("b")))
    assert (a.value, b.value, sorted(calls)) == ("a", "b", ["a", "b"])
    with pytest.raises(RuntimeError, match="CRM 503"):
        await shared.run("a", boom)
    after = await shared.run("a", lambda: ok("a"))  # a later caller runs again, it does not get the failure
    assert after.value == "a" and not after.shared
    assert shared._keys == {}  # idle keys are forgotten
