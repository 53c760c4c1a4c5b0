"""Cockpit: calls to action (CTAs), success plans from templates, milestones, and their clock jobs.

Rules:
- CTA statuses move by `CTA_NEXT` (declarative). Closed statuses (Closed Success / Lost / Invalid) set
  IsClosed and ClosedDate; "Closed Lost" needs a ReasonName; a closed CTA can only be reopened (-> Open).
- A renewal reminder job fires 90 days before a company's RenewalDate (at once if nearer) and opens a
  Renewal CTA unless one is already open.
- A success plan is created from a template: milestones get due dates = start date + template offsets.
  One active plan per (company, template). Each open milestone has a clock job at the end of its due date;
  if still open then, it becomes Overdue (milestone.overdue). Completing a milestone cancels the job;
  completing the last one completes the plan, and an onboarding plan moves a Kick Off / Onboarding company
  to Adopting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mocks.cs.errors import DUPLICATE, INVALID_STATE, INVALID_VALUE, NOT_FOUND, REQUIRED, CSError
from mocks.cs.fields import CTA_CLOSED, CTA_FIELDS, CTA_STATUSES, DAY, clean, date_ts, iso_date, parse_date

if TYPE_CHECKING:
    from mocks.cs.models import CSState

__all__ = ["CTA_NEXT", "TEMPLATES", "close_cta", "complete_milestone", "create_ctas", "create_plan",
           "milestone_due", "plan_of_milestone", "renewal_reminder", "update_cta"]

Record = dict[str, Any]
_OPEN = [s for s in CTA_STATUSES if s not in CTA_CLOSED]
CTA_NEXT: dict[str, set[str]] = {**{s: set(CTA_STATUSES) - {s} for s in _OPEN},
                                 **{s: {"Open"} for s in CTA_CLOSED}}
DEFAULT_DUE_DAYS = 7

# name -> (onboarding?, [(milestone name, days after start)])
TEMPLATES: dict[str, tuple[bool, list[tuple[str, int]]]] = {
    "Standard Onboarding": (True, [("Kickoff call", 3), ("Technical setup", 14), ("Admin training", 21),
                                   ("First value achieved", 30), ("Onboarding review", 45)]),
    "Enterprise Onboarding": (True, [("Executive kickoff", 5), ("SSO and provisioning", 21),
                                     ("Data migration", 35), ("Team rollout", 50), ("Success review", 75)]),
    "Renewal Readiness": (False, [("Usage review", 7), ("Value summary", 21), ("Renewal proposal", 45)]),
}


# ---- CTAs --------------------------------------------------------------------------------------------
def cta(state: CSState, gsid: str) -> Record:
    record = state.ctas.get(gsid)
    if record is None:
        raise CSError(NOT_FOUND, f"No CTA with Gsid {gsid}", 404)
    return record


def create_ctas(state: CSState, rows: list[Record]) -> list[Record]:
    cleaned = []
    for row in rows:
        c = clean(CTA_FIELDS, row, required=("Name", "CompanyId", "TypeName"), obj="CTA")
        state.company_ref(c["CompanyId"])
        status = c.get("StatusName") or "Open"
        if status in CTA_CLOSED:
            raise CSError(INVALID_STATE, f"A CTA cannot be created closed (StatusName = {status})", field="StatusName")
        cleaned.append(c)
    return [_new_cta(state, c) for c in cleaned]


def _new_cta(state: CSState, values: Record) -> Record:
    now = state.now_iso()
    record = {name: None for name in CTA_FIELDS}
    record.update({"PriorityName": "Medium", "StatusName": "Open",
                   "DueDate": iso_date(state.clock.now() + DEFAULT_DUE_DAYS * DAY)})
    record.update({k: v for k, v in values.items() if v is not None})
    record.update({"Gsid": state.new_gsid("cta"), "IsClosed": False, "CreatedDate": now, "ModifiedDate": now})
    state.ctas[record["Gsid"]] = record
    state.emit("cta.created", {}, {"cta": ("cta", record)})
    return record


def update_cta(state: CSState, gsid: str, row: Record) -> Record:
    record = cta(state, gsid)
    changes = clean(CTA_FIELDS, row, obj="CTA")
    for name in ("Name", "CompanyId", "TypeName", "StatusName", "PriorityName", "DueDate"):
        if name in changes and changes[name] is None:
            raise CSError(REQUIRED, f"Invalid field value ({name} = null): {name} is required", field=name)
    if "CompanyId" in changes:
        state.company_ref(changes["CompanyId"])
    status = changes.pop("StatusName", record["StatusName"])
    if record["IsClosed"] and status == record["StatusName"] and changes:
        raise CSError(INVALID_STATE, "A closed CTA cannot be edited; reopen it first (StatusName = Open)")
    record.update(changes)
    record["ModifiedDate"] = state.now_iso()
    if status != record["StatusName"]:
        _move(state, record, status, changes.get("ReasonName"))
    return record


def close_cta(state: CSState, gsid: str, status: str = "Closed Success", reason: str | None = None) -> Record:
    record = cta(state, gsid)
    if status not in CTA_CLOSED:
        raise CSError(INVALID_VALUE, f"Invalid closing status {status!r}; allowed: {sorted(CTA_CLOSED)}",
                      field="StatusName")
    if record["IsClosed"]:
        raise CSError(INVALID_STATE, f"CTA {gsid} is already closed ({record['StatusName']})")
    _move(state, record, status, reason)
    return record


def _move(state: CSState, record: Record, status: str, reason: str | None) -> None:
    current = record["StatusName"]
    if status not in CTA_NEXT[current]:
        raise CSError(INVALID_STATE, f"A CTA in status {current!r} cannot move to {status!r}", field="StatusName")
    if status == "Closed Lost" and not (reason or record.get("ReasonName")):
        raise CSError(REQUIRED, "ReasonName is required to close a CTA as Closed Lost", field="ReasonName")
    now = state.now_iso()
    record.update({"StatusName": status, "ModifiedDate": now})
    if reason:
        record["ReasonName"] = reason
    if status in CTA_CLOSED:
        record.update({"IsClosed": True, "ClosedDate": now})
        state.emit("cta.closed", {}, {"cta": ("cta", record)})
    else:
        record.update({"IsClosed": False, "ClosedDate": None})


def renewal_reminder(state: CSState, company_id: str) -> None:
    company = state.companies.get(company_id)
    if company is None or not company.get("RenewalDate") or company.get("Stage") == "Churned":
        return
    if any(c["CompanyId"] == company_id and c["TypeName"] == "Renewal" and not c["IsClosed"]
           for c in state.ctas.values()):
        return
    _new_cta(state, {"Name": f"Renewal: {company['Name']} renews on {company['RenewalDate']}",
                     "CompanyId": company_id, "TypeName": "Renewal", "PriorityName": "High",
                     "DueDate": company["RenewalDate"], "OwnerId": company.get("CSM"),
                     "ReasonName": "Upcoming renewal"})


# ---- success plans -----------------------------------------------------------------------------------
def plan(state: CSState, gsid: str) -> Record:
    record = state.plans.get(gsid)
    if record is None:
        raise CSError(NOT_FOUND, f"No success plan with Gsid {gsid}", 404)
    return record


def create_plan(state: CSState, company_id: Any, template: Any, name: Any = None, start: Any = None) -> Record:
    if company_id is None:
        raise CSError(REQUIRED, "Invalid field value (CompanyId = null): CompanyId is required", field="CompanyId")
    state.company_ref(company_id)
    if template not in TEMPLATES:
        raise CSError(INVALID_VALUE, f"Unknown success plan template {template!r}; templates: {list(TEMPLATES)}",
                      field="TemplateName")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise CSError(INVALID_VALUE, "Name must be a non-empty string", field="Name")
    if any(p["CompanyId"] == company_id and p["TemplateName"] == template and p["Status"] == "Active"
           for p in state.plans.values()):
        raise CSError(DUPLICATE, f"Company {company_id} already has an active {template!r} plan",
                      field="TemplateName")
    start_date = parse_date("StartDate", start) if start is not None else state.today()
    base = date_ts(start_date)
    now = state.now_iso()
    company = state.companies[company_id]
    plan_id = state.new_gsid("plan")
    milestones = []
    for order, (title, days) in enumerate(TEMPLATES[template][1], start=1):
        mid = state.new_gsid("milestone")
        due = iso_date(base + days * DAY)
        milestones.append({"Gsid": mid, "Name": title, "Order": order, "DueDate": due, "Status": "Open",
                           "CompletedDate": None})
        state.milestone_plan[mid] = plan_id
        state.clock.schedule(date_ts(due) + DAY, "milestone_due", {"milestone": mid}, key=f"milestone:{mid}")
    record = {"Gsid": plan_id, "Name": name.strip() if name else f"{company['Name']} - {template}",
              "TemplateName": template, "CompanyId": company_id, "Status": "Active", "StartDate": start_date,
              "DueDate": milestones[-1]["DueDate"], "CompletedDate": None, "CreatedDate": now,
              "ModifiedDate": now, "Milestones": milestones}
    state.plans[plan_id] = record
    return record


def plan_of_milestone(state: CSState, milestone_id: str) -> tuple[Record, Record]:
    plan_id = state.milestone_plan.get(milestone_id)
    if plan_id is None:
        raise CSError(NOT_FOUND, f"No milestone with Gsid {milestone_id}", 404)
    record = state.plans[plan_id]
    milestone = next(m for m in record["Milestones"] if m["Gsid"] == milestone_id)
    return record, milestone


def _milestone_event(state: CSState, event_type: str, record: Record, milestone: Record) -> None:
    state.emit(event_type, {"planId": record["Gsid"], "companyId": record["CompanyId"],
                            "milestone": dict(milestone)})


def complete_milestone(state: CSState, milestone_id: str) -> Record:
    record, milestone = plan_of_milestone(state, milestone_id)
    if milestone["Status"] == "Completed":
        raise CSError(INVALID_STATE, f"Milestone {milestone_id} is already completed")
    now = state.now_iso()
    milestone.update({"Status": "Completed", "CompletedDate": now})
    record["ModifiedDate"] = now
    state.clock.cancel(f"milestone:{milestone_id}")
    _milestone_event(state, "milestone.completed", record, milestone)
    if all(m["Status"] == "Completed" for m in record["Milestones"]):
        record.update({"Status": "Completed", "CompletedDate": now})
        state.emit("successplan.completed", {"plan": dict(record)})
        company = state.companies.get(record["CompanyId"])
        if TEMPLATES[record["TemplateName"]][0] and company and company["Stage"] in ("Kick Off", "Onboarding"):
            state.update_company(company["Gsid"], {"Stage": "Adopting"}, checked=True)
    return record


def milestone_due(state: CSState, milestone_id: str) -> None:
    if milestone_id not in state.milestone_plan:
        return
    record, milestone = plan_of_milestone(state, milestone_id)
    if milestone["Status"] != "Open":
        return
    milestone["Status"] = "Overdue"
    record["ModifiedDate"] = state.now_iso()
    _milestone_event(state, "milestone.overdue", record, milestone)
