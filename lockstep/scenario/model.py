"""The scenario file format, as pydantic models: the single source of the JSON Schema shipped in scenarios/.

A scenario is one YAML document:

    name: merge_two_way                 # [a-z0-9_], unique across the suite
    description: ...
    tags: [merge, smoke]
    seed: 7                             # optional; `lockstep run --seed` wins over it
    known_issue: "..."                  # optional: expected to fail today (reported as xfail, never hidden)
    tenant: {versions, limits, faults, chaos}   # tenant-wide settings: the scenario runs exclusive
    setup: [{account: a, ...}, {booked: b}, {deal: d}, {link: ...}]
    steps: [{act: ...}, {do: ...}, {advance: ...}, {fault: ...}, {limit: ...}, {drift: ...},
            {chaos: ...}, {await: ...}, {expect: [...]}]
    invariants: {allow_findings: [...], skip: [...]}

Strings may use `${name}` / `${name.field}` (bindings from setup and `save:`); a string that is exactly one
`${...}` keeps the bound value's type.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "STEP_KINDS", "SYSTEMS", "Expectation", "Scenario", "SetupItem", "Step",
]

SYSTEMS = ("crm", "erp", "billing", "cs")
System = Literal["crm", "erp", "billing", "cs"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
Duration = Annotated[str | float, Field(description='seconds, or "90s", "15m", "2h", "32d"')]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# -- where values come from --------------------------------------------------------------------------------


class Call(_Strict):
    """One HTTP call on a system's vendor API, as the scenario's tenant."""

    system: System
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = Field(min_length=1, description="path on the vendor API, e.g. /v1/customers/${a.billing}")
    params: dict[str, Any] | None = None
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, Any] | None = Field(default=None, description="form-encoded body (the billing API)")
    headers: dict[str, str] | None = None


class FlowQuery(_Strict):
    """Core flows whose workflow id starts with `prefix` (oldest first), or of one registered `flow`."""

    prefix: str | None = None
    flow: str | None = None
    status: str | None = None


class DlqQuery(_Strict):
    prefix: str | None = Field(default=None, description="business key prefix")
    status: Literal["parked", "replaying", "resolved"] | None = None


class JournalQuery(_Strict):
    """The mock's request journal (every call it answered, newest first), filtered."""

    system: System
    method: str | None = None
    path_contains: str | None = None
    status: int | None = None
    fault: bool | None = Field(default=None, description="only calls a fault rule answered")


class DeliveryQuery(_Strict):
    system: System
    event_type: str | None = None
    status: str | None = None


# -- assertions --------------------------------------------------------------------------------------------


OPS = ("equals", "not_equals", "approx", "contains", "not_contains", "length", "matches", "exists", "gt", "gte",
       "lt", "lte", "one_of")


class Expectation(_Strict):
    """One assertion: a source (exactly one of call / flows / flow / dlq / crosswalk / deliveries / journal /
    reconcile / value), an optional JMESPath `at` into it, and one or more operators (all must hold)."""

    name: str | None = Field(default=None, description="what this checks, in words (shown in reports)")
    call: Call | None = None
    flows: FlowQuery | str | None = Field(default=None, description="a workflow id prefix, or a query")
    flow: str | None = Field(default=None, description="one flow by workflow id (its status, steps, dlq)")
    dlq: DlqQuery | None = None
    crosswalk: str | None = Field(default=None, description="a canonical id: {id, resolved, refs, aliases, ...}")
    deliveries: DeliveryQuery | None = None
    journal: JournalQuery | None = None
    reconcile: list[str] | str | None = Field(default=None, description="canonical account id(s): the report")
    value: Any = Field(default=None, description="a literal or ${binding}")
    at: str | None = Field(default=None, description="JMESPath into the source, e.g. records[0].Status")
    scale: float | None = Field(default=None, description="multiply the selected number before comparing "
                                "(e.g. 100: ERP major units vs billing minor units)")
    equals: Any = None
    not_equals: Any = None
    approx: float | str | None = None
    tolerance: float = Field(default=0.005, ge=0)
    contains: Any = None
    not_contains: Any = None
    length: int | None = Field(default=None, ge=0)
    matches: str | None = Field(default=None, description="a regular expression (re.search)")
    exists: bool | None = None
    gt: float | str | None = Field(default=None, description="a number or a ${binding}")
    gte: float | str | None = Field(default=None, description="a number or a ${binding}")
    lt: float | str | None = Field(default=None, description="a number or a ${binding}")
    lte: float | str | None = Field(default=None, description="a number or a ${binding}")
    one_of: list[Any] | None = None

    @model_validator(mode="after")
    def _one_source_some_ops(self) -> Expectation:
        sources = [k for k in ("call", "flows", "flow", "dlq", "crosswalk", "deliveries", "journal", "reconcile")
                   if getattr(self, k) is not None]
        if "value" in self.model_fields_set:
            sources.append("value")
        if len(sources) != 1:
            raise ValueError("an expectation needs exactly one source (call, flows, flow, dlq, crosswalk, "
                             f"deliveries, reconcile, value); got {sources or 'none'}")
        if not self.ops():
            raise ValueError(f"an expectation needs at least one check: {', '.join(OPS)}")
        return self

    def source(self) -> str:
        for k in ("call", "flows", "flow", "dlq", "crosswalk", "deliveries", "journal", "reconcile"):
            if getattr(self, k) is not None:
                return k
        return "value"

    def ops(self) -> dict[str, Any]:
        return {op: getattr(self, op) for op in OPS if op in self.model_fields_set}


# -- setup -------------------------------------------------------------------------------------------------


class AccountSpec(_Strict):
    """`account: a` - one customer already in all four systems, linked in the crosswalk as lead to cash links
    it: CRM account, ERP customer + contract sales order, CS company, billing customer on its own test clock
    with a visa card and (unless subscribe: false) a subscription whose first invoice is paid."""

    account: Name
    unit_amount: int = Field(default=1000, ge=1, description="price per unit, minor units (cents)")
    quantity: int = Field(default=10, ge=1)
    interval: Literal["month", "year"] = "month"
    currency: Literal["usd", "eur", "gbp"] = "usd"
    subscribe: bool = True
    card: str = Field(default="pm_card_visa", description="a Stripe test payment method")
    collection: Literal["charge_automatically", "send_invoice"] = "charge_automatically"


class DealSpec(_Strict):
    """`deal: d` - a CRM account with an open opportunity (nothing synced yet)."""

    deal: Name
    country: str = "Germany"
    tax: str | None = "DE123456789"
    amount: float = Field(default=24000.0, gt=0)


class BookedSpec(_Strict):
    """`booked: b` - a deal closed won and booked by lead to cash (waits for the flow to succeed)."""

    booked: Name
    country: str = "Germany"
    tax: str | None = "DE123456789"
    amount: float = Field(default=24000.0, gt=0)


SetupItem = AccountSpec | DealSpec | BookedSpec


# -- steps -------------------------------------------------------------------------------------------------


class Act(Call):
    """A vendor API call. `expect_status` (default: any 2xx); `save`: {binding: JMESPath into the response}."""

    expect_status: int | list[int] | None = None
    save: dict[Name, str] | None = None


class Do(_Strict):
    """A sandbox user action (what a person does in a vendor's UI) or a named helper; see ACTIONS in actions.py."""

    action: Literal["merge", "close_won", "close_lost", "edit", "set_card", "pay_invoice", "replay_dlq",
                    "redeliver", "sandbox", "lookup_booked"]
    args: dict[str, Any] = Field(default_factory=dict)
    save: dict[Name, str] | None = None


class Advance(_Strict):
    """Move time. `clock: a` moves account a's billing test clock (scenario-private); `system:` moves that
    mock's tenant clock (tenant-wide: the scenario runs exclusive)."""

    clock: Name | None = None
    system: System | None = None
    by: Duration
    settle: bool = Field(default=True, description="wait for quiet afterwards (false: race the next step)")

    @model_validator(mode="after")
    def _one(self) -> Advance:
        if (self.clock is None) == (self.system is None):
            raise ValueError("advance needs exactly one of clock (an account's billing test clock) or system")
        return self


class Fault(_Strict):
    """Replace a system's fault rules (the mock's FaultRule list); `rules: []` clears them."""

    system: System
    rules: list[dict[str, Any]]


class Limit(_Strict):
    """Replace a system's rate-limit policies (the mock's RateLimitPolicy list); null restores the defaults."""

    system: System
    policies: list[dict[str, Any]] | None


class Drift(_Strict):
    """Move a system's tenant to another API version (schema drift); `version: pinned` goes back."""

    system: System
    version: str


class Chaos(_Strict):
    """Webhook delivery chaos on a system: duplicates, reordering, delays (all off = calm)."""

    system: System
    duplicate_probability: float = Field(default=0.0, ge=0, le=1)
    reorder_probability: float = Field(default=0.0, ge=0, le=1)
    delay_ms: float = Field(default=0.0, ge=0, le=10_000)
    hold_ms: float = Field(default=50.0, ge=0, le=10_000)


class Await(_Strict):
    """Wait: `quiet` (every webhook drained, no flow running), a flow reaching a status, or expectations
    that must all hold (polled until `timeout`)."""

    quiet: bool | None = None
    flow: str | None = None
    status: list[str] | str | None = None
    until: list[Expectation] | None = None
    timeout: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one(self) -> Await:
        if sum(x is not None for x in (self.quiet, self.flow, self.until)) != 1:
            raise ValueError("await needs exactly one of quiet, flow, until")
        return self


class ActStep(_Strict):
    act: Act
    note: str | None = None


class DoStep(_Strict):
    do: Do
    note: str | None = None


class AdvanceStep(_Strict):
    advance: Advance
    note: str | None = None


class FaultStep(_Strict):
    fault: Fault
    note: str | None = None


class LimitStep(_Strict):
    limit: Limit
    note: str | None = None


class DriftStep(_Strict):
    drift: Drift
    note: str | None = None


class ChaosStep(_Strict):
    chaos: Chaos
    note: str | None = None


class AwaitStep(_Strict):
    await_: Await | Literal["quiet"] = Field(alias="await")
    note: str | None = None


class ExpectStep(_Strict):
    """Expectations, checked once the sandbox is quiet (`settle: false` checks at once)."""

    expect: list[Expectation] = Field(min_length=1)
    settle: bool = True
    note: str | None = None


Step = ActStep | DoStep | AdvanceStep | FaultStep | LimitStep | DriftStep | ChaosStep | AwaitStep | ExpectStep
STEP_KINDS: dict[str, type[BaseModel]] = {
    "act": ActStep, "do": DoStep, "advance": AdvanceStep, "fault": FaultStep, "limit": LimitStep,
    "drift": DriftStep, "chaos": ChaosStep, "await": AwaitStep, "expect": ExpectStep,
}
SETUP_KINDS: dict[str, type[BaseModel]] = {"account": AccountSpec, "deal": DealSpec, "booked": BookedSpec}
TENANT_WIDE = ("fault", "limit", "drift", "chaos")


class TenantSettings(_Strict):
    """Tenant-wide settings applied before setup (and undone after): the scenario runs exclusive."""

    versions: dict[System, str] = Field(default_factory=dict)
    limits: dict[System, list[dict[str, Any]]] = Field(default_factory=dict)
    faults: dict[System, list[dict[str, Any]]] = Field(default_factory=dict)


class AllowedFinding(_Strict):
    kind: Literal["missing", "orphan", "conflict"] | None = None
    system: System | None = None
    field: str | None = None
    why: str = Field(min_length=1, description="why this finding is expected after the scenario")


class Invariants(_Strict):
    """The standing checks after every scenario: no duplicate customer in any system, every crosswalk entry
    resolves, no stuck flow, reconcile has no findings beyond `allow_findings`."""

    allow_findings: list[AllowedFinding] = Field(default_factory=list)
    skip: list[Literal["duplicates", "crosswalk", "stuck_flows", "reconcile"]] = Field(default_factory=list)


class Scenario(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=80)]
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    seed: int | None = None
    known_issue: str | None = Field(default=None, description="a real bug this scenario exposes today: it is "
                                    "expected to fail (xfail) and the report says why")
    tenant: TenantSettings = Field(default_factory=TenantSettings)
    setup: list[SetupItem] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    invariants: Invariants = Field(default_factory=Invariants)

    @property
    def exclusive(self) -> bool:
        """Changes tenant-wide settings (faults, limits, versions, chaos, a tenant clock): runs alone."""
        if self.tenant.versions or self.tenant.limits or self.tenant.faults:
            return True
        for step in self.steps:
            if isinstance(step, FaultStep | LimitStep | DriftStep | ChaosStep):
                return True
            if isinstance(step, AdvanceStep) and step.advance.system is not None:
                return True
        return False


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (what scenarios/scenario.schema.json holds)."""
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://lockstep.dev/schemas/scenario.schema.json"
    schema["title"] = "Lockstep scenario"
    return schema
