"""Pydantic models of the CS wire format, used for request parsing at the edge and for the OpenAPI document.

Only the edge uses them: state stays plain dicts. Write models are lenient (`extra="allow"`, strings
for picklists) because the same body may carry another API version's field names; the models layer
refuses unknown fields and bad picklist values with Gainsight's codes. Their JSON schema still documents
the picklists and `additionalProperties: false`, so generated clients and Schemathesis send valid data.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mocks.cs.fields import (
    ACTIVITY_TYPES,
    COMPANY_STATUSES,
    CTA_CLOSED,
    CTA_PRIORITIES,
    CTA_STATUSES,
    CTA_TYPES,
    STAGES,
)
from mocks.cs.query import OPERATORS

MAX_BATCH = 50
_WRITE = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})


def _pick(values: list[str], description: str = "") -> Any:
    return Field(None, json_schema_extra={"enum": list(values)}, description=description or None)


def _batch(description: str) -> Any:
    return Field(json_schema_extra={"minItems": 1, "maxItems": MAX_BATCH}, description=description)


class Envelope(BaseModel):
    result: bool
    errorCode: str | None = None
    errorDesc: str | None = None
    requestId: str
    message: str | None = None


class ErrorEnvelope(Envelope):
    data: None = None


# ---- company ----------------------------------------------------------------------------------------
class Company(BaseModel):
    Gsid: str | None = None
    Name: str | None = None
    ExternalId: str | None = None
    ARR: float | None = None
    MRR: float | None = None
    RenewalDate: str | None = Field(None, description="YYYY-MM-DD")
    CSM: str | None = None
    Stage: Literal[tuple(STAGES)] | None = None  # type: ignore[valid-type]
    Industry: str | None = None
    Status: Literal[tuple(COMPANY_STATUSES)] | None = None  # type: ignore[valid-type]
    HealthScore: int | None = Field(None, ge=0, le=100, description="Overall health (read-only)")
    HealthTrend: Literal["up", "down", "flat"] | None = None
    CreatedDate: str | None = None
    ModifiedDate: str | None = None


class CompanyInput(BaseModel):
    model_config = _WRITE
    Gsid: str | None = Field(None, description="Only as an update key (keys=Gsid)")
    Name: str | None = Field(None, description="Required on insert")
    ExternalId: str | None = None
    ARR: float | None = Field(None, ge=0)
    MRR: float | None = Field(None, ge=0)
    RenewalDate: str | None = Field(None, json_schema_extra={"format": "date"})
    CSM: str | None = None
    Stage: str | None = _pick(STAGES)
    Industry: str | None = None
    Status: str | None = _pick(COMPANY_STATUSES)


class CompanyWrite(BaseModel):
    records: list[CompanyInput] = _batch("Up to 50 records per call")


class WriteResult(BaseModel):
    Gsid: str
    action: Literal["inserted", "updated"] | None = None


class WriteData(BaseModel):
    count: int
    errors: None = None
    records: list[WriteResult]


class WriteResponse(Envelope):
    data: WriteData


class Condition(BaseModel):
    name: str
    alias: str | None = None
    value: list[Any] | Any = None
    operator: Literal[tuple(OPERATORS)] = "EQ"  # type: ignore[valid-type]


class Where(BaseModel):
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra={"maxItems": 20})
    expression: str | None = Field(None, description="e.g. 'A AND (B OR C)'; default: all AND-ed")


class QueryRequest(BaseModel):
    select: list[str] = Field(default_factory=list, description="Fields to return; empty = all")
    where: Where | None = None
    orderBy: dict[str, Literal["asc", "desc", "ASC", "DESC"]] | None = None
    limit: int = Field(50, ge=1, le=MAX_BATCH)
    offset: int = Field(0, ge=0)


class CompanyRecords(BaseModel):
    records: list[Company]


class CompanyQueryResponse(Envelope):
    data: CompanyRecords


class DeleteData(BaseModel):
    count: int
    Gsid: str


class DeleteResponse(Envelope):
    data: DeleteData


# ---- person -----------------------------------------------------------------------------------------
class Person(BaseModel):
    Gsid: str | None = None
    Email: str | None = None
    FirstName: str | None = None
    LastName: str | None = None
    Name: str | None = None
    Role: str | None = None
    CompanyId: str | None = None
    CreatedDate: str | None = None
    ModifiedDate: str | None = None


class PersonInput(BaseModel):
    model_config = _WRITE
    Email: str = Field(json_schema_extra={"format": "email"})
    FirstName: str | None = None
    LastName: str | None = None
    Role: str | None = None
    CompanyId: str | None = Field(None, description="Gsid of the person's company")


class PersonResponse(Envelope):
    data: Person


class PersonRecords(BaseModel):
    records: list[Person]


class PersonQueryResponse(Envelope):
    data: PersonRecords


# ---- timeline ---------------------------------------------------------------------------------------
class Activity(BaseModel):
    Gsid: str
    ExternalId: str | None = None
    Subject: str | None = None
    Notes: str | None = None
    ActivityDate: str | None = None
    TypeName: Literal[tuple(ACTIVITY_TYPES)] | None = None  # type: ignore[valid-type]
    CompanyId: str | None = None
    Author: str | None = None
    CreatedDate: str | None = None
    ModifiedDate: str | None = None


class ActivityInput(BaseModel):
    model_config = _WRITE
    ExternalId: str | None = Field(None, description="Dedupe key: a known ExternalId updates that activity")
    Subject: str | None = Field(None, description="Required")
    Notes: str | None = None
    ActivityDate: str | int | None = Field(None, description="ISO date-time or epoch milliseconds")
    TypeName: str | None = _pick(ACTIVITY_TYPES, "Required")
    CompanyId: str | None = Field(None, description="Required: Gsid of the company")
    Author: str | None = None


class ActivityData(BaseModel):
    activityId: str
    created: bool
    activity: Activity


class ActivityResponse(Envelope):
    data: ActivityData


class ActivityList(BaseModel):
    records: list[Activity]


class ActivityListResponse(Envelope):
    data: ActivityList


# ---- CTA --------------------------------------------------------------------------------------------
class Cta(BaseModel):
    Gsid: str
    Name: str | None = None
    CompanyId: str | None = None
    TypeName: Literal[tuple(CTA_TYPES)] | None = None  # type: ignore[valid-type]
    PriorityName: Literal[tuple(CTA_PRIORITIES)] | None = None  # type: ignore[valid-type]
    StatusName: Literal[tuple(CTA_STATUSES)] | None = None  # type: ignore[valid-type]
    ReasonName: str | None = None
    DueDate: str | None = None
    OwnerId: str | None = None
    Comments: str | None = None
    IsClosed: bool | None = None
    ClosedDate: str | None = None
    CreatedDate: str | None = None
    ModifiedDate: str | None = None


class CtaInput(BaseModel):
    model_config = _WRITE
    Name: str | None = Field(None, description="Required on create")
    CompanyId: str | None = Field(None, description="Required on create")
    TypeName: str | None = _pick(CTA_TYPES, "Required on create")
    PriorityName: str | None = _pick(CTA_PRIORITIES)
    StatusName: str | None = _pick(CTA_STATUSES)
    ReasonName: str | None = None
    DueDate: str | None = Field(None, json_schema_extra={"format": "date"})
    OwnerId: str | None = None
    Comments: str | None = None


class CtaUpdate(CtaInput):
    Gsid: str


class CtaCreate(BaseModel):
    requests: list[CtaInput] = _batch("Up to 50 CTAs per call")


class CtaUpdateRequest(BaseModel):
    requests: list[CtaUpdate] = _batch("Up to 50 CTAs per call")


class CtaClose(BaseModel):
    StatusName: str = Field("Closed Success", json_schema_extra={"enum": sorted(CTA_CLOSED)})
    ReasonName: str | None = None


class CtaRecords(BaseModel):
    count: int
    records: list[Cta]


class CtaListResponse(Envelope):
    data: CtaRecords


class CtaResponse(Envelope):
    data: Cta


# ---- success plans ----------------------------------------------------------------------------------
class Milestone(BaseModel):
    Gsid: str
    Name: str
    Order: int
    DueDate: str
    Status: Literal["Open", "Overdue", "Completed"]
    CompletedDate: str | None = None


class SuccessPlan(BaseModel):
    Gsid: str
    Name: str
    TemplateName: str
    CompanyId: str
    Status: Literal["Active", "Completed"]
    StartDate: str
    DueDate: str
    CompletedDate: str | None = None
    CreatedDate: str
    ModifiedDate: str
    Milestones: list[Milestone]


class PlanCreate(BaseModel):
    CompanyId: str
    TemplateName: str = Field(json_schema_extra={"enum": ["Standard Onboarding", "Enterprise Onboarding",
                                                          "Renewal Readiness"]})
    Name: str | None = None
    StartDate: str | None = Field(None, json_schema_extra={"format": "date"})


class PlanResponse(Envelope):
    data: SuccessPlan


class PlanRecords(BaseModel):
    records: list[SuccessPlan]


class PlanListResponse(Envelope):
    data: PlanRecords


class TemplateMilestone(BaseModel):
    Name: str
    OffsetDays: int


class Template(BaseModel):
    Name: str
    Onboarding: bool
    Milestones: list[TemplateMilestone]


class TemplateRecords(BaseModel):
    records: list[Template]


class TemplateListResponse(Envelope):
    data: TemplateRecords


# ---- scorecard --------------------------------------------------------------------------------------
class MeasureInput(BaseModel):
    name: str
    score: float | None = Field(None, ge=0, le=100)
    comments: str | None = None


class MeasureWrite(BaseModel):
    measures: list[MeasureInput] = _batch("Up to 50 measure scores per call")


class Measure(BaseModel):
    name: str
    weight: int
    score: int | None = None
    color: Literal["red", "yellow", "green"] | None = None
    comments: str | None = None
    updatedDate: str | None = None


class HistoryPoint(BaseModel):
    date: str
    score: int | None = None
    trend: Literal["up", "down", "flat"]


class Scorecard(BaseModel):
    companyId: str
    score: int | None = None
    trend: Literal["up", "down", "flat"] | None = None
    color: Literal["red", "yellow", "green"] | None = None
    measures: list[Measure]
    history: list[HistoryPoint]


class ScorecardResponse(Envelope):
    data: Scorecard
