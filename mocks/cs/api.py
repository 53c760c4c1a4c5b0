"""Gainsight-style routes for the data objects (Company, Person): parse -> models -> render.

Company API (v1 data objects):
- POST   /v1/data/objects/Company               insert up to 50 records (all or nothing)
- POST   /v1/data/objects/Company?keys=a,b      upsert: update the records matching on keys, insert the rest
- PUT    /v1/data/objects/Company?keys=a,b      update by keys (no match -> 404)
- POST   /v1/data/objects/query/Company         read: select, where {conditions, expression}, orderBy,
                                                limit (<= 50) / offset
- DELETE /v1/data/objects/Company/{gsid}
Person API:
- PUT    /v1.0/api/people                       upsert one person keyed by Email
- POST   /v1/data/objects/query/Person          read, like Company
- DELETE /v1.0/api/people/{gsid}
The cockpit, timeline and scorecard routes are in `api_cockpit.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from mocks.cs import schemas as s
from mocks.cs.api_common import ERRORS, check_batch, ctx, ok
from mocks.cs.errors import INVALID_FIELD, INVALID_REQUEST, CSError
from mocks.cs.fields import COMPANY_FIELDS, PERSON_FIELDS
from mocks.cs.query import Condition, compile_where, order_and_page
from mocks.kernel.versions import VersionRegistry

__all__ = ["router_factory"]

Record = dict[str, Any]
Translate = Callable[[str, list[Any]], tuple[str, list[Any]]]
KeysParam = Annotated[str | None, Query(description="Comma-separated key fields, e.g. ExternalId")]


@lru_cache(maxsize=32)
def wire_fields(versions: VersionRegistry, version: str) -> frozenset[str]:
    sample = {name: f"x{name}" for name in COMPANY_FIELDS}
    sample.update({"Stage": "Onboarding", "HealthScore": 1, "HealthTrend": "up"})
    return frozenset(versions.render("company", sample, version))


def company_candidates(state: Any, body: s.QueryRequest) -> Iterable[Record]:
    """The rows a query can match. A lone EQ on Gsid (an id lookup, the most common read) uses the index
    instead of scanning every company; anything else scans, and `read` applies the full filter either way."""
    where = body.where
    if where is not None and len(where.conditions) == 1:
        cond = where.conditions[0]
        alone = where.expression is None or where.expression.strip() == (cond.alias or "")
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        if alone and cond.operator == "EQ" and cond.name == "Gsid" and all(isinstance(v, str) for v in values):
            return [state.companies[v] for v in dict.fromkeys(values) if v in state.companies]
    return state.companies.values()


def company_translator(versions: VersionRegistry, version: str) -> Translate:
    """Wire field name + values of a condition -> internal ones, using the declared version changes."""
    fields = wire_fields(versions, version)

    def translate(name: str, values: list[Any]) -> tuple[str, list[Any]]:
        if name not in fields or name == "Health":
            raise CSError(INVALID_FIELD, f"Invalid field, please re-check data mapping ({name} is not a "
                                         f"filterable field of Company on API version {version})", field=name)
        if version == versions.default:
            return name, values
        (internal,) = versions.parse("company", {name: None}, version)
        return internal, [versions.parse("company", {name: v}, version)[internal] for v in values]

    return translate


def plain_translator(fields: Iterable[str], obj: str) -> Translate:
    known = frozenset(fields)

    def translate(name: str, values: list[Any]) -> tuple[str, list[Any]]:
        if name not in known:
            raise CSError(INVALID_FIELD, f"Invalid field, please re-check data mapping ({name} is not a field "
                                         f"of {obj})", field=name)
        return name, values

    return translate


def read(records: Iterable[Record], body: s.QueryRequest, translate: Translate,
         render: Callable[[Record], Record], selectable: frozenset[str]) -> list[Record]:
    if body.limit > s.MAX_BATCH:
        raise CSError(INVALID_REQUEST, f"limit must be at most {s.MAX_BATCH}")
    conditions: list[Condition] = []
    where = body.where or s.Where()
    for i, c in enumerate(where.conditions):
        values = c.value if isinstance(c.value, list) else ([] if c.value is None else [c.value])
        name, values = translate(c.name, values)
        conditions.append((c.alias or (chr(ord("A") + i) if i < 26 else f"C{i}"), name, c.operator, values))
    order = [(translate(name, [])[0], direction.lower() == "desc") for name, direction in (body.orderBy or {}).items()]
    for name in body.select:
        if name not in selectable:
            raise CSError(INVALID_FIELD, f"Invalid field, please re-check data mapping ({name} cannot be "
                                         "selected)", field=name)
    hits = order_and_page(records, compile_where(conditions, where.expression), order, body.limit, body.offset)
    rendered = [render(r) for r in hits]
    if body.select:
        return [{name: r.get(name) for name in body.select} for r in rendered]
    return rendered


def parse_keys(keys: str | None) -> list[str]:
    out = [k.strip() for k in (keys or "").split(",") if k.strip()]
    if not out:
        raise CSError(INVALID_REQUEST, "The keys query parameter is required (e.g. keys=ExternalId)")
    return out


def router_factory() -> APIRouter:
    from mocks.cs.api_cockpit import cockpit_routes

    router = APIRouter(responses=ERRORS)

    def company_rows(request: Request, body: s.CompanyWrite) -> tuple[Any, list[Record]]:
        tenant, state, version = ctx(request)
        check_batch(body.records)
        versions = tenant.system.versions
        rows = [versions.parse("company", r.model_dump(exclude_unset=True), version) for r in body.records]
        return state, rows

    @router.post("/v1/data/objects/Company", response_model=None, tags=["Company"],
                 responses={200: {"model": s.WriteResponse}}, summary="Insert, or upsert with keys")
    async def insert_companies(request: Request, body: s.CompanyWrite, keys: KeysParam = None) -> Response:
        state, rows = company_rows(request, body)
        if keys is None:
            written = state.insert_companies(rows)
        else:
            written = state.upsert_companies(rows, parse_keys(keys), insert_missing=True)
        return ok(state, {"count": len(written), "errors": None, "records": written})

    @router.put("/v1/data/objects/Company", response_model=None, tags=["Company"],
                responses={200: {"model": s.WriteResponse}}, summary="Update by keys")
    async def update_companies(request: Request, body: s.CompanyWrite, keys: KeysParam = None) -> Response:
        state, rows = company_rows(request, body)
        written = state.upsert_companies(rows, parse_keys(keys), insert_missing=False)
        return ok(state, {"count": len(written), "errors": None, "records": written})

    @router.post("/v1/data/objects/query/Company", response_model=None, tags=["Company"],
                 responses={200: {"model": s.CompanyQueryResponse}}, summary="Read companies")
    async def query_companies(request: Request, body: s.QueryRequest) -> Response:
        tenant, state, version = ctx(request)
        versions = tenant.system.versions

        def render(record: Record) -> Record:
            return versions.render("company", record, version)

        records = read(company_candidates(state, body), body, company_translator(versions, version), render,
                       wire_fields(versions, version))
        return ok(state, {"records": records})

    @router.delete("/v1/data/objects/Company/{gsid}", response_model=None, tags=["Company"],
                   responses={200: {"model": s.DeleteResponse}}, summary="Delete a company and its records")
    async def delete_company(request: Request, gsid: str) -> Response:
        _, state, _ = ctx(request)
        state.delete_company(gsid)
        return ok(state, {"count": 1, "Gsid": gsid})

    @router.put("/v1.0/api/people", response_model=None, tags=["Person"],
                responses={200: {"model": s.PersonResponse}}, summary="Upsert a person by Email")
    async def upsert_person(request: Request, body: s.PersonInput) -> Response:
        _, state, _ = ctx(request)
        person, _created = state.upsert_person(body.model_dump(exclude_unset=True))
        return ok(state, person)

    @router.post("/v1/data/objects/query/Person", response_model=None, tags=["Person"],
                 responses={200: {"model": s.PersonQueryResponse}}, summary="Read people")
    async def query_people(request: Request, body: s.QueryRequest) -> Response:
        _, state, _ = ctx(request)
        records = read(state.persons.values(), body, plain_translator(PERSON_FIELDS, "Person"), dict,
                       frozenset(PERSON_FIELDS))
        return ok(state, {"records": records})

    @router.delete("/v1.0/api/people/{gsid}", response_model=None, tags=["Person"],
                   responses={200: {"model": s.DeleteResponse}}, summary="Delete a person")
    async def delete_person(request: Request, gsid: str) -> Response:
        _, state, _ = ctx(request)
        state.delete_person(gsid)
        return ok(state, {"count": 1, "Gsid": gsid})

    cockpit_routes(router)
    return router
