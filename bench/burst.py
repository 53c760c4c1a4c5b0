"""Month-end burst: thousands of billing invoice events through the core, end to end, over real HTTP.

`lockstep up` (all four mocks + the core, SQLite) runs as a child process on a free port block with a temp
`--state-dir`; this process only talks to it over 127.0.0.1, through the same public vendor APIs and
`/_sandbox` control APIs a user's harness would use (`lockstep.sandbox.Sandbox.connect`).

Set-up (not measured; vendor rate limits switched OFF while seeding, restored afterwards):
1. `accounts` deals closed won in the CRM -> the core's own lead-to-cash flow creates and links each account
   (ERP customer + contract order, billing customer + yearly subscription, CS company; crosswalk links).
   Nothing is written into the core's database behind its back: the crosswalk is filled by the flow.
2. Bulk path for the many subscriptions of a month-end: per linked account, `subs_per_account` extra
   monthly subscriptions created directly in billing (card on file, charged automatically), each backed by
   its own ERP sales order created directly in the ERP and named in the subscription's `erp_sales_order`
   metadata, which is the link lead-to-cash itself stamps and invoice sync resolves. (Their first invoices
   flow through the core during set-up, like any invoice would.)

The burst (measured): the billing tenant's clock advances 32 days in one call, so every monthly subscription
renews at once: a draft (`invoice.created`, not synced: drafts have no business key), one hour of sandbox
time later `invoice.finalized` (status open) and `invoice.paid`. Each finalized / paid event goes to an
invoice-sync flow in the core (business key `invoice-sync:<invoice>:<status>`); a `paid` event that arrives
while its invoice's `open` flow is still queued joins that flow (coalescing: the flow reads the invoice when
it runs), so N events = N / 2 invoices, in N / 2 to N flows.

Measures:
- events/s = burst events processed (the core's inbox names the flow each event went to, and that flow
  ended SUCCESS) / wall time from just before the clock advance until the last of those flows ended (DBOS
  `updated_at`); the time until `Sandbox.quiesce()` returned (which adds its own polling) is reported too.
- propagation latency per event = its flow's end (`updated_at`) - when billing emitted the event (the
  webhook delivery's `created_at`, wall clock, from billing's delivery log). The flow's last step (CRM
  receivables) runs after the ERP invoice upsert, so this is an upper bound on "ERP invoice written".
  Events whose delivery fell out of billing's delivery log (10,000 entries) use the advance's start time
  (counted in `latency_origin_fallbacks`; that only over-states their latency).
- duplicates = flows per business key beyond the first + ERP invoices per billing invoice beyond one (ERP
  invoices are upserted by externalId = billing invoice id, so also: ERP invoices created in the burst
  beyond the number of burst invoices).
- lost = burst billing invoices without an ERP invoice after quiescence + ERP invoices whose memo does not
  show billing's final status + events no SUCCESS flow covers + flows not SUCCESS + new DLQ entries +
  webhook deliveries that failed.

Rate limits: the mocks' vendor limits (Stripe test mode 25 req/s rolling, NetSuite concurrency, Gainsight
200 calls/min, Salesforce daily) are ON for the `limits on` burst and removed for the `limits off` one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from lockstep.sandbox import Sandbox
from lockstep.systems import CORE_PORT, SYSTEMS

HOST = "127.0.0.1"
CRM = "/services/data/v60.0"
ERP = "/services/rest/record/v1"
ERP_ITEM = "ITEM-PLAT-ANNUAL"  # from the ERP's catalog seed
MONTH_PRICE_MINOR = 10_000  # 100.00 USD a month; each ERP order covers a year of it
ADVANCE_S = 32 * 86_400  # one renewal of every monthly subscription, plus the hour before finalizing
INVOICE_SYNC = "invoice_sync"


# ---- the sandbox as a child process ----------------------------------------------------------------------------


def _ports_free(ports: Iterable[int]) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def free_port_offset(rng: random.Random | None = None) -> int:
    """An offset N such that core (8100+N) and every mock (810x+N) can bind."""
    rng = rng or random.Random()
    base = [CORE_PORT, *(e.port for e in SYSTEMS.values())]
    for _ in range(200):
        offset = rng.randrange(10_000, 50_000, 10)
        if _ports_free(p + offset for p in base):
            return offset
    raise RuntimeError("no free port block for the sandbox")


class LiveSandbox:
    """`lockstep up` (4 mocks + core) in a child process; `await live.connect()` -> a Sandbox over HTTP."""

    def __init__(self, *, port_offset: int | None = None, startup_timeout: float = 90.0,
                 env: dict[str, str] | None = None, client_limits: bool = True) -> None:
        self.client_limits = client_limits  # False: the core's client-side throttles lifted
        self.port_offset = free_port_offset() if port_offset is None else port_offset
        self.admin_token = f"bench-{secrets.token_hex(8)}"
        self.dir = Path(tempfile.mkdtemp(prefix="lockstep-burst-"))
        self.log_path = self.dir / "lockstep-up.log"
        self.startup_timeout = startup_timeout
        # Coalescing on (off by default in the core): a burst is where it pays.
        self.env = {**os.environ, "LOCKSTEP_ADMIN_TOKEN": self.admin_token,
                    "LOCKSTEP_CORE_CLIENT_LIMITS": "vendor" if client_limits else "off",
                    "LOCKSTEP_CORE_COALESCE_EVENTS": os.environ.get("LOCKSTEP_CORE_COALESCE_EVENTS", "true"),
                    # Deliveries in flight per mock -> core endpoint, as the vendors deliver (concurrently).
                    "LOCKSTEP_WEBHOOK_MAX_IN_FLIGHT": os.environ.get("LOCKSTEP_WEBHOOK_MAX_IN_FLIGHT", "8"),
                    # One core process per CPU (core/workers.py): the core is the busiest process of a burst.
                    "LOCKSTEP_CORE_WORKERS": os.environ.get("LOCKSTEP_CORE_WORKERS", str(min(4, os.cpu_count() or 1))),
                    **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"http://{HOST}:{e.port + self.port_offset}" for name, e in SYSTEMS.items()}

    @property
    def core_url(self) -> str:
        return f"http://{HOST}:{CORE_PORT + self.port_offset}"

    def start(self) -> LiveSandbox:
        cmd = [sys.executable, "-m", "lockstep.cli", "up", "--port-offset", str(self.port_offset),
               "--state-dir", str(self.dir / "state")]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while b"Press Ctrl-C" not in self.log_path.read_bytes():
            if self.proc.poll() is not None:
                raise RuntimeError(f"`lockstep up` exited ({self.proc.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"`lockstep up` did not come up in {self.startup_timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def connect(self) -> Sandbox:
        return await Sandbox.connect(self.urls, self.admin_token, self.core_url)

    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system, s) used so far by the core process and by the mocks' process (`lockstep
        up` itself): the cost of a burst whatever else the machine is doing. Empty where /proc is missing."""
        pid = self.pid()
        if pid is None:
            return {}
        out = {"mocks": _proc_cpu(pid)}
        for child in _children(pid):
            out["core"] = out.get("core", 0.0) + _proc_cpu(child)
        return {k: v for k, v in out.items() if v is not None}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LiveSandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# ---- helpers ---------------------------------------------------------------------------------------------------


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (the core's supervisor and its workers)."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        direct = [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []
    return direct + [d for c in direct for d in _children(c)]


def ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} "
                           f"{response.text[:400]}")
    return response.json() if response.content else None


async def retrying(call: Callable[[], Awaitable[httpx.Response]], attempts: int = 8) -> httpx.Response:
    """A set-up call that honours a vendor's 429 / 503 (Retry-After) instead of failing the bench."""
    response: httpx.Response | None = None
    for attempt in range(attempts):
        response = await call()
        if response.status_code not in (429, 503):
            return response
        wait = response.headers.get("retry-after")
        await asyncio.sleep(min(5.0, float(wait)) if wait else 0.1 * 2 ** attempt)
    assert response is not None
    return response


async def gather_limited(coros: Iterable[Awaitable[Any]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[Any]) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


def _ts(iso: str | None) -> float:
    return datetime.fromisoformat(iso).timestamp() if iso else math.nan


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextlib.asynccontextmanager
async def limits_off(sandbox: Sandbox) -> AsyncIterator[None]:
    """Remove every vendor rate limit on the wired tenants; put the previous policies back on exit."""
    saved = {}
    for system in sandbox.keys:
        saved[system] = ok(await sandbox.control(system).get("/limits"))["policies"]
        ok(await sandbox.control(system).put("/limits", json={"policies": []}))
    try:
        yield
    finally:
        for system, policies in saved.items():
            ok(await sandbox.control(system).put("/limits", json={"policies": policies}))


async def set_limits(sandbox: Sandbox, policies: dict[str, list[dict[str, Any]]]) -> None:
    for system, rows in policies.items():
        ok(await sandbox.control(system).put("/limits", json={"policies": rows}))


async def get_limits(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    return {s: ok(await sandbox.control(s).get("/limits"))["policies"] for s in sandbox.keys}


# ---- set-up ----------------------------------------------------------------------------------------------------


@dataclass
class Estate:
    accounts: list[dict[str, str]] = field(default_factory=list)  # billing customer, erp customer, ...
    subscriptions: set[str] = field(default_factory=set)
    setup_seconds: float = 0.0
    setup_flows: int = 0
    setup_flow_failures: list[str] = field(default_factory=list)  # first invoices' flows that did not succeed


async def _prepare(sandbox: Sandbox) -> None:
    """What lead-to-cash expects of the estate: the org's tax field, the ERP's catalog items."""
    fields = ok(await sandbox.clients["crm"].get(f"{CRM}/sobjects/Account/describe"))["fields"]
    if not any(f["name"] == "Tax_Registration__c" for f in fields):
        ok(await sandbox.control("crm").post("/actions", json={
            "action": "declare_field", "object": "Account",
            "field": {"name": "Tax_Registration__c", "type": "string", "length": 40}}))
    if (await sandbox.clients["erp"].get(f"{ERP}/item/eid:{ERP_ITEM}")).status_code == 404:
        ok(await sandbox.control("erp").post("/seed", json={"customers": 0, "items": True}))


async def _lead_to_cash(sandbox: Sandbox, accounts: int, tag: str, timeout: float) -> list[dict[str, str]]:
    """`accounts` deals closed won in the CRM; the core's lead-to-cash flow links each account."""
    close = (date.today() + timedelta(days=3)).isoformat()
    records: dict[str, list[dict[str, Any]]] = {"Account": [], "Opportunity": []}
    for i in range(accounts):
        name = f"Burst {tag} {i:05d}"
        records["Account"].append({"@ref": f"a{i}", "Name": name, "BillingCountry": "United States"})
        records["Opportunity"].append({"AccountId": f"@a{i}", "Name": f"{name} - New Business",
                                       "StageName": "Prospecting", "CloseDate": close, "Amount": 12_000.0})
    created = ok(await sandbox.control("crm").post("/seed", json={"demo": False, "records": records}))["created"]
    opportunities = created["Opportunity"]
    await gather_limited((sandbox.control("crm").post("/actions", json={
        "action": "close_opportunity", "id": opp, "won": True}) for opp in opportunities), 8)
    await sandbox.quiesce(timeout)
    for opp in opportunities:
        flow = ok(await sandbox.core.get(f"/flows/closed-won:{opp}"))
        if flow["status"] != "SUCCESS":
            raise RuntimeError(f"lead-to-cash for {opp} ended {flow['status']}: {flow.get('error')}")
    # The flow stamps its billing customer with the canonical account id; the crosswalk has the rest.
    crm_ids = set(created["Account"])
    out = []
    for customer in await _list_all(sandbox.clients["billing"], "/v1/customers"):
        meta = customer.get("metadata") or {}
        if meta.get("crm_account_id") in crm_ids:
            refs = ok(await sandbox.core.get(f"/crosswalk/{meta['lockstep_account']}"))["refs"]
            out.append({"account": meta["lockstep_account"], "billing_customer": customer["id"],
                        "erp_customer": refs["erp"], "crm_account": refs["crm"]})
    if len(out) != len(crm_ids):
        raise RuntimeError(f"lead-to-cash linked {len(out)} of {len(crm_ids)} accounts")
    return out


async def _list_all(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every object of a Stripe-style list endpoint (cursor pagination)."""
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 100, **params}
        if after:
            query["starting_after"] = after
        page = ok(await retrying(lambda q=query: client.get(path, params=q)))
        out.extend(page["data"])
        if not page.get("has_more") or not page["data"]:
            return out
        after = page["data"][-1]["id"]


async def _extra_subscriptions(sandbox: Sandbox, account: dict[str, str], count: int, price: str, tag: str,
                               concurrency: int) -> list[str]:
    billing, erp = sandbox.clients["billing"], sandbox.clients["erp"]
    customer = account["billing_customer"]
    pm = ok(await billing.post("/v1/payment_methods/pm_card_visa/attach", data={"customer": customer}))["id"]
    ok(await billing.post(f"/v1/customers/{customer}", data={"invoice_settings[default_payment_method]": pm}))

    async def one(i: int) -> str:
        eid = f"so-burst-{tag}-{customer}-{i}"
        ok(await retrying(lambda: erp.post(f"{ERP}/salesOrder", json={
            "entity": {"id": account["erp_customer"]}, "externalId": eid,
            "item": {"items": [{"item": {"externalId": ERP_ITEM}, "quantity": 1,
                                "rate": MONTH_PRICE_MINOR / 100 * 12}]}})))
        order = ok(await retrying(lambda: erp.get(f"{ERP}/salesOrder/eid:{eid}")))["id"]
        sub = ok(await retrying(lambda: billing.post("/v1/subscriptions", data={
            "customer": customer, "items[0][price]": price, "items[0][quantity]": 1,
            "metadata[erp_sales_order]": order, "metadata[lockstep_bench]": f"burst-{tag}"})))
        return str(sub["id"])

    return await gather_limited((one(i) for i in range(count)), concurrency)


async def build_estate(sandbox: Sandbox, *, invoices: int, subs_per_account: int, tag: str,
                       concurrency: int = 16, timeout: float = 600.0, say: Callable[[str], None] = print) -> Estate:
    """Linked accounts with `invoices` monthly subscriptions between them (rate limits off meanwhile)."""
    started = time.perf_counter()
    estate = Estate()
    accounts = max(1, math.ceil(invoices / subs_per_account))
    async with limits_off(sandbox):
        await _prepare(sandbox)
        say(f"  set-up: {accounts} deals closed won -> lead-to-cash ...")
        estate.accounts = await _lead_to_cash(sandbox, accounts, tag, timeout)
        billing = sandbox.clients["billing"]
        product = ok(await billing.post("/v1/products", data={"name": f"Burst platform {tag}"}))["id"]
        price = ok(await billing.post("/v1/prices", data={
            "product": product, "unit_amount": MONTH_PRICE_MINOR, "currency": "usd",
            "recurring[interval]": "month"}))["id"]
        say(f"  set-up: {invoices} monthly subscriptions + ERP orders ...")
        left = invoices
        for account in estate.accounts:
            count = min(subs_per_account, left)
            left -= count
            if count:
                subs = await _extra_subscriptions(sandbox, account, count, price, tag, concurrency)
                estate.subscriptions.update(subs)
        await sandbox.quiesce(timeout)
        flows = await list_flows(sandbox, INVOICE_SYNC, since=0)
        estate.setup_flows = len(flows)
        estate.setup_flow_failures = [f["workflow_id"] for f in flows if f["status"] != "SUCCESS"]
    estate.setup_seconds = time.perf_counter() - started
    return estate


# ---- measuring ---------------------------------------------------------------------------------------------------


async def list_flows(sandbox: Sandbox, flow: str, *, since: float) -> list[dict[str, Any]]:
    """Every flow of `flow` created at or after `since` (epoch s), newest first, paging /flows."""
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = ok(await sandbox.core.get("/flows", params={"flow": flow, "limit": 500, "offset": offset}))["flows"]
        fresh = [f for f in page if _ts(f["created_at"]) >= since]
        out.extend(fresh)
        if len(page) < 500 or len(fresh) < len(page):
            return out
        offset += 500


async def _emitted_at(sandbox: Sandbox, since: float) -> tuple[dict[str, float], dict[str, Any]]:
    """event id -> wall time billing queued its webhook (delivery log, newest 10,000 deliveries), and how
    the deliveries since `since` went (attempt durations = the core's intake latency as billing saw it)."""
    rows = await sandbox.deliveries("billing", limit=10_000)
    emitted = {r["event_id"]: float(r["created_at"]) for r in rows if r.get("duplicate_of") is None
               and r.get("redelivery_of") is None}
    attempts = [a for r in rows if float(r["created_at"]) >= since for a in r.get("attempts", [])]
    durations = [float(a["duration_ms"]) for a in attempts if "duration_ms" in a]
    last = max((float(a["at_wall"]) + float(a.get("duration_ms", 0)) / 1000 for a in attempts), default=since)
    return emitted, {"attempts": len(attempts), "intake_p50_ms": round(percentile(durations, 50), 1),
                     "intake_p99_ms": round(percentile(durations, 99), 1),
                     "last_delivered_after_s": round(last - since, 2)}


async def _invoice_events(sandbox: Sandbox, since_sandbox: int) -> dict[tuple[str, str], str]:
    """(invoice id, status) -> event id, for the finalized / paid events billing created since `since_sandbox`."""
    out: dict[tuple[str, str], str] = {}
    for etype, status in (("invoice.finalized", "open"), ("invoice.paid", "paid")):
        for event in await _list_all(sandbox.clients["billing"], "/v1/events",
                                     **{"type": etype, "created[gte]": since_sandbox}):
            out.setdefault((event["data"]["object"]["id"], status), event["id"])
    return out


async def _core_events(sandbox: Sandbox, since: float) -> dict[str, dict[str, Any]]:
    """billing event id -> the core's inbox entry (status, flow ids), for events received since `since`."""
    out: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = ok(await sandbox.core.get("/events", params={"system": "billing", "limit": 1000,
                                                           "offset": offset}))["events"]
        fresh = [e for e in page if datetime.fromisoformat(e["received_at"]).timestamp() >= since]
        out.update((e["event_id"], e) for e in fresh)
        if len(page) < 1000 or len(fresh) < len(page):
            return out
        offset += 1000


async def _burst_invoices(sandbox: Sandbox, subscriptions: set[str], since_sandbox: int) -> list[dict[str, Any]]:
    """The renewal invoices of the bench's subscriptions created since `since_sandbox` (billing's clock)."""
    rows = await _list_all(sandbox.clients["billing"], "/v1/invoices", **{"created[gt]": since_sandbox})
    return [i for i in rows if _subscription_of(i) in subscriptions and i.get("billing_reason") == "subscription_cycle"]


def _subscription_of(invoice: dict[str, Any]) -> str | None:
    if invoice.get("subscription"):
        return str(invoice["subscription"])
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return details.get("subscription")


async def _erp_invoice(sandbox: Sandbox, invoice_id: str) -> dict[str, Any] | None:
    r = await retrying(lambda: sandbox.clients["erp"].get(f"{ERP}/invoice/eid:{invoice_id}"))
    return None if r.status_code == 404 else ok(r)


async def _erp_invoice_count(sandbox: Sandbox) -> int:
    return int(ok(await retrying(lambda: sandbox.clients["erp"].get(f"{ERP}/invoice", params={"limit": 1})))
               ["totalResults"])


async def run_one_burst(sandbox: Sandbox, estate: Estate, *, label: str, timeout: float,
                        say: Callable[[str], None] = print,
                        cpu: Callable[[], dict[str, float]] | None = None) -> dict[str, Any]:
    """Advance billing's clock once and measure everything the burst did (`cpu`: CPU seconds used so far
    per process, read before the advance and after the last flow)."""
    dlq_before = {d["id"] for d in await sandbox.dlq(limit=500)}
    erp_before = await _erp_invoice_count(sandbox)
    clock_before = int(ok(await sandbox.control("billing").get("/clock"))["now"])
    say(f"  burst ({label}): advancing billing's clock 32 days ...")
    cpu_before = cpu() if cpu else {}
    t0 = time.time()
    ok(await sandbox.control("billing").post("/clock/advance", json={"by": ADVANCE_S}))
    advanced = time.time()
    emitted, _ = await _emitted_at(sandbox, t0)  # right away: the log keeps the newest 10,000
    quiet = await sandbox.quiesce(timeout)
    t_quiet = time.time()
    cpu_after = cpu() if cpu else {}
    later, delivery = await _emitted_at(sandbox, t0)  # attempts (intake latency) are known only now
    emitted = {**later, **emitted}

    # Verification traffic is not part of the burst: no limits, so it is quick and does not 429.
    saved = await get_limits(sandbox)
    await set_limits(sandbox, {s: [] for s in saved})
    try:
        invoices = await _burst_invoices(sandbox, estate.subscriptions, clock_before)
        burst_ids = {i["id"] for i in invoices}
        # /flows times are whole seconds: list from the second before, keep the burst invoices' flows.
        flows = [f for f in await list_flows(sandbox, INVOICE_SYNC, since=math.floor(t0) - 1)
                 if f["business_key"].split(":")[1] in burst_ids]
        events = await _invoice_events(sandbox, clock_before)
        received = await _core_events(sandbox, t0 - 1)
        erp_rows = await gather_limited((_erp_invoice(sandbox, i["id"]) for i in invoices), 16)
        erp_after = await _erp_invoice_count(sandbox)
        dlq_after = await sandbox.dlq(limit=500)
        failed_deliveries = await sandbox.deliveries("billing", status="failed", limit=10_000)
    finally:
        await set_limits(sandbox, saved)

    ok_flows = [f for f in flows if f["status"] == "SUCCESS"]
    by_id = {f["workflow_id"]: f for f in flows}
    keys = Counter(f["business_key"] for f in flows)
    dup_flows = sum(n - 1 for n in keys.values() if n > 1)
    # An event is processed when a flow it went to (its own, or the queued flow of its invoice it was
    # coalesced into) ended SUCCESS; its latency runs from billing emitting it to that flow's end.
    expected = [(i["id"], s) for i in invoices for s in ("open", "paid")]
    latencies, fallbacks, ends, unprocessed = [], 0, [], []
    coalesced = 0
    for invoice_id, status in expected:
        event_id = events.get((invoice_id, status))
        entry = received.get(event_id) if event_id else None
        done = [by_id[w] for w in (entry or {}).get("flow_ids", []) if w in by_id and by_id[w]["status"] == "SUCCESS"]
        if not done:
            unprocessed.append(f"{invoice_id}:{status}")
            continue
        coalesced += f"invoice-sync:{invoice_id}:{status}" not in by_id
        end = min(_ts(f["updated_at"]) for f in done)
        origin = emitted.get(event_id) if event_id else None
        if origin is None:
            origin, fallbacks = t0, fallbacks + 1
        ends.append(end)
        latencies.append((end - origin) * 1000)
    erp_missing = [i["id"] for i, row in zip(invoices, erp_rows, strict=True) if row is None]
    erp_stale = [i["id"] for i, row in zip(invoices, erp_rows, strict=True)
                 if row is not None and f"status {i['status']};" not in (row.get("memo") or "")]
    erp_dups = max(0, (erp_after - erp_before) - len(burst_ids))
    fresh_dlq = [d for d in dlq_after if d["id"] not in dlq_before]
    new_dlq = len(fresh_dlq)

    run_ms = [(_ts(f["updated_at"]) - _ts(f["created_at"])) * 1000 for f in ok_flows]
    last_end = max(ends, default=advanced)
    wall = last_end - t0
    processed = len(latencies)
    lost = len(erp_missing) + len(erp_stale) + len(unprocessed) + (len(flows) - len(ok_flows)) + new_dlq \
        + len(failed_deliveries)
    return {
        "label": label,
        "invoices": len(burst_ids),
        "events": processed,
        "flows": len(flows),
        "coalesced_events": coalesced,
        "flows_not_success": len(flows) - len(ok_flows),
        "events_per_s": round(processed / wall, 1) if wall > 0 else None,
        "wall_s": round(wall, 2),
        "advance_call_s": round(advanced - t0, 2),
        "until_quiesced_s": round(t_quiet - t0, 2),
        "quiesce_rounds": quiet["rounds"],
        # CPU per processed event (until quiescence), per process: robust to whatever else the machine runs.
        "cpu_ms_per_event": {name: round((cpu_after[name] - cpu_before[name]) * 1000 / processed, 1)
                             for name in cpu_after if name in cpu_before and processed},
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "latency_origin_fallbacks": fallbacks,
        "flow_run_p50_ms": round(percentile(run_ms, 50), 1),
        "flow_run_p99_ms": round(percentile(run_ms, 99), 1),
        "deliveries": delivery,
        "dlq_reasons": Counter(f"{d.get('error_class')}: {str(d.get('error_message'))[:120]}"
                               for d in fresh_dlq).most_common(5),
        "duplicates": dup_flows + erp_dups,
        "duplicate_flows": dup_flows,
        "duplicate_erp_invoices": erp_dups,
        "lost": lost,
        "lost_detail": {"erp_invoice_missing": len(erp_missing), "erp_status_stale": len(erp_stale),
                        "events_unprocessed": len(unprocessed), "dlq_new": new_dlq,
                        "deliveries_failed": len(failed_deliveries)},
        "examples": {"erp_missing": erp_missing[:3], "erp_stale": erp_stale[:3],
                     "events_unprocessed": sorted(unprocessed)[:3]},
    }


# ---- entry point -----------------------------------------------------------------------------------------------


async def run_mode_async(live: LiveSandbox, *, events: int, subs_per_account: int, limits: bool,
                         timeout: float, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the estate on a running sandbox, then one burst (vendor limits on the mocks as `limits` says)."""
    sandbox = await live.connect()
    try:
        invoices = max(1, math.ceil(events / 2))
        estate = await build_estate(sandbox, invoices=invoices, subs_per_account=subs_per_account,
                                    tag=secrets.token_hex(3), timeout=timeout, say=say)
        say(f"  set-up done in {estate.setup_seconds:.1f} s ({len(estate.accounts)} accounts, "
            f"{len(estate.subscriptions)} subscriptions, {estate.setup_flows} invoice-sync flows, "
            f"{len(estate.setup_flow_failures)} not SUCCESS)")
        label = "limits on" if limits else "limits off"
        if limits:
            result = await run_one_burst(sandbox, estate, label=label, timeout=timeout, say=say,
                                             cpu=live.cpu_seconds)
        else:
            async with limits_off(sandbox):
                result = await run_one_burst(sandbox, estate, label=label, timeout=timeout, say=say,
                                             cpu=live.cpu_seconds)
        result.update(accounts=len(estate.accounts), subscriptions=len(estate.subscriptions),
                      setup_s=round(estate.setup_seconds, 1), setup_flows=estate.setup_flows,
                      setup_flows_not_success=len(estate.setup_flow_failures))
        return result
    finally:
        await sandbox.aclose()


def run_burst(*, events: int = 5000, subs_per_account: int = 25, limits: bool = False, timeout: float = 900.0,
              say: Callable[[str], None] = print) -> dict[str, Any]:
    """One burst of `events` invoice events on a fresh sandbox (`lockstep up` child process).
    limits=True: the mocks' vendor rate limits on and the core's client-side throttles as shipped;
    limits=False: both off (the core's own capacity)."""
    with LiveSandbox(client_limits=limits) as live:
        say(f"month-end burst, {events} invoice events, limits {'on' if limits else 'off'}: sandbox up "
            f"(port offset {live.port_offset}, pid {live.pid()})")
        result = asyncio.run(run_mode_async(live, events=events, subs_per_account=subs_per_account, limits=limits,
                                            timeout=timeout, say=say))
    say(f"  -> {format_result(result)}")
    return result


def format_result(r: dict[str, Any]) -> str:
    return (f"{r['events']} invoice events ({r['invoices']} invoices) in {r['wall_s']} s = {r['events_per_s']} "
            f"events/s; p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; duplicates {r['duplicates']}, lost {r['lost']}"
            + "".join(f"; {name} {ms} CPU-ms/event" for name, ms in r.get("cpu_ms_per_event", {}).items()))


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.burst")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--subs-per-account", type=int, default=25)
    parser.add_argument("--limits", choices=["on", "off"], default="off")
    args = parser.parse_args()
    print(json.dumps(run_burst(events=args.events, subs_per_account=args.subs_per_account,
                               limits=args.limits == "on"), indent=2))
