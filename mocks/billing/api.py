"""Billing's Stripe-compatible routes: parse -> models -> render, nothing else.

Every operation is one `Op` row in `api_routes.OPS`: method, path, declared parameters and a small
handler that calls the tenant's `BillingState`. `endpoint()` wraps each row with what every Stripe
endpoint does the same way: the version gate (operations that exist on some versions only), form/query
decoding and coercion, `Idempotency-Key` replay, `expand[]`, list pagination, rendering in the request's
API version, and the `Request-Id` / `Stripe-Version` headers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.routing import Route

from mocks.billing import forms, lists
from mocks.billing.api_common import dumps, error_response, raw_response
from mocks.billing.errors import BillingError
from mocks.billing.idempotency import IdempotencyStore, fingerprint
from mocks.kernel.middleware import headers_of
from mocks.kernel.versions import VersionRegistry

__all__ = ["Ctx", "Op", "build_router", "endpoint", "unrecognized"]

Json = dict[str, Any]


@dataclass
class Ctx:
    """What a handler sees: the tenant's state, typed params, path params, and after-response work."""

    request: Request
    tenant: Any
    state: Any
    version: str
    params: Json
    path: dict[str, str]
    after: list[Callable[[], Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    handler: Callable[[Ctx], Any]
    params: dict[str, forms.Spec]
    obj: str  # object type of the response (of the list items for lists)
    summary: str
    required: tuple[str, ...] = ()
    is_list: bool = False
    # Whether `expand[]` is accepted (added to params automatically).
    expandable: bool = True


LIST_PARAMS: dict[str, forms.Spec] = {
    "limit": forms.Int(),
    "starting_after": forms.Str(),
    "ending_before": forms.Str(),
}


def unrecognized(method: str, path: str) -> BillingError:
    return BillingError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
        "https://support.stripe.com/.",
        status=404,
    )


# Object id prefix -> getter name on BillingState, for `expand[]`.
RESOLVERS = {
    "cus": "get_customer",
    "prod": "get_product",
    "price": "get_price",
    "pm": "get_payment_method",
    "sub": "get_subscription",
    "in": "get_invoice",
    "ii": "get_invoice_item",
    "pi": "get_payment_intent",
    "ch": "get_charge",
    "clock": "get_test_clock",
    "evt": "get_event",
}


def resolver(state: Any) -> lists.Resolver:
    def resolve(obj_id: str) -> Json | None:
        prefix = obj_id.partition("_")[0]
        getter = getattr(state, RESOLVERS.get(prefix, ""), None)
        if getter is None:
            return None
        try:
            return getter(obj_id)
        except BillingError:
            return None

    return resolve


# Object types that never embed another typed object unless expanded: when a version declares no change
# for them, rendering cannot change their responses, so the walk is skipped (a hot-path saving).
FLAT_TYPES = frozenset({"customer", "product", "price", "payment_method", "payment_intent", "invoiceitem",
                        "test_helpers.test_clock", "webhook_endpoint"})


def flat_on(versions: VersionRegistry, obj: str) -> dict[str, bool]:
    """Per version: whether responses of type `obj` come out unchanged (without expand)."""
    out = {}
    for name in versions.names():
        changed = {getattr(c, "obj", None) for c in versions.get(name).changes}
        out[name] = obj in FLAT_TYPES and obj not in changed
    return out


def all_params(op: Op) -> dict[str, forms.Spec]:
    params = dict(op.params)
    if op.is_list:
        params.update(LIST_PARAMS)
    if op.expandable:
        params["expand"] = forms.Expand()
    return params


def endpoint(op: Op, versions: VersionRegistry) -> Callable[[Request], Any]:
    spec = all_params(op)
    required = op.required
    method = op.method
    reads_body = method in ("POST", "DELETE")
    is_post = method == "POST"
    versioned = any(not versions.operation_exists(method, op.path, v) for v in versions.names())
    flat = flat_on(versions, op.obj)

    async def route(request: Request) -> Response:
        scope = request.scope
        tenant = scope["lockstep.tenant"]
        version = scope["lockstep.version"]
        try:
            if versioned and not versions.operation_exists(method, op.path, version):
                raise unrecognized(method, scope["path"])
            raw: bytes = scope["query_string"]
            if reads_body:
                body = await request.body()
                if body:
                    raw = body if not raw else raw + b"&" + body
            params = forms.coerce(forms.decode(raw), spec, required)
        except BillingError as exc:
            return error_response(exc, version)

        state = tenant.state
        key = headers_of(scope).get("idempotency-key") if is_post else None
        store: IdempotencyStore | None = getattr(state, "idempotency", None) if key else None
        fp = ""
        if store is not None and key is not None:
            try:
                store.check_key(key)
                fp = fingerprint(method, scope["path"], raw)
                stored = store.lookup(key, fp)
            except BillingError as exc:
                return error_response(exc, version)
            if stored is not None:
                return raw_response(stored.body, stored.status, version,
                                    {"Idempotent-Replayed": "true", "Idempotency-Key": key})

        ctx = Ctx(request, tenant, state, version, params, scope.get("path_params") or {})
        status, body = run(op, ctx, versions, flat[version])
        extra = {"Idempotency-Key": key} if key else None
        if store is not None and key is not None:
            store.store(key, fp, status, body)
        response = raw_response(body, status, version, extra)
        if ctx.after:
            response.background = BackgroundTask(_run_after, ctx.after)
        return response

    route.__name__ = f"{op.method.lower()}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
    return route


async def _run_after(tasks: list[Callable[[], Any]]) -> None:
    for task in tasks:
        result = task()
        if inspect.isawaitable(result):
            await result


def run(op: Op, ctx: Ctx, versions: VersionRegistry, flat: bool = False) -> tuple[int, bytes]:
    """Executes the handler; a BillingError becomes the stored/returned error (status, body)."""
    params = ctx.params
    expand = params.pop("expand", None) or []
    page = {k: params.pop(k) for k in ("limit", "starting_after", "ending_before") if k in params} \
        if op.is_list else {}
    try:
        result = op.handler(ctx)
        if op.is_list:
            page = {k: v for k, v in page.items() if v is not None}
            result = lists.paginate(result, url=ctx.request.scope["path"], **page)
        if expand:
            result = lists.expand(result, expand, resolver(ctx.state))
    except BillingError as exc:
        return exc.status, dumps(exc.body())
    if flat and not expand:
        return 200, dumps(result)
    return 200, dumps(versions.render(op.obj, result, ctx.version))


def build_router(ops: list[Op], versions: VersionRegistry,
                 openapi_extra: Callable[[Op], Json] | None = None) -> APIRouter:
    """Plain Starlette routes serve (no per-request dependency solving on the hot path); an APIRoute twin
    of each, registered after them and so never reached, documents the operation in the app's OpenAPI."""
    router = APIRouter()
    endpoints = [(op, endpoint(op, versions)) for op in ops]
    for op, route in endpoints:
        router.routes.append(Route(op.path, route, methods=[op.method], name=route.__name__))
    for op, route in endpoints:
        router.add_api_route(
            op.path,
            route,
            methods=[op.method],
            response_class=Response,
            summary=op.summary,
            openapi_extra=openapi_extra(op) if openapi_extra else None,
            tags=[op.path.split("/")[2]],
            name=f"{route.__name__}_doc",
        )
    return router
