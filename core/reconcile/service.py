"""Reconciliation, end to end: which accounts, read them, compare, scan for orphans -> a Report.

    report = await run(runtime.crosswalk, wiring.connections())                # every account
    report = await run(xw, conns, accounts=["acc_..."], orphans=False)          # one account, no list scans
    print(report.to_json())

Selection: `accounts` (canonical ids, merged-away ones count as their survivor; unknown ones raise
UnknownCanonicalIdError) or every surviving account in the crosswalk; `limit` keeps the first N (id order).
Orphan scans read each system's full account list (bounded by `scan_limit` per system); with `accounts` given
only orphans claiming one of them are reported, otherwise all of them (an orphan may claim an id the crosswalk
never minted). Crosswalk reads are blocking and run in a worker thread; vendor reads run `concurrency` accounts
at a time, the four systems of an account concurrently, each client within its own vendor limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from functools import cache
from typing import Any

from core.crosswalk import Crosswalk, Ownership
from core.reconcile.compare import ALWAYS, PROVISIONED, compare_account, orphan_findings
from core.reconcile.gather import (
    DEFAULT_SCAN_LIMIT,
    AccountRead,
    account_ids,
    classify_claims,
    read_account,
    scan_claims,
)
from core.reconcile.model import Finding, ReadError, Report

__all__ = ["DEFAULT_CONCURRENCY", "default_ownership", "run", "select_accounts"]

DEFAULT_CONCURRENCY = 8


@cache
def default_ownership() -> Ownership:
    return Ownership.load()


def select_accounts(crosswalk: Crosswalk, accounts: Iterable[str] | None, limit: int | None) -> list[str]:
    """Survivor ids to compare (blocking). Unknown ids raise UnknownCanonicalIdError."""
    if accounts is None:
        chosen = account_ids(crosswalk)
    else:
        chosen = []
        for requested in accounts:
            survivor = crosswalk.resolve(requested)
            if survivor not in chosen:
                chosen.append(survivor)
    return chosen if limit is None else chosen[:limit]


async def run(
    crosswalk: Crosswalk,
    connections: Any,
    *,
    accounts: Sequence[str] | None = None,
    limit: int | None = None,
    ownership: Ownership | None = None,
    fields: Collection[str] | None = None,
    orphans: bool = True,
    scan_limit: int = DEFAULT_SCAN_LIMIT,
    concurrency: int = DEFAULT_CONCURRENCY,
    always: Iterable[str] = ALWAYS,
    provisioned: Iterable[str] = PROVISIONED,
) -> Report:
    """Compares what each system says about each selected account; see the module docstring."""
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    ownership = ownership or default_ownership()
    always, provisioned = tuple(always), tuple(provisioned)

    def plan() -> tuple[list[str], dict[str, dict[str, str]], dict[str, dict[str, list[str]]]]:
        ids = select_accounts(crosswalk, accounts, limit)
        refs, merged = {}, {}
        for a in ids:
            group = crosswalk.aliases(a)
            refs[a] = {r.system: r.native_id for r in group if r.primary}
            merged[a] = {}
            for r in group:
                if not r.primary:
                    merged[a].setdefault(r.system, []).append(r.native_id)
        return ids, refs, merged

    ids, refs, merged = await asyncio.to_thread(plan)
    gate = asyncio.Semaphore(concurrency)

    async def one(account: str) -> AccountRead:
        async with gate:
            return await read_account(connections, account, refs[account], merged[account])

    scan_task = asyncio.ensure_future(scan_claims(connections, limit=scan_limit)) if orphans else None
    try:
        reads = await asyncio.gather(*(one(a) for a in ids))
        scans = await scan_task if scan_task is not None else []
    except BaseException:
        if scan_task is not None:
            scan_task.cancel()
        raise

    findings: list[Finding] = []
    errors: list[ReadError] = []
    for read in reads:
        errors.extend(read.errors)
        findings.extend(compare_account(read.account, read.snapshots, ownership=ownership, linked=read.linked,
                                        gone=read.gone, why=read.gone_why, unreadable=read.unreadable,
                                        fields=fields, always=always, provisioned=provisioned))
    if scans:
        errors.extend(s.error for s in scans if s.error is not None)
        claims = await asyncio.to_thread(classify_claims, crosswalk, scans)
        findings.extend(orphan_findings(claims, accounts=set(ids) if accounts is not None else None))
    return Report(
        accounts=ids,
        findings=sorted(findings, key=Finding.sort_key),
        errors=sorted(errors, key=lambda e: (e.account or "", e.system, e.native_id or "")),
        scan_truncated={s.system: s.truncated for s in scans},
    )
