"""Customer success (Gainsight-style) <-> canonical, per pinned API version.

Versions: `v1` and `v2`. The declared breaking changes, all on the company object: `CSM` is called
`CsmId`; `Stage` uses upper-case codes (Kick Off -> KICK_OFF, Adopting -> ADOPTION ...); health is one
object `Health {score, trend, color}` instead of `HealthScore` + `HealthTrend`.

Decisions:
- The native view speaks v1's stage names whatever the version (`CsCompany.stage`), so flows have one
  vocabulary; bodies are written in the pinned version's spelling.
- Money fields (ARR, MRR) are major units; the caller passes the account currency to `to_canonical`.
- Milestone status -> canonical: Open -> not_started, Completed -> completed, Overdue -> blocked (late
  milestones need a person; the canonical model has no "overdue").
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.connectors.mapping.common import Reader, major_to_money, unsupported_version
from core.model import HealthScore, HealthTrend, MilestoneStatus, Money, OnboardingMilestone, SourceRef

__all__ = [
    "STAGES",
    "V1",
    "V2",
    "VERSIONS",
    "CompanyInput",
    "CsCompany",
    "CsCta",
    "CsMilestone",
    "CsPlan",
    "CsScorecard",
    "company_body",
    "parse_company",
    "parse_cta",
    "parse_plan",
    "parse_scorecard",
]

SYSTEM = "cs"
V1 = "v1"
V2 = "v2"
VERSIONS: tuple[str, ...] = (V1, V2)
STAGE_CODES = {"Kick Off": "KICK_OFF", "Onboarding": "ONBOARDING", "Adopting": "ADOPTION",
               "Expanding": "EXPANSION", "Renewal": "RENEWAL", "Churned": "CHURNED"}
STAGES = tuple(STAGE_CODES)
TRENDS = {"up": HealthTrend.UP, "down": HealthTrend.DOWN, "flat": HealthTrend.FLAT}
MILESTONE_STATUS = {"Open": MilestoneStatus.NOT_STARTED, "Completed": MilestoneStatus.COMPLETED,
                    "Overdue": MilestoneStatus.BLOCKED}


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


def _reader(obj: str, payload: Any, version: str) -> Reader:
    if version not in VERSIONS:
        raise unsupported_version(SYSTEM, obj, version, VERSIONS)
    return Reader(SYSTEM, obj, payload, version)


class CsCompany(_View):
    gsid: str
    name: str
    external_id: str | None
    arr: Decimal | None
    mrr: Decimal | None
    renewal_date: date | None
    csm: str | None
    stage: str | None
    status: str | None
    health_score: int | None
    health_trend: HealthTrend | None
    created: datetime
    modified: datetime

    def to_health(self, *, id: str, account_id: str, seen_at: datetime | None = None) -> HealthScore:
        if self.health_score is None:
            raise ValueError(f"company {self.gsid} has no health score yet")
        seen = max(seen_at or datetime.now(UTC), self.modified)
        return HealthScore(id=id, account_id=account_id, score=self.health_score,
                           trend=self.health_trend or HealthTrend.FLAT, measured_at=self.modified,
                           created_at=self.modified, updated_at=seen,
                           source_refs=[SourceRef(system=SYSTEM, native_id=self.gsid,
                                                  version_tag=self.modified.isoformat(), last_seen=seen)])

    def arr_money(self, currency: str) -> Money | None:
        return None if self.arr is None else major_to_money(self.arr, currency)


def parse_company(payload: Any, version: str) -> CsCompany:
    r = _reader("company", payload, version)
    if version == V1:
        score = r.req("HealthScore", int, nullable=True)
        trend = r.enum("HealthTrend", TRENDS, nullable=True)
        csm = r.req("CSM", str, nullable=True)
        stage = r.enum("Stage", {s: s for s in STAGES}, nullable=True)
    else:
        health = r.sub("Health", nullable=True)
        score = health.req("score", int) if health else None
        trend = health.enum("trend", TRENDS, nullable=True) if health else None
        csm = r.req("CsmId", str, nullable=True)
        stage = r.enum("Stage", {code: name for name, code in STAGE_CODES.items()}, nullable=True)
    return CsCompany(
        gsid=r.req("Gsid", str), name=r.req("Name", str), external_id=r.req("ExternalId", str, nullable=True),
        arr=r.number("ARR", nullable=True), mrr=r.number("MRR", nullable=True),
        renewal_date=r.date("RenewalDate", nullable=True), csm=csm, stage=stage,
        status=r.req("Status", str, nullable=True), health_score=score, health_trend=trend,
        created=r.datetime("CreatedDate"), modified=r.datetime("ModifiedDate"),
    )


class CsCta(_View):
    gsid: str
    name: str
    company_id: str
    type: str
    priority: str | None
    status: str
    is_closed: bool
    due_date: date | None
    comments: str | None


def parse_cta(payload: Any, version: str) -> CsCta:
    r = _reader("cta", payload, version)
    return CsCta(gsid=r.req("Gsid", str), name=r.req("Name", str), company_id=r.req("CompanyId", str),
                 type=r.req("TypeName", str), priority=r.req("PriorityName", str, nullable=True),
                 status=r.req("StatusName", str), is_closed=r.req("IsClosed", bool),
                 due_date=r.date("DueDate", nullable=True), comments=r.req("Comments", str, nullable=True))


class CsMilestone(_View):
    gsid: str
    name: str
    order: int
    due_date: date
    status: MilestoneStatus
    completed: datetime | None


class CsPlan(_View):
    gsid: str
    name: str
    template: str
    company_id: str
    status: str
    start_date: date
    milestones: list[CsMilestone]
    created: datetime

    def to_milestones(self, *, ids: list[str], account_id: str,
                      seen_at: datetime | None = None) -> list[OnboardingMilestone]:
        """Canonical milestones, in plan order; `ids` are their canonical ids (from the crosswalk)."""
        if len(ids) != len(self.milestones):
            raise ValueError(f"need {len(self.milestones)} ids, got {len(ids)}")
        seen = max(seen_at or datetime.now(UTC), self.created)
        out = []
        for canonical_id, m in zip(ids, self.milestones, strict=True):
            updated = max(seen, m.completed or self.created)
            out.append(OnboardingMilestone(
                id=canonical_id, account_id=account_id, name=m.name, sequence=m.order, status=m.status,
                due_date=m.due_date, completed_at=m.completed, created_at=self.created, updated_at=updated,
                source_refs=[SourceRef(system=SYSTEM, native_id=m.gsid, last_seen=updated)]))
        return out


def parse_plan(payload: Any, version: str) -> CsPlan:
    r = _reader("successplan", payload, version)
    milestones = []
    for m in r.items("Milestones"):
        status = m.enum("Status", MILESTONE_STATUS)
        completed = m.datetime("CompletedDate", nullable=True)
        if status is MilestoneStatus.COMPLETED and completed is None:
            raise m.drift("CompletedDate", "a completed milestone without a completion date")
        milestones.append(CsMilestone(gsid=m.req("Gsid", str), name=m.req("Name", str), order=m.req("Order", int),
                                      due_date=m.date("DueDate"), status=status,
                                      completed=completed if status is MilestoneStatus.COMPLETED else None))
    return CsPlan(gsid=r.req("Gsid", str), name=r.req("Name", str), template=r.req("TemplateName", str),
                  company_id=r.req("CompanyId", str), status=r.req("Status", str), start_date=r.date("StartDate"),
                  milestones=milestones, created=r.datetime("CreatedDate"))


class CsScorecard(_View):
    company_id: str
    score: int | None
    trend: HealthTrend | None
    measures: dict[str, int | None]

    def to_health(self, *, id: str, account_id: str, measured_at: datetime) -> HealthScore:
        if self.score is None:
            raise ValueError(f"company {self.company_id} has no overall score yet")
        return HealthScore(id=id, account_id=account_id, score=self.score, trend=self.trend or HealthTrend.FLAT,
                           measured_at=measured_at, created_at=measured_at, updated_at=measured_at,
                           components={k: v for k, v in self.measures.items() if v is not None},
                           source_refs=[SourceRef(system=SYSTEM, native_id=self.company_id, last_seen=measured_at)])


def parse_scorecard(payload: Any, version: str) -> CsScorecard:
    r = _reader("scorecard", payload, version)
    score = r.number("score", nullable=True)
    measures: dict[str, int | None] = {}
    for m in r.items("measures"):
        value = m.number("score", nullable=True)
        measures[m.req("name", str)] = None if value is None else round(value)
    return CsScorecard(company_id=r.req("companyId", str), score=None if score is None else round(score),
                       trend=r.enum("trend", TRENDS, nullable=True), measures=measures)


class CompanyInput(BaseModel):
    """Company fields the flows write; unset fields are not sent. `stage` uses v1 names (see STAGES)."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    arr: Money | None = None
    mrr: Money | None = None
    renewal_date: date | None = None
    csm: str | None = None
    stage: str | None = None
    industry: str | None = None
    status: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


def company_body(data: CompanyInput, version: str, external_id: str) -> dict[str, Any]:
    if version not in VERSIONS:
        raise unsupported_version(SYSTEM, "company", version, VERSIONS)
    fields = data.model_fields_set
    body: dict[str, Any] = {"ExternalId": external_id}
    if "name" in fields:
        body["Name"] = data.name
    for attr, name in (("arr", "ARR"), ("mrr", "MRR")):
        if attr in fields:
            money = getattr(data, attr)
            body[name] = float(money.to_major()) if money is not None else None
    if "renewal_date" in fields:
        body["RenewalDate"] = data.renewal_date.isoformat() if data.renewal_date else None
    if "csm" in fields:
        body["CSM" if version == V1 else "CsmId"] = data.csm
    if "stage" in fields:
        if data.stage is not None and data.stage not in STAGE_CODES:
            raise ValueError(f"unknown stage {data.stage!r}; stages: {list(STAGES)}")
        body["Stage"] = data.stage if version == V1 or data.stage is None else STAGE_CODES[data.stage]
    for attr, name in (("industry", "Industry"), ("status", "Status")):
        if attr in fields:
            body[name] = getattr(data, attr)
    body.update(data.extra)
    return body
