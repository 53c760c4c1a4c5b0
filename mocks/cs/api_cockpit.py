"""Gainsight-style routes for the timeline, cockpit (CTAs, success plans) and scorecards.

Timeline:   POST /v1/ant/timeline/activity (ExternalId dedupe), GET .../activity?companyId=,
            GET .../activity/{gsid}
CTA:        POST /v2/cockpit/cta {"requests": [...]} (<= 50), PUT /v2/cockpit/cta (update by Gsid),
            GET /v2/cockpit/cta?companyId=&status=, GET /v2/cockpit/cta/{gsid}, POST /v2/cockpit/cta/{gsid}/close
Plans:      GET /v2/cockpit/successplan/templates, POST /v2/cockpit/successplan (from a template),
            GET /v2/cockpit/successplan?companyId=, GET /v2/cockpit/successplan/{gsid},
            POST /v2/cockpit/successplan/milestone/{gsid}/complete
Scorecard:  GET /v1/scorecard/company/{gsid}, PUT /v1/scorecard/company/{gsid}/measures
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from mocks.cs import cockpit, health
from mocks.cs import schemas as s
from mocks.cs.api_common import check_batch, ctx, ok
from mocks.cs.fields import CTA_STATUSES

__all__ = ["cockpit_routes"]

Limit = Annotated[int, Query(ge=1, le=s.MAX_BATCH)]
Offset = Annotated[int, Query(ge=0)]
CompanyFilter = Annotated[str | None, Query(description="Gsid of a company")]


def cockpit_routes(router: APIRouter) -> None:
    # ---- timeline -------------------------------------------------------------------------------------
    @router.post("/v1/ant/timeline/activity", response_model=None, tags=["Timeline"],
                 responses={200: {"model": s.ActivityResponse}}, summary="Log an activity (ExternalId dedupes)")
    async def log_activity(request: Request, body: s.ActivityInput) -> Response:
        _, state, _ = ctx(request)
        activity, created = state.log_activity(body.model_dump(exclude_unset=True))
        return ok(state, {"activityId": activity["Gsid"], "created": created, "activity": activity})

    @router.get("/v1/ant/timeline/activity", response_model=None, tags=["Timeline"],
                responses={200: {"model": s.ActivityListResponse}}, summary="Activities, newest first")
    async def list_activities(request: Request, companyId: CompanyFilter = None, limit: Limit = 50,
                              offset: Offset = 0) -> Response:
        _, state, _ = ctx(request)
        if companyId is not None:
            state.company(companyId)
        return ok(state, {"records": state.timeline(companyId, limit, offset)})

    @router.get("/v1/ant/timeline/activity/{gsid}", response_model=None, tags=["Timeline"],
                responses={200: {"model": s.ActivityResponse}}, summary="One activity")
    async def get_activity(request: Request, gsid: str) -> Response:
        _, state, _ = ctx(request)
        activity = state.activity(gsid)
        return ok(state, {"activityId": gsid, "created": False, "activity": activity})

    # ---- CTAs -----------------------------------------------------------------------------------------
    @router.post("/v2/cockpit/cta", response_model=None, tags=["CTA"],
                 responses={200: {"model": s.CtaListResponse}}, summary="Create CTAs")
    async def create_ctas(request: Request, body: s.CtaCreate) -> Response:
        _, state, _ = ctx(request)
        check_batch(body.requests, "requests")
        made = cockpit.create_ctas(state, [r.model_dump(exclude_unset=True) for r in body.requests])
        return ok(state, {"count": len(made), "records": made})

    @router.put("/v2/cockpit/cta", response_model=None, tags=["CTA"],
                responses={200: {"model": s.CtaListResponse}}, summary="Update CTAs by Gsid")
    async def update_ctas(request: Request, body: s.CtaUpdateRequest) -> Response:
        _, state, _ = ctx(request)
        check_batch(body.requests, "requests")
        rows = [r.model_dump(exclude_unset=True) for r in body.requests]
        for row in rows:  # every target must exist before anything changes
            cockpit.cta(state, row["Gsid"])
        done = [cockpit.update_cta(state, row.pop("Gsid"), row) for row in rows]
        return ok(state, {"count": len(done), "records": done})

    @router.get("/v2/cockpit/cta", response_model=None, tags=["CTA"],
                responses={200: {"model": s.CtaListResponse}}, summary="List CTAs")
    async def list_ctas(request: Request, companyId: CompanyFilter = None,
                        status: Annotated[str | None, Query(json_schema_extra={"enum": CTA_STATUSES})] = None,
                        limit: Limit = 50, offset: Offset = 0) -> Response:
        _, state, _ = ctx(request)
        rows = [c for c in state.ctas.values() if (companyId is None or c["CompanyId"] == companyId)
                and (status is None or c["StatusName"] == status)]
        return ok(state, {"count": len(rows), "records": rows[offset:offset + limit]})

    @router.get("/v2/cockpit/cta/{gsid}", response_model=None, tags=["CTA"],
                responses={200: {"model": s.CtaResponse}}, summary="One CTA")
    async def get_cta(request: Request, gsid: str) -> Response:
        _, state, _ = ctx(request)
        return ok(state, cockpit.cta(state, gsid))

    @router.post("/v2/cockpit/cta/{gsid}/close", response_model=None, tags=["CTA"],
                 responses={200: {"model": s.CtaResponse}}, summary="Close a CTA")
    async def close_cta(request: Request, gsid: str, body: s.CtaClose) -> Response:
        _, state, _ = ctx(request)
        return ok(state, cockpit.close_cta(state, gsid, body.StatusName, body.ReasonName))

    # ---- success plans --------------------------------------------------------------------------------
    @router.get("/v2/cockpit/successplan/templates", response_model=None, tags=["Success Plan"],
                responses={200: {"model": s.TemplateListResponse}}, summary="Success plan templates")
    async def templates(request: Request) -> Response:
        _, state, _ = ctx(request)
        records = [{"Name": name, "Onboarding": onboarding,
                    "Milestones": [{"Name": m, "OffsetDays": d} for m, d in milestones]}
                   for name, (onboarding, milestones) in cockpit.TEMPLATES.items()]
        return ok(state, {"records": records})

    @router.post("/v2/cockpit/successplan", response_model=None, tags=["Success Plan"],
                 responses={200: {"model": s.PlanResponse}}, summary="Create a plan from a template")
    async def create_plan(request: Request, body: s.PlanCreate) -> Response:
        _, state, _ = ctx(request)
        return ok(state, cockpit.create_plan(state, body.CompanyId, body.TemplateName, body.Name, body.StartDate))

    @router.get("/v2/cockpit/successplan", response_model=None, tags=["Success Plan"],
                responses={200: {"model": s.PlanListResponse}}, summary="List plans")
    async def list_plans(request: Request, companyId: CompanyFilter = None, limit: Limit = 50,
                         offset: Offset = 0) -> Response:
        _, state, _ = ctx(request)
        rows = [p for p in state.plans.values() if companyId is None or p["CompanyId"] == companyId]
        return ok(state, {"records": rows[offset:offset + limit]})

    @router.get("/v2/cockpit/successplan/{gsid}", response_model=None, tags=["Success Plan"],
                responses={200: {"model": s.PlanResponse}}, summary="One plan with its milestones")
    async def get_plan(request: Request, gsid: str) -> Response:
        _, state, _ = ctx(request)
        return ok(state, cockpit.plan(state, gsid))

    @router.post("/v2/cockpit/successplan/milestone/{gsid}/complete", response_model=None, tags=["Success Plan"],
                 responses={200: {"model": s.PlanResponse}}, summary="Complete a milestone")
    async def complete_milestone(request: Request, gsid: str) -> Response:
        _, state, _ = ctx(request)
        return ok(state, cockpit.complete_milestone(state, gsid))

    # ---- scorecards -----------------------------------------------------------------------------------
    @router.get("/v1/scorecard/company/{gsid}", response_model=None, tags=["Scorecard"],
                responses={200: {"model": s.ScorecardResponse}}, summary="A company's scorecard")
    async def get_scorecard(request: Request, gsid: str) -> Response:
        _, state, _ = ctx(request)
        return ok(state, health.scorecard_view(state, gsid))

    @router.put("/v1/scorecard/company/{gsid}/measures", response_model=None, tags=["Scorecard"],
                responses={200: {"model": s.ScorecardResponse}}, summary="Set measure scores")
    async def set_measures(request: Request, gsid: str, body: s.MeasureWrite) -> Response:
        _, state, _ = ctx(request)
        check_batch(body.measures, "measures")
        updates: list[Any] = [m.model_dump() for m in body.measures]
        return ok(state, health.set_measures(state, gsid, updates))
