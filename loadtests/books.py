"""After the load: wait until the sandbox is quiet, then count duplicates, lost events, the DLQ and reconcile.

Settling is correct at any speed: `Sandbox.quiesce` is retried for as long as the core keeps making progress
(its inbox counts or its newest finished flow change between attempts); it gives up only after `stall_s`
without progress, or after `cap_s` in all, and names what was still busy.

The books reuse bench/burst.py's accounting of a month-end invoice run (which invoices the run renewed, the
invoice-sync flows per business key, the ERP invoice per billing invoice, its status memo), plus what any
load can break: flows of any kind that did not end SUCCESS, new DLQ entries, webhook deliveries that failed
on any mock, and the core's reconcile over the estate's accounts.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.burst import (
    INVOICE_SYNC,
    _burst_invoices,
    _erp_invoice,
    _erp_invoice_count,
    _invoice_events,
    _ts,
    gather_limited,
    get_limits,
    list_flows,
    ok,
    percentile,
    set_limits,
)
from lockstep.sandbox import QuiesceTimeout, Sandbox


class SettleTimeout(RuntimeError):
    pass


@dataclass
class Before:
    """What the books compare against: taken just before the load starts."""

    t0: float
    billing_clock: int
    dlq_ids: set[str]
    erp_invoices: int
    failed_deliveries: dict[str, int]
    inbox_duplicates: int


async def _failed_deliveries(sandbox: Sandbox) -> dict[str, int]:
    return {s: len(await sandbox.deliveries(s, status="failed", limit=10_000)) for s in sandbox.keys}


async def _inbox(sandbox: Sandbox) -> dict[str, int]:
    return dict(ok(await sandbox.core.get("/health"))["inbox"])


async def snapshot(sandbox: Sandbox) -> Before:
    return Before(t0=time.time(), billing_clock=int(ok(await sandbox.control("billing").get("/clock"))["now"]),
                  dlq_ids={d["id"] for d in await sandbox.dlq(limit=500)},
                  erp_invoices=await _erp_invoice_count(sandbox), failed_deliveries=await _failed_deliveries(sandbox),
                  inbox_duplicates=int((await _inbox(sandbox)).get("duplicates", 0)))


async def _progress(sandbox: Sandbox) -> tuple[Any, ...]:
    newest = await sandbox.flows(status="SUCCESS", limit=1)
    active = [len(await sandbox.flows(status=s, limit=500)) for s in ("PENDING", "ENQUEUED")]
    return (repr(sorted((await _inbox(sandbox)).items())), newest[0]["workflow_id"] if newest else None, *active)


async def settle(sandbox: Sandbox, *, stall_s: float, cap_s: float, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.monotonic()
    last_progress, last_seen = time.monotonic(), await _progress(sandbox)
    while True:
        try:
            quiet = await sandbox.quiesce(timeout=min(60.0, stall_s))
            return {"settle_s": round(time.monotonic() - started, 1), "quiesce_rounds": quiet["rounds"]}
        except QuiesceTimeout as exc:
            seen = await _progress(sandbox)
            now = time.monotonic()
            if seen != last_seen:
                last_progress, last_seen = now, seen
                say(f"  settling: still busy after {now - started:.0f} s, progressing ({str(exc)[:160]})")
            elif now - last_progress > stall_s:
                raise SettleTimeout(f"no progress for {stall_s:.0f} s while settling: {exc}") from exc
            if now - started > cap_s:
                raise SettleTimeout(f"not quiet after {cap_s:.0f} s: {exc}") from exc


async def books(sandbox: Sandbox, before: Before, subscriptions: set[str], accounts: list[str]) -> dict[str, Any]:
    """The run's accounting (vendor limits lifted while reading, put back afterwards)."""
    saved = await get_limits(sandbox)
    await set_limits(sandbox, {s: [] for s in saved})
    try:
        invoices = await _burst_invoices(sandbox, subscriptions, before.billing_clock) if subscriptions else []
        burst_ids = {i["id"] for i in invoices}
        since = math.floor(before.t0) - 1  # /flows times are whole seconds
        all_flows = [f for name in (await _flow_names(sandbox)) for f in await list_flows(sandbox, name, since=since)]
        sync_flows = [f for f in all_flows
                      if f["flow"] == INVOICE_SYNC and f["business_key"].split(":")[1] in burst_ids]
        events = await _invoice_events(sandbox, before.billing_clock) if invoices else {}
        received = await _inbox_events(sandbox, before.t0 - 1) if invoices else None
        erp_rows = await gather_limited((_erp_invoice(sandbox, i["id"]) for i in invoices), 16)
        erp_after = await _erp_invoice_count(sandbox)
        dlq_after = await sandbox.dlq(limit=500)
        failed_after = await _failed_deliveries(sandbox)
        inbox = await _inbox(sandbox)
        reconcile = await _reconcile(sandbox, accounts)
    finally:
        await set_limits(sandbox, saved)

    keys = Counter(f["business_key"] for f in all_flows)
    dup_flows = sum(n - 1 for n in keys.values() if n > 1)
    erp_dups = max(0, (erp_after - before.erp_invoices) - len(burst_ids))
    ok_sync = [f for f in sync_flows if f["status"] == "SUCCESS"]
    missing_flows, coalesced = _unprocessed(invoices, sync_flows, events, received)
    erp_missing = [i["id"] for i, row in zip(invoices, erp_rows, strict=True) if row is None]
    erp_stale = [i["id"] for i, row in zip(invoices, erp_rows, strict=True)
                 if row is not None and f"status {i['status']};" not in (row.get("memo") or "")]
    not_success = [f for f in all_flows if f["status"] not in ("SUCCESS", "ENQUEUED", "PENDING")]
    fresh_dlq = [d for d in dlq_after if d["id"] not in before.dlq_ids]
    deliveries_failed = sum(max(0, n - before.failed_deliveries.get(s, 0)) for s, n in failed_after.items())
    lost = len(erp_missing) + len(erp_stale) + len(missing_flows) + len(not_success) + deliveries_failed
    starts = [_ts(f["created_at"]) for f in ok_sync]
    ends = [_ts(f["updated_at"]) for f in ok_sync]
    wall = (max(ends) - min(starts)) if ok_sync else 0.0
    run_ms = [(e - s) * 1000 for s, e in zip(starts, ends, strict=True)]
    summary = (reconcile or {}).get("summary") or {}
    return {
        "invoices": len(burst_ids),
        "invoice_events": 2 * len(invoices) - len(missing_flows),
        "coalesced_events": coalesced,
        "events_per_s": round((2 * len(invoices) - len(missing_flows)) / wall, 2) if wall > 0 else None,
        "invoice_run_wall_s": round(wall, 1),
        "flow_run_p50_ms": round(percentile(run_ms, 50), 1) if run_ms else None,
        "flow_run_p99_ms": round(percentile(run_ms, 99), 1) if run_ms else None,
        "flows": dict(Counter(f"{f['flow']}:{f['status']}" for f in all_flows)),
        "duplicates": dup_flows + erp_dups,
        "duplicate_detail": {"flows": dup_flows, "erp_invoices": erp_dups},
        "inbox_duplicates_absorbed": int(inbox.get("duplicates", 0)) - before.inbox_duplicates,
        "lost": lost,
        "lost_detail": {"erp_invoice_missing": len(erp_missing), "erp_status_stale": len(erp_stale),
                        "invoice_events_unprocessed": len(missing_flows), "flows_not_success": len(not_success),
                        "deliveries_failed": deliveries_failed},
        "dlq": len(fresh_dlq),
        "dlq_reasons": Counter(f"{d.get('error_class')}: {str(d.get('error_message'))[:120]}"
                               for d in fresh_dlq).most_common(5),
        "examples": {"erp_missing": erp_missing[:3], "erp_stale": erp_stale[:3],
                     "flows_missing": sorted(missing_flows)[:3],
                     "not_success": [f"{f['workflow_id']} {f['status']}" for f in not_success[:3]]},
        "reconcile": {"accounts": summary.get("accounts", 0), "findings": summary.get("findings", 0),
                      "failed": (reconcile or {}).get("failed"),
                      "by_kind": summary.get("by_kind", {}), "errors": summary.get("errors", 0),
                      "by_field": dict(Counter(f"{f.get('kind')} {f.get('system')}.{f.get('field') or ''} "
                                               f"(owner {f.get('owner')})"
                                               for f in ((reconcile or {}).get("findings") or [])).most_common(10)),
                      "examples": [{k: f.get(k) for k in ("kind", "system", "field", "expected", "actual", "owner")}
                                   for f in ((reconcile or {}).get("findings") or [])[:5]]},
    }


def _unprocessed(invoices: list[dict[str, Any]], flows: list[dict[str, Any]], events: dict[tuple[str, str], str],
                 received: dict[str, dict[str, Any]] | None) -> tuple[list[str], int]:
    """The invoice events (`<invoice>:<status>`, finalized = open, paid) no flow processed, and how many were
    processed by another event's flow. An event is processed when its own flow (business key
    `invoice-sync:<invoice>:<status>`) ended SUCCESS, or, where the core lists its inbox (`GET /events`), when
    a flow the inbox says it went to ended SUCCESS (a core that coalesces a `paid` event into its invoice's
    queued `open` flow starts no flow of its own for it)."""
    by_id = {f["workflow_id"]: f for f in flows}
    missing, coalesced = [], 0
    for invoice in invoices:
        for status in ("open", "paid"):
            own = by_id.get(f"invoice-sync:{invoice['id']}:{status}")
            if own is not None and own["status"] == "SUCCESS":
                continue
            entry = (received or {}).get(events.get((invoice["id"], status), ""))
            if entry and any(by_id.get(w, {}).get("status") == "SUCCESS" for w in entry.get("flow_ids") or []):
                coalesced += 1
                continue
            missing.append(f"{invoice['id']}:{status}")
    return missing, coalesced


async def _inbox_events(sandbox: Sandbox, since: float) -> dict[str, dict[str, Any]] | None:
    """billing event id -> the core's inbox entry (status, flow ids) for events received since `since`; None
    when the core does not list its inbox."""
    out: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        response = await sandbox.core.get("/events", params={"system": "billing", "limit": 1000, "offset": offset})
        if response.status_code == 404 and offset == 0:
            return None
        page = ok(response)["events"]
        fresh = [e for e in page if _ts(e.get("received_at")) >= since]
        out.update((e["event_id"], e) for e in fresh)
        if len(page) < 1000 or len(fresh) < len(page):
            return out
        offset += 1000


async def _reconcile(sandbox: Sandbox, accounts: list[str]) -> dict[str, Any] | None:
    """The core's reconcile over the estate's accounts; a refusal is reported (as `failed`), not raised."""
    if not accounts:
        return None
    response = await sandbox.core.post("/reconcile", json={"accounts": accounts, "orphans": False}, timeout=300)
    if response.status_code >= 400:
        return {"failed": f"POST /reconcile: {response.status_code} {response.text[:300]}"}
    return dict(response.json())


async def _flow_names(sandbox: Sandbox) -> list[str]:
    return sorted(ok(await sandbox.core.get("/health"))["flows"])
