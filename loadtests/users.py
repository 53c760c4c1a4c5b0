"""Locust users: the lifecycle traffic of a customer estate against the sandbox's vendor APIs.

Every user works on the estate the runner built (linked accounts in all four systems, listed in the plan) as
the core-wired tenant, so its writes become webhooks into the core like a real org's would. Each user draws
from its own `random.Random`, seeded from the plan's seed, the worker's index and the user's number on that
worker: the same plan gives every user the same choices run after run (timings still vary).

Vendor rate limits stay on. A 429 is what the vendor does, not a failure of the run: the user honours
`Retry-After` (capped) like a well-behaved client and the request is counted under its own name with a
`[429]` suffix, so the stats show throttling per endpoint and the failure ratio counts real errors only.
Every request carries `X-Correlation-Id: load-...`; the core's own calls carry its correlation id and a
W3C `traceparent`, which is how the runner tells the core's 429s from the load's in the mocks' journals.

In an echo stage (plan.echo_at), each write is sent a second time with the same idempotency key (a client
retry storm) and the EchoUser redelivers billing webhooks the core has already taken (a vendor retry storm):
the core must absorb both without a duplicate.
"""

from __future__ import annotations

import itertools
import random
import time
import urllib.parse
from typing import Any

from locust import FastHttpUser, between, constant, events, task
from locust.env import Environment

from loadtests.plan import LOAD_CORRELATION_PREFIX, Plan

CRM = "/services/data/v60.0"
ERP = "/services/rest/record/v1"
MAX_RETRY_AFTER_S = 5.0
CS_MEASURES = ("Product Adoption", "Support", "Engagement", "NPS", "Relationship")

_PLAN: Plan | None = None
_RUN_STARTED: float | None = None
_USER_NUMBERS = itertools.count()


def plan() -> Plan:
    global _PLAN
    if _PLAN is None:
        _PLAN = Plan.from_env()
    return _PLAN


@events.test_start.add_listener
def _mark_start(environment: Environment, **_: Any) -> None:
    """Each process's clock for the plan's timetable (fires on the master and on every worker)."""
    global _RUN_STARTED
    _RUN_STARTED = time.monotonic()


def run_time() -> float:
    return 0.0 if _RUN_STARTED is None else time.monotonic() - _RUN_STARTED


def only_in(*shapes: str) -> Any:
    """Mark a task as belonging to some shapes only; `bind` leaves it out of every other shape's run."""

    def mark(fn: Any) -> Any:
        fn.only_in = frozenset(shapes)
        return fn

    return mark


class VendorUser(FastHttpUser):
    """One system's API as the core-wired tenant; helpers for seeded choices, 429 handling and echo retries."""

    abstract = True
    system = ""
    network_timeout = 120.0
    connection_timeout = 30.0

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        p = self.plan = plan()
        worker = int(getattr(environment.runner, "worker_index", 0) or 0)
        self.number = next(_USER_NUMBERS)
        self.rng = random.Random(f"{p.seed}:{type(self).__name__}:{worker}:{self.number}")
        self.tag = f"w{worker}u{self.number}"
        self.calls = itertools.count()

    # -- helpers ---------------------------------------------------------------------------------------

    def auth(self) -> dict[str, str]:
        key = self.plan.keys[self.system]
        return {"accesskey": key} if self.system == "cs" else {"Authorization": f"Bearer {key}"}

    def account(self) -> dict[str, str]:
        return self.rng.choice(self.plan.accounts)

    def correlation(self) -> str:
        return f"{LOAD_CORRELATION_PREFIX}{self.system}-{self.tag}-{next(self.calls)}"

    def call(self, method: str, path: str, name: str, *, body: Any = None, form: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, ok: tuple[int, ...] = ()) -> Any:
        """One request. 2xx (and statuses in `ok`) pass; 429 waits out Retry-After and counts as `name [429]`;
        anything else is a failure with the status and the start of the body. Returns the JSON body or None."""
        sent = {**self.auth(), "X-Correlation-Id": self.correlation(), **(headers or {})}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        label = f"{self.system} {method} {name}"
        with self.client.request(method, path, name=label, data=data, json=body, headers=sent,
                                 catch_response=True) as response:
            status = response.status_code
            if status == 429:
                response.request_meta["name"] = f"{label} [429]"
                response.success()
                self._wait_out(response.headers.get("retry-after") if response.headers else None)
                return None
            if 200 <= status < 300 or status in ok:
                response.success()
                try:
                    return response.json() if response.content else None
                except ValueError:
                    return None
            text = (response.text or "")[:200] if response.content else ""
            response.failure(f"{status}: {text}")
            return None

    def _wait_out(self, retry_after: str | None) -> None:
        try:
            wait = float(retry_after) if retry_after else 1.0
        except ValueError:
            wait = 1.0
        time.sleep(min(MAX_RETRY_AFTER_S, max(0.05, wait)))

    def write(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        """A write with an idempotency key; in an echo stage it is sent twice with the same key (a retry)."""
        key = f"{LOAD_CORRELATION_PREFIX}{self.plan.seed}-{self.tag}-{next(self.calls)}"
        headers = {**kwargs.pop("headers", {}), "Idempotency-Key": key}
        first = self.call(method, path, name, headers=headers, **kwargs)
        if self.plan.echo_at(run_time()):
            self.call(method, path, f"{name} (retry)", headers=headers, **kwargs)
        return first


class BillingUser(VendorUser):
    """Finance ops around the invoice run: invoices and subscriptions per customer, customer notes; in a
    backfill, paging through every invoice."""

    system = "billing"
    wait_time = between(1.0, 3.0)

    @task(4)
    def customer_invoices(self) -> None:
        customer = self.account()["billing_customer"]
        page = self.call("GET", f"/v1/invoices?customer={customer}&limit=10", "/v1/invoices?customer")
        invoices = (page or {}).get("data") or []
        if invoices:
            invoice = self.rng.choice(invoices)["id"]
            self.call("GET", f"/v1/invoices/{invoice}", "/v1/invoices/[id]")

    @task(2)
    def customer_subscriptions(self) -> None:
        customer = self.account()["billing_customer"]
        self.call("GET", f"/v1/subscriptions?customer={customer}&limit=10", "/v1/subscriptions?customer")

    @task(1)
    def note_on_customer(self) -> None:
        customer = self.account()["billing_customer"]
        self.write("POST", f"/v1/customers/{customer}", "/v1/customers/[id]",
                   form={"metadata[load_note]": f"checked {self.rng.randrange(10_000)}"})

    @task(1)
    @only_in("migration_backfill")
    def page_invoices(self) -> None:
        after = ""
        for _ in range(3):
            page = self.call("GET", f"/v1/invoices?limit=100{after}", "/v1/invoices (page)")
            rows = (page or {}).get("data") or []
            if not rows or not page.get("has_more"):
                return
            after = f"&starting_after={rows[-1]['id']}"


class CrmUser(VendorUser):
    """Account managers: account reads and updates, SOQL lists; renewal opportunities at quarter end."""

    system = "crm"
    wait_time = between(1.0, 3.0)

    @task(3)
    def update_account(self) -> None:
        crm_id = self.account()["crm_account"]
        self.write("PATCH", f"{CRM}/sobjects/Account/{crm_id}", "sobjects/Account/[id]",
                   body={"Description": f"{self.plan.shape} touch {self.rng.randrange(100_000)}"})

    @task(2)
    def read_account(self) -> None:
        crm_id = self.account()["crm_account"]
        self.call("GET", f"{CRM}/sobjects/Account/{crm_id}", "sobjects/Account/[id]")

    @task(2)
    def list_accounts(self) -> None:
        q = urllib.parse.quote("SELECT Id, Name, AR_Balance__c FROM Account ORDER BY Name LIMIT 50")
        self.call("GET", f"{CRM}/query?q={q}", "query (accounts)")

    @task(2)
    @only_in("quarter_end_renewals")
    def renewal_opportunity(self) -> None:
        account = self.account()
        made = self.write("POST", f"{CRM}/sobjects/Opportunity", "sobjects/Opportunity", body={
            "AccountId": account["crm_account"], "Name": f"Renewal {self.tag}-{self.rng.randrange(10**6)}",
            "StageName": "Prospecting", "CloseDate": "2026-12-31", "Amount": float(self.rng.randrange(5, 50) * 1000)})
        if made and made.get("id"):
            self.write("PATCH", f"{CRM}/sobjects/Opportunity/{made['id']}", "sobjects/Opportunity/[id]",
                       body={"StageName": "Qualification"})


class ErpUser(VendorUser):
    """Finance reading the ERP: customers, their orders and invoices, SuiteQL; pages of invoices in a backfill."""

    system = "erp"
    wait_time = between(1.0, 3.0)

    @task(3)
    def read_customer(self) -> None:
        self.call("GET", f"{ERP}/customer/{self.account()['erp_customer']}", "customer/[id]")

    @task(2)
    def suiteql_orders(self) -> None:
        customer = self.account()["erp_customer"]
        self.call("POST", "/services/rest/query/v1/suiteql?limit=20", "suiteql (transactions)",
                  body={"q": "SELECT id, tranid, type, status, foreigntotal FROM transaction "
                             f"WHERE entity = '{customer}'"},
                  headers={"Prefer": "transient"})

    @task(2)
    def list_invoices(self) -> None:
        offset = self.rng.randrange(0, 5) * 50 if self.plan.shape == "migration_backfill" else 0
        self.call("GET", f"{ERP}/invoice?limit=50&offset={offset}", "invoice (list)")


class CsUser(VendorUser):
    """CSMs: scorecard measures (health updates) and company lookups."""

    system = "cs"
    wait_time = between(3.0, 8.0)  # Gainsight allows ~200 calls a minute per tenant, shared with the core

    @task(3)
    def update_health(self) -> None:
        gsid = self.account().get("cs_company")
        if not gsid:
            return
        measures = [{"name": m, "score": self.rng.randrange(20, 100)} for m in self.rng.sample(CS_MEASURES, 2)]
        self.call("PUT", f"/v1/scorecard/company/{gsid}/measures", "scorecard/company/[id]/measures",
                  body={"measures": measures})

    @task(1)
    def read_company(self) -> None:
        gsid = self.account().get("cs_company")
        if not gsid:
            return
        self.call("POST", "/v1/data/objects/query/Company", "data/objects/query/Company", body={
            "select": ["Gsid", "Name", "HealthScore"], "limit": 1, "where": {
                "conditions": [{"name": "Gsid", "alias": "A", "value": [gsid], "operator": "EQ"}],
                "expression": "A"}})


class ControlUser(FastHttpUser):
    """Sandbox control calls (admin token), named `control ...` in the stats and held to no latency target."""

    abstract = True
    fixed_count = 1
    network_timeout = 900.0  # a month-end clock advance renews every subscription in one call

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        p = self.plan = plan()
        self.base = f"/_sandbox/tenants/{p.keys['billing']}"
        self.headers = {"Lockstep-Admin-Token": p.admin_token}
        self.rng = random.Random(f"{p.seed}:{type(self).__name__}")
        self.done = False


class MonthEndClockUser(ControlUser):
    """The invoice run: at the plan's tick, billing's sandbox clock moves to the month end, so every monthly
    subscription renews (draft -> finalized -> paid, webhooks to the core). `to` an instant, not `by`, so a
    respawned user cannot run a second month."""

    wait_time = constant(0.5)

    @task
    def tick(self) -> None:
        p = self.plan
        if p.tick_at_s is None or p.tick_to is None or run_time() < p.tick_at_s or self.done:
            return
        with self.client.post(f"{self.base}/clock/advance", json={"to": p.tick_to}, headers=self.headers,
                              name="control POST billing clock/advance (month end)", catch_response=True) as r:
            backwards = r.status_code == 400 and "backwards" in (r.text or "")
            if r.status_code == 200 or backwards:  # already at (or past) the month end: nothing to run twice
                r.success()
                self.done = True
            else:
                r.failure(f"{r.status_code}: {(r.text or '')[:200]}")


class EchoUser(ControlUser):
    """In an echo stage: billing redelivers webhooks the core already took, as a vendor retry storm does."""

    wait_time = constant(0.5)

    @task
    def redeliver(self) -> None:
        if not self.plan.echo_at(run_time()):
            return
        with self.client.get(f"{self.base}/deliveries?status=delivered&limit=100", headers=self.headers,
                             name="control GET billing deliveries", catch_response=True) as r:
            rows = r.json() if r.status_code == 200 else []
            if r.status_code != 200:
                r.failure(f"{r.status_code}")
        for row in self.rng.sample(rows, min(5, len(rows))):
            self.client.post(f"{self.base}/deliveries/{row['id']}/redeliver", headers=self.headers,
                             name="control POST billing redeliver")


LIFECYCLE_USERS: tuple[type[VendorUser], ...] = (BillingUser, CrmUser, ErpUser, CsUser)
CONTROL_USERS: tuple[type[ControlUser], ...] = (MonthEndClockUser, EchoUser)


def bind(p: Plan) -> None:
    """Point every user class at the plan's servers and give each its weight in the plan's mix."""
    for cls in LIFECYCLE_USERS:
        cls.host = p.urls[cls.system]
        cls.weight = p.mix.get(cls.__name__, 1)
        cls.tasks = [t for t in cls.tasks if p.shape in getattr(t, "only_in", {p.shape})]
    for control in CONTROL_USERS:
        control.host = p.urls["billing"]
