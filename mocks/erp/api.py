"""The ERP's NetSuite-style REST routes: parse -> models -> render, nothing else.

Record service `/services/rest/record/v1/{type}` for customer, salesOrder, invoice, creditMemo and item
(list, create, get, patch, delete, upsert by `eid:`), the sublist GET, and SuiteQL at
`/services/rest/query/v1/suiteql`. Domain errors are `ErpError`, rendered by `errors.error_response`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from mocks.erp.errors import ErpError, error_response
from mocks.erp.fields import FIELDS, READ_ONLY, RECORD_TYPES
from mocks.erp.query import compile_filter
from mocks.erp.render import SUBLISTS, links
from mocks.erp.schemas import MODELS, Collection, ErrorBody, SuiteQLResult
from mocks.erp.suiteql import SuiteQLError, run_suiteql
from mocks.kernel.versions import VersionParseError

__all__ = ["RECORD_ROOT", "SUITEQL_PATH", "erp_error_handler", "router_factory"]

Json = dict[str, Any]
RECORD_ROOT = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
MEDIA = "application/vnd.oracle.resource+json"
MAX_LIMIT = 1000


class OracleResource(JSONResponse):
    """Only documents the media type; routes build their responses themselves."""

    media_type = MEDIA


def _json(data: Any, status: int = 200, kind: str = "singular-resource",
          headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status_code=status,
                    media_type=f"{MEDIA}; type={kind}", headers=headers)


async def erp_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ErpError)
    return error_response(exc)


# ---- request helpers ----------------------------------------------------------------------------------
async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ErpError(400, "INVALID_CONTENT", "The request body is empty; a JSON object is required.")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ErpError(400, "INVALID_CONTENT", "Invalid content in the request body: it is not valid JSON.") from exc


def _wire_to_internal(request: Request, rtype: str, body: Any, creating: bool) -> Any:
    if not isinstance(body, dict):
        raise ErpError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
    versions = request.app.state.system.versions
    try:
        return versions.parse(rtype, body, request.scope["lockstep.version"], creating=creating)
    except VersionParseError as exc:
        raise ErpError(400, "INVALID_VALUE", exc.message, path=exc.field) from exc


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise ErpError(400, "INVALID_PARAMETER",
                       f"Invalid value for query parameter '{name}': use an integer from {lo} to {hi}.",
                       query_param=name)
    return int(raw)


def _bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise ErpError(400, "INVALID_PARAMETER", f"Invalid value for query parameter '{name}': use true or false.",
                       query_param=name)
    return raw.lower() == "true"


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{RECORD_ROOT}"


def _check_if_match(request: Request, current: str | None) -> None:
    """RFC 9110 If-Match: `*` or a list of entity tags (weak prefixes compared loosely); 412 otherwise."""
    header = request.headers.get("if-match")
    if header is None:
        return
    tags = {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
    if current is not None and ("*" in tags or current in tags):
        return
    raise ErpError(412, "PRECONDITION_FAILED",
                   "The record has been changed since it was read (If-Match does not match the current ETag)."
                   if current is not None else "The record does not exist (If-Match given).")


def _page_links(request: Request, offset: int, limit: int, total: int) -> list[Json]:
    url = str(request.url).split("?", 1)[0]
    extra = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}

    def href(off: int) -> str:
        return f"{url}?{urlencode({**extra, 'limit': limit, 'offset': off})}"

    out = []
    if offset > 0:
        out.append({"rel": "previous", "href": href(max(0, offset - limit))})
    out.append({"rel": "first", "href": href(0)})
    if offset + limit < total:
        out.append({"rel": "next", "href": href(offset + limit)})
    out.append({"rel": "last", "href": href(max(0, (total - 1) // limit * limit))})
    out.append({"rel": "self", "href": str(request.url)})
    return out


def _page(request: Request, rows: list[Json], offset: int, limit: int) -> Json:
    chunk = rows[offset:offset + limit]
    return {"links": _page_links(request, offset, limit, len(rows)), "count": len(chunk),
            "hasMore": offset + len(chunk) < len(rows), "items": chunk, "offset": offset,
            "totalResults": len(rows)}


# ---- record routes -------------------------------------------------------------------------------------
def _record_routes(router: APIRouter, rtype: str) -> None:
    path = f"{RECORD_ROOT}/{rtype}"
    model = MODELS[rtype]
    queryable = set(FIELDS[rtype]) | READ_ONLY[rtype] | {"id"}
    errors: dict[int | str, Any] = {"default": {"model": ErrorBody, "description": "NetSuite error"}}
    body_doc = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}
    id_doc = {"parameters": [{"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}}]}
    tag = [rtype]

    async def list_records(request: Request) -> Response:
        state = request.scope["lockstep.tenant"].state
        limit = _int_param(request, "limit", MAX_LIMIT, 1, MAX_LIMIT)
        offset = _int_param(request, "offset", 0, 0, 10**9)
        records = state.records[rtype]
        ids = list(records)
        q = request.query_params.get("q")
        if q:
            try:
                keep = compile_filter(q, queryable)
            except ValueError as exc:
                raise ErpError(400, "INVALID_PARAMETER", f"Invalid search query. Detailed unprocessed description "
                               f"follows. Search error occurred: {exc}.", query_param="q") from exc
            ids = [i for i in ids if keep(_filter_view(state, rtype, records[i]))]
        ids.sort(key=int)
        base = _base(request)
        rows = [{"links": links(f"{base}/{rtype}/{i}"), "id": i} for i in ids]
        return _json(_page(request, rows, offset, limit), kind="collection")

    async def create_record(request: Request) -> Response:
        state = request.scope["lockstep.tenant"].state
        body = _wire_to_internal(request, rtype, await _body(request), True)
        rid = state.create(rtype, body)
        return Response(status_code=204, headers={"Location": f"{_base(request)}/{rtype}/{rid}"})

    async def get_record(record_id: str, request: Request) -> Response:
        state = request.scope["lockstep.tenant"].state
        version = request.scope["lockstep.version"]
        rid = state.resolve(rtype, record_id)
        expand = _bool_param(request, "expandSubResources")
        view = state.render(rtype, state.records[rtype][rid], base=_base(request), expand=expand)
        wire = request.app.state.system.versions.render(rtype, view, version)
        fields = request.query_params.get("fields")
        if fields:
            wanted = {f.strip() for f in fields.split(",")} | {"links", "id"}
            wire = {k: v for k, v in wire.items() if k in wanted}
        return _json(wire, headers={"ETag": state.etag(rtype, rid, version)})

    async def patch_record(record_id: str, request: Request) -> Response:
        state = request.scope["lockstep.tenant"].state
        version = request.scope["lockstep.version"]
        rid = state.resolve(rtype, record_id)
        _check_if_match(request, state.etag(rtype, rid, version))
        body = _wire_to_internal(request, rtype, await _body(request), False)
        state.update(rtype, rid, body)
        return Response(status_code=204, headers={"ETag": state.etag(rtype, rid, version)})

    async def put_record(record_id: str, request: Request) -> Response:
        state = request.scope["lockstep.tenant"].state
        version = request.scope["lockstep.version"]
        if not record_id.startswith("eid:") or len(record_id) <= 4 or len(record_id) > 259:
            raise ErpError(405, "METHOD_NOT_ALLOWED", "PUT (upsert) needs an external ID in the path: "
                           f"{path}/eid:<externalId>.")
        eid = record_id[4:]
        # Body first: no await between looking the external id up and writing, so two concurrent upserts of
        # one external id are one create and one update (as NetSuite's upsert is), never two creates.
        raw = await _body(request)
        rid = state.eids[rtype].get(eid)
        _check_if_match(request, None if rid is None else state.etag(rtype, rid, version))
        if isinstance(raw, dict) and raw.get("externalId") not in (None, eid):
            raise ErpError(400, "USER_ERROR", "The externalId in the body differs from the one in the path.",
                           path="externalId")
        if rid is None:
            body = _wire_to_internal(request, rtype, raw, True)
            rid = state.create(rtype, body, external_id=eid)
            return Response(status_code=204, headers={"Location": f"{_base(request)}/{rtype}/{rid}"})
        body = _wire_to_internal(request, rtype, raw, False)
        state.update(rtype, rid, body)
        return Response(status_code=204, headers={"ETag": state.etag(rtype, rid, version)})

    async def delete_record(record_id: str, request: Request) -> Response:
        state = request.scope["lockstep.tenant"].state
        rid = state.resolve(rtype, record_id)
        _check_if_match(request, state.etag(rtype, rid, request.scope["lockstep.version"]))
        state.delete(rtype, rid)
        return Response(status_code=204)

    add = router.add_api_route
    add(path, list_records, methods=["GET"], response_class=OracleResource, tags=tag,
        summary=f"List {rtype} records", name=f"list_{rtype}",
        responses={200: {"model": Collection}, **errors},
        openapi_extra={"parameters": [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            {"name": "q", "in": "query", "schema": {"type": "string"}}]})
    add(path, create_record, methods=["POST"], status_code=204, response_class=OracleResource, tags=tag,
        summary=f"Create a {rtype}", name=f"create_{rtype}", responses={**errors},
        openapi_extra=body_doc)
    item_path = f"{path}/{{record_id}}"
    add(item_path, get_record, methods=["GET"], response_class=OracleResource, tags=tag,
        summary=f"Get a {rtype} by internal id or eid:<externalId>", name=f"get_{rtype}",
        responses={200: {"model": model}, **errors},
        openapi_extra={"parameters": [
            {"name": "expandSubResources", "in": "query", "schema": {"type": "boolean"}},
            {"name": "fields", "in": "query", "schema": {"type": "string"}}]})
    add(item_path, patch_record, methods=["PATCH"], status_code=204, response_class=OracleResource, tags=tag,
        summary=f"Update a {rtype}", name=f"patch_{rtype}", responses={**errors},
        openapi_extra={**body_doc, **id_doc})
    add(item_path, put_record, methods=["PUT"], status_code=204, response_class=OracleResource, tags=tag,
        summary=f"Upsert a {rtype} by eid:<externalId>", name=f"put_{rtype}", responses={**errors},
        openapi_extra={**body_doc, **id_doc})
    add(item_path, delete_record, methods=["DELETE"], status_code=204, response_class=OracleResource, tags=tag,
        summary=f"Delete a {rtype}", name=f"delete_{rtype}", responses={**errors}, openapi_extra=id_doc)

    for sublist in SUBLISTS[rtype]:
        def make(sub: str) -> Any:
            async def get_sublist(record_id: str, request: Request) -> Response:
                state = request.scope["lockstep.tenant"].state
                rid = state.resolve(rtype, record_id)
                view = state.render(rtype, state.records[rtype][rid], base=_base(request), expand=True)
                return _json(view[sub], kind="collection")

            return get_sublist

        add(f"{item_path}/{sublist}", make(sublist), methods=["GET"], response_class=OracleResource, tags=tag,
            summary=f"The {sublist} sublist of a {rtype}", name=f"get_{rtype}_{sublist}",
            responses={200: {"model": Collection}, **errors})


def _filter_view(state: Any, rtype: str, rec: Json) -> Json:
    if rtype != "customer":
        return rec
    balance = state.customer_balance(rec["id"])
    return {**rec, "balance": balance, "isOnCreditHold": state.on_credit_hold(rec, balance)}


# ---- SuiteQL -------------------------------------------------------------------------------------------
async def suiteql(request: Request) -> Response:
    state = request.scope["lockstep.tenant"].state
    if "transient" not in request.headers.get("prefer", "").lower():
        raise ErpError(400, "INVALID_HEADER", "SuiteQL requests need the header 'Prefer: transient'.")
    limit = _int_param(request, "limit", MAX_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    body = await _body(request)
    q = body.get("q") if isinstance(body, dict) else None
    if not isinstance(q, str):
        raise ErpError(400, "INVALID_PARAMETER", "The request body must be {\"q\": \"<SuiteQL query>\"}.", path="q")
    try:
        rows = run_suiteql(state, q)
    except SuiteQLError as exc:
        raise ErpError(400, "INVALID_PARAMETER", "Invalid search query. Detailed unprocessed description follows. "
                       f"Search error occurred: {exc}", path="q") from exc
    return _json(_page(request, [{"links": [], **row} for row in rows], offset, limit), kind="collection")


def router_factory() -> APIRouter:
    router = APIRouter()
    for rtype in RECORD_TYPES:
        _record_routes(router, rtype)
    router.add_api_route(
        SUITEQL_PATH, suiteql, methods=["POST"], response_class=OracleResource, tags=["suiteql"],
        summary="Run a SuiteQL query (subset)", name="suiteql",
        responses={200: {"model": SuiteQLResult},
                   "default": {"model": ErrorBody, "description": "NetSuite error"}},
        openapi_extra={
            "parameters": [
                {"name": "Prefer", "in": "header", "required": True,
                 "schema": {"type": "string", "enum": ["transient"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}}}}},
        },
    )
    return router
