"""`/v1/webhook_endpoints`: Stripe's view of the kernel's webhook dispatcher.

Endpoints (url, secret, event filter, metadata, api_version) live in `tenant.webhooks`; what only Stripe
shows (`created`, `description`) is kept in the billing state's `webhook_meta`, so it is dumped with it.
"""

from __future__ import annotations

from typing import Any

from mocks.billing.api import Ctx, Op
from mocks.billing.errors import invalid, missing
from mocks.billing.forms import Arr, Bool, Metadata, Str
from mocks.billing.ids import random_token

__all__ = ["OPS", "render_endpoint"]

Json = dict[str, Any]


def render_endpoint(ep: Any, meta: Json, *, secret: bool = False) -> Json:
    out: Json = {
        "id": ep.id,
        "object": "webhook_endpoint",
        "api_version": ep.api_version,
        "application": None,
        "created": meta.get("created", 0),
        "description": meta.get("description"),
        "enabled_events": list(ep.events),
        "livemode": False,
        "metadata": dict(ep.metadata),
        "status": "enabled" if ep.enabled else "disabled",
        "url": ep.url,
    }
    if secret:
        out["secret"] = ep.secret
    return out


def _meta(ctx: Ctx) -> dict[str, Json]:
    table = getattr(ctx.state, "webhook_meta", None)
    if table is None:
        table = {}
        ctx.state.webhook_meta = table
    return table


def _endpoint(ctx: Ctx) -> Any:
    ep_id = ctx.path["webhook_endpoint"]
    ep = ctx.tenant.webhooks.get_endpoint(ep_id)
    if ep is None:
        raise missing("webhook endpoint", ep_id, "webhook_endpoint")
    return ep


def _check(ctx: Ctx, params: Json) -> None:
    url = params.get("url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise invalid("Invalid URL: URL must be publicly accessible and start with http:// or https://.", "url")
    events = params.get("enabled_events")
    if events is not None and not events:
        raise invalid("You must specify at least one event in enabled_events.", "enabled_events")
    version = params.get("api_version")
    if version is not None and version not in ctx.tenant.system.versions:
        raise invalid(f"Invalid Stripe API version: {version}", "api_version")


def create_endpoint(ctx: Ctx) -> Json:
    params = ctx.params
    _check(ctx, params)
    metadata = params.get("metadata")
    ep = ctx.tenant.webhooks.add_endpoint(
        params["url"],
        secret="whsec_" + random_token(ctx.state.rng, 32),
        events=params["enabled_events"],
        endpoint_id="we_" + random_token(ctx.state.rng),
        metadata={k: v for k, v in metadata.items() if v} if isinstance(metadata, dict) else {},
        api_version=params.get("api_version"),
    )
    meta = _meta(ctx)[ep.id] = {"created": int(ctx.tenant.clock.now()), "description": params.get("description")}
    return render_endpoint(ep, meta, secret=True)


def get_endpoint(ctx: Ctx) -> Json:
    ep = _endpoint(ctx)
    return render_endpoint(ep, _meta(ctx).get(ep.id, {}))


def update_endpoint(ctx: Ctx) -> Json:
    ep = _endpoint(ctx)
    params = ctx.params
    _check(ctx, params)
    metadata = params.get("metadata")
    if metadata == "":
        metadata = {}
    elif isinstance(metadata, dict):
        merged = dict(ep.metadata)
        for key, value in metadata.items():
            if value:
                merged[key] = value
            else:
                merged.pop(key, None)
        metadata = merged
    disabled = params.get("disabled")
    ep = ctx.tenant.webhooks.update_endpoint(
        ep.id, url=params.get("url"), events=params.get("enabled_events"),
        enabled=None if disabled is None else not disabled, metadata=metadata,
    )
    meta = _meta(ctx).setdefault(ep.id, {})
    if "description" in params:
        meta["description"] = params["description"]
    return render_endpoint(ep, meta)


def delete_endpoint(ctx: Ctx) -> Json:
    ep = _endpoint(ctx)
    ctx.tenant.webhooks.remove_endpoint(ep.id)
    _meta(ctx).pop(ep.id, None)
    return {"id": ep.id, "object": "webhook_endpoint", "deleted": True}


def list_endpoints(ctx: Ctx) -> list[Json]:
    meta = _meta(ctx)
    rows = [render_endpoint(ep, meta.get(ep.id, {})) for ep in ctx.tenant.webhooks.endpoints()]
    # Newest first; creation order breaks ties of equal `created`.
    order = {ep_id: i for i, ep_id in enumerate(meta)}
    return sorted(rows, key=lambda r: (r["created"], order.get(r["id"], -1)), reverse=True)


FIELDS = {"url": Str(), "enabled_events": Arr(Str(), max_items=300), "description": Str(), "metadata": Metadata()}

OPS: list[Op] = [
    Op("POST", "/v1/webhook_endpoints", create_endpoint,
       {**FIELDS, "api_version": Str(), "connect": Bool()}, "webhook_endpoint", "Create a webhook endpoint",
       required=("url", "enabled_events")),
    Op("GET", "/v1/webhook_endpoints", list_endpoints, {}, "webhook_endpoint", "List webhook endpoints",
       is_list=True),
    Op("GET", "/v1/webhook_endpoints/{webhook_endpoint}", get_endpoint, {}, "webhook_endpoint",
       "Retrieve a webhook endpoint"),
    Op("POST", "/v1/webhook_endpoints/{webhook_endpoint}", update_endpoint, {**FIELDS, "disabled": Bool()},
       "webhook_endpoint", "Update a webhook endpoint"),
    Op("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}", delete_endpoint, {}, "webhook_endpoint",
       "Delete a webhook endpoint", expandable=False),
]
