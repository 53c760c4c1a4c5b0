"""The Salesforce REST routes: parse -> models -> render. Plain dicts and `json` on the hot path."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import Response

from mocks.crm import openapi as doc
from mocks.crm import query as soql_query
from mocks.crm.errors import CrmError, error_response, invalid_field, json_parser_error, not_found, render
from mocks.crm.models import CrmState, MultipleMatches
from mocks.crm.schema import OBJECTS
from mocks.crm.versions import LABELS, internal_value, wire_values
from mocks.kernel.versions import VersionParseError, VersionRegistry

__all__ = ["DAILY_POLICY", "build_router"]

log = logging.getLogger(__name__)
DAILY_POLICY = "DailyApiRequests"
PLURALS = {"Account": "Accounts", "Contact": "Contacts", "Opportunity": "Opportunities", "Lead": "Leads"}
BATCH_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)
JSON = "application/json"


def dumps(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body).encode(), status_code=status, media_type=JSON, headers=headers)


class CrmRoute(APIRoute):
    """Renders CrmError in Salesforce's array, and any bug as UNKNOWN_EXCEPTION, inside the middleware stack
    (so even those responses carry Sforce-Limit-Info)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except CrmError as exc:
                return render(exc)
            except MultipleMatches as exc:
                version = request.path_params.get("api_version", "")
                urls = [f"/services/data/v{version}/sobjects/{exc.obj}/{rid}" for rid in exc.ids]
                return dumps(urls, 300)
            except (HTTPException, RequestValidationError):
                raise
            except Exception:
                log.exception("CRM mock bug on %s %s", request.method, request.url.path)
                return error_response(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include "
                                      "this ErrorId if you contact support: 0-lockstep")

        return handler


def build_router(versions: VersionRegistry) -> APIRouter:
    router = APIRouter(route_class=CrmRoute)
    base = "/services/data/v{api_version}"
    known = set(versions.names())

    def tenant_state(request: Request, api_version: str) -> CrmState:
        if api_version not in known:
            raise not_found()
        return request.scope["lockstep.tenant"].state

    def object_of(state: CrmState, sobject: str) -> str:
        obj = state.object_name(sobject)
        if obj is None:
            raise CrmError(404, "NOT_FOUND", "The requested resource does not exist")
        return obj

    async def body_of(request: Request, state: CrmState, obj: str, version: str, creating: bool) -> dict[str, Any]:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError):
            raise json_parser_error("Unexpected character: the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise json_parser_error("Cannot deserialize instance of sObject: the request body must be a JSON object")
        canonical = {}
        for key, value in data.items():
            f = state.field(obj, key) if key != "attributes" else None
            canonical[f.name if f is not None else key] = value
        try:
            return versions.parse(obj, canonical, version, creating=creating)
        except VersionParseError as exc:
            raise CrmError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"{exc.field}: bad value for restricted picklist field: {canonical.get(exc.field)}",
                           [exc.field]) from None

    def wire(obj: str, record: dict[str, Any], version: str, fields: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": obj,
                                              "url": f"/services/data/v{version}/sobjects/{obj}/{record['Id']}"}}
        if fields is None:
            out.update(record)
        else:
            for name in fields:
                out[name] = record.get(name)
        return versions.render(obj, out, version)

    # ---- discovery -----------------------------------------------------------------------------------
    @router.get("/services/data", responses={200: {"model": doc.Versions}, **doc.COMMON}, summary="API versions")
    async def list_versions() -> Response:
        return dumps([{"label": LABELS.get(v, v), "url": f"/services/data/v{v}", "version": v}
                      for v in versions.names()])

    @router.get(base, openapi_extra=doc.params(), responses={200: {"model": doc.Resources}, **doc.COMMON},
                summary="Resources of a version")
    async def resources(request: Request) -> Response:
        api_version = request.path_params["api_version"]
        tenant_state(request, api_version)
        prefix = f"/services/data/v{api_version}"
        return dumps({name: f"{prefix}/{name}" for name in ("sobjects", "query", "queryAll", "limits")})

    @router.get(base + "/limits", openapi_extra=doc.params(), responses={200: {"model": doc.Limits}, **doc.COMMON},
                summary="Org limits")
    async def limits(request: Request) -> Response:
        api_version = request.path_params["api_version"]
        state = tenant_state(request, api_version)
        usage = state.tenant.limiter.usage()
        out = {}
        if DAILY_POLICY in usage:
            used, quota = usage[DAILY_POLICY]
            out[DAILY_POLICY] = {"Max": quota, "Remaining": max(0, quota - used)}
        records = sum(len(t) for t in state.records.values())
        out["DataStorageMB"] = {"Max": 1024, "Remaining": max(0, 1024 - records * 2 // 1024)}
        out["DailyBulkApiBatches"] = {"Max": 15000, "Remaining": 15000}
        return dumps(out)

    @router.get(base + "/sobjects", openapi_extra=doc.params(), responses={200: {"model": doc.DescribeGlobal},
                **doc.COMMON},
                summary="Describe global")
    async def describe_global(request: Request) -> Response:
        api_version = request.path_params["api_version"]
        tenant_state(request, api_version)
        return dumps({"encoding": "UTF-8", "maxBatchSize": 200,
                      "sobjects": [_object_summary(name, api_version) for name in OBJECTS]})

    @router.get(base + "/sobjects/{sobject}", openapi_extra=doc.params("sobject"),
                responses={200: {"model": dict[str, Any]}, **doc.COMMON},
                summary="sObject basic information")
    async def sobject_info(request: Request) -> Response:
        api_version, sobject = _path(request, "api_version", "sobject")
        state = tenant_state(request, api_version)
        obj = object_of(state, sobject)
        recent = sorted((r for r in state.records[obj].values() if not r["IsDeleted"]),
                        key=lambda r: r["LastModifiedDate"], reverse=True)[:5]
        return dumps({"objectDescribe": _object_summary(obj, api_version),
                      "recentItems": [wire(obj, r, api_version, ["Id", "Name"]) for r in recent]})

    @router.get(base + "/sobjects/{sobject}/describe", openapi_extra=doc.params("sobject"),
                responses={200: {"model": doc.Describe}, **doc.COMMON},
                summary="Describe an sObject")
    async def describe(request: Request) -> Response:
        api_version, sobject = _path(request, "api_version", "sobject")
        state = tenant_state(request, api_version)
        obj = object_of(state, sobject)
        fields = []
        for f in state.fields(obj).values():
            values = wire_values(versions, api_version, obj, f.name, list(f.picklist)) if f.picklist else None
            fields.append(f.describe(values))
        return dumps({**_object_summary(obj, api_version), "fields": fields})

    # ---- records -------------------------------------------------------------------------------------
    @router.post(base + "/sobjects/{sobject}", status_code=201, openapi_extra=doc.params("sobject", body=True),
                 responses={201: {"model": doc.SaveResult}, **doc.COMMON}, summary="Create a record")
    async def create(request: Request) -> Response:
        api_version, sobject = _path(request, "api_version", "sobject")
        state = tenant_state(request, api_version)
        obj = object_of(state, sobject)
        data = await body_of(request, state, obj, api_version, True)
        record = state.create(obj, data)
        return dumps({"id": record["Id"], "success": True, "errors": []}, 201)

    @router.get(base + "/sobjects/{sobject}/{record_id}", openapi_extra=doc.params("sobject", "record_id",
                query=("fields",)), responses={200: {"model": doc.SObjectOut}, **doc.COMMON},
                summary="Read a record")
    async def read(request: Request) -> Response:
        api_version, sobject, record_id = _path(request, "api_version", "sobject", "record_id")
        fields = request.query_params.get("fields")
        state = tenant_state(request, api_version)
        obj = object_of(state, sobject)
        record = state.get(obj, record_id)
        return dumps(wire(obj, record, api_version, _field_list(state, obj, fields)))

    @router.patch(base + "/sobjects/{sobject}/{record_id}", status_code=204,
                  openapi_extra=doc.params("sobject", "record_id", body=True),
                  responses={204: {"description": "Updated"}, **doc.COMMON}, summary="Update a record")
    async def update(request: Request) -> Response:
        api_version, sobject, record_id = _path(request, "api_version", "sobject", "record_id")
        state = tenant_state(request, api_version)
        obj = object_of(state, sobject)
        data = await body_of(request, state, obj, api_version, False)
        state.update(obj, record_id, data)
        return Response(status_code=204)

    @router.delete(base + "/sobjects/{sobject}/{record_id}", status_code=204,
                   openapi_extra=doc.params("sobject", "record_id"),
                   responses={204: {"description": "Deleted"}, **doc.COMMON}, summary="Delete a record")
    async def delete(request: Request) -> Response:
        api_version, sobject, record_id = _path(request, "api_version", "sobject", "record_id")
        state = tenant_state(request, api_version)
        state.delete(object_of(state, sobject), record_id)
        return Response(status_code=204)

    @router.get(base + "/sobjects/{sobject}/{ext_field}/{ext_value}",
                openapi_extra=doc.params("sobject", "ext_field", "ext_value", query=("fields",)),
                responses={200: {"model": doc.SObjectOut}, 300: {"model": doc.Urls}, **doc.COMMON},
                summary="Read a record by external id")
    async def read_external(request: Request) -> Response:
        api_version, sobject, ext_field, ext_value = _path(request, "api_version", "sobject", "ext_field",
                                                           "ext_value")
        fields = request.query_params.get("fields")
        state = tenant_state(request, api_version)
        obj = object_of(state, sobject)
        _, hits = state.find_external(obj, ext_field, ext_value)
        if not hits:
            raise not_found()
        if len(hits) > 1:
            raise MultipleMatches(obj, hits)
        return dumps(wire(obj, state.records[obj][hits[0]], api_version, _field_list(state, obj, fields)))

    @router.patch(base + "/sobjects/{sobject}/{ext_field}/{ext_value}",
                  openapi_extra=doc.params("sobject", "ext_field", "ext_value", body=True),
                  responses={201: {"model": doc.SaveResult}, 204: {"description": "Updated"},
                             300: {"model": doc.Urls}, **doc.COMMON},
                  summary="Upsert by external id")
    async def upsert(request: Request) -> Response:
        api_version, sobject, ext_field, ext_value = _path(request, "api_version", "sobject", "ext_field",
                                                           "ext_value")
        state = tenant_state(request, api_version)
        obj = object_of(state, sobject)
        data = await body_of(request, state, obj, api_version, False)
        record, created = state.upsert(obj, ext_field, ext_value, data)
        if not created:
            return Response(status_code=204)
        return dumps({"id": record["Id"], "success": True, "errors": [], "created": True}, 201)

    # ---- SOQL ------------------------------------------------------------------------------------------
    def run(request: Request, api_version: str, q: str | None, include_deleted: bool) -> Response:
        state = tenant_state(request, api_version)
        batch = soql_query.DEFAULT_BATCH
        options = request.headers.get("sforce-query-options")
        if options and (m := BATCH_RE.search(options)):
            batch = int(m.group(1))
        today = datetime.fromtimestamp(state.tenant.clock.now(), UTC).date()
        page = soql_query.run_query(
            state, q or "", include_deleted=include_deleted, version=api_version, batch=batch, today=today,
            literal_map=lambda obj, field, value: internal_value(versions, api_version, obj, field, value))
        return dumps(versions.render("QueryResult", page, api_version))

    def more(request: Request, api_version: str, locator: str) -> Response:
        state = tenant_state(request, api_version)
        page = soql_query.page_at(state, locator, api_version)
        return dumps(versions.render("QueryResult", page, api_version))

    query_doc = {200: {"model": doc.QueryResult}, **doc.COMMON}

    @router.get(base + "/query", responses=query_doc, openapi_extra=doc.params(query=("q",)), summary="SOQL query")
    async def query(request: Request) -> Response:
        return run(request, request.path_params["api_version"], request.query_params.get("q"), False)

    @router.get(base + "/queryAll", responses=query_doc, openapi_extra=doc.params(query=("q",)),
                summary="SOQL query including deleted and merged rows")
    async def query_all(request: Request) -> Response:
        return run(request, request.path_params["api_version"], request.query_params.get("q"), True)

    @router.get(base + "/query/{locator}", responses=query_doc, openapi_extra=doc.params("locator"),
                summary="Next page of a query")
    async def query_more(request: Request) -> Response:
        return more(request, *_path(request, "api_version", "locator"))

    @router.get(base + "/queryAll/{locator}", responses=query_doc,
                openapi_extra=doc.params("locator"), summary="Next page of a queryAll")
    async def query_all_more(request: Request) -> Response:
        return more(request, *_path(request, "api_version", "locator"))

    # Salesforce ignores a trailing slash (simple-salesforce POSTs to ".../sobjects/Account/"): serve it
    # directly rather than through a redirect that would cost the caller a second API call.
    for route in list(router.routes):
        if isinstance(route, APIRoute) and not route.path.endswith("/"):
            router.add_api_route(route.path + "/", route.endpoint, methods=list(route.methods),
                                 status_code=route.status_code, include_in_schema=False)
    return router


def _path(request: Request, *names: str) -> tuple[str, ...]:
    params = request.path_params
    return tuple(params[n] for n in names)


def _field_list(state: CrmState, obj: str, fields: str | None) -> list[str] | None:
    if fields is None:
        return None
    out = []
    for name in fields.split(","):
        name = name.strip()
        if not name:
            continue
        f = state.field(obj, name)
        if f is None:
            raise invalid_field(obj, name)
        out.append(f.name)
    return out


def _object_summary(obj: str, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj}"
    return {"name": obj, "label": OBJECTS[obj].label, "labelPlural": PLURALS[obj],
            "keyPrefix": OBJECTS[obj].prefix, "custom": False, "queryable": True, "createable": True,
            "updateable": True, "deletable": True, "mergeable": OBJECTS[obj].mergeable,
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}}
