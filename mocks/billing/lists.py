"""Stripe list envelopes, cursor pagination and `expand[]`.

Lists are newest first; `starting_after=<id>` pages towards older objects, `ending_before=<id>` towards
newer ones. `expand` replaces id strings by the objects they name, along dotted paths; in a list the paths
start with `data.` (`data.customer`, `data.latest_invoice.payment_intent`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mocks.billing.errors import BillingError, invalid

__all__ = ["DEFAULT_LIMIT", "MAX_EXPAND_DEPTH", "envelope", "expand", "paginate"]

DEFAULT_LIMIT = 10
MAX_EXPAND_DEPTH = 4

Json = dict[str, Any]
# id -> internal object (a fresh dict the caller may keep), or None when nothing has that id.
Resolver = Callable[[str], Json | None]


def envelope(data: list[Json], url: str, has_more: bool) -> Json:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def paginate(items: Iterable[Json], *, url: str, limit: int | None = None, starting_after: str | None = None,
             ending_before: str | None = None, newest_first: bool = False) -> Json:
    """A page of `items` (newest first already unless `newest_first` asks us to sort by `created`)."""
    seq = list(items)
    if newest_first:
        # Stable on insertion order among equal timestamps: later insertions count as newer.
        seq = [x for _, x in sorted(enumerate(seq), key=lambda p: (p[1].get("created", 0), p[0]), reverse=True)]
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= 100:
        raise invalid("This value must be greater than or equal to 1 and less than or equal to 100.",
                      param="limit")
    if starting_after is not None and ending_before is not None:
        raise invalid("You may only specify one of these parameters: starting_after, ending_before.",
                      param="ending_before")
    if starting_after is not None:
        index = _index(seq, starting_after, "starting_after")
        page = seq[index + 1:index + 1 + limit]
        has_more = index + 1 + limit < len(seq)
    elif ending_before is not None:
        index = _index(seq, ending_before, "ending_before")
        start = max(0, index - limit)
        page = seq[start:index]
        has_more = start > 0
    else:
        page = seq[:limit]
        has_more = limit < len(seq)
    return envelope(page, url, has_more)


def _index(seq: list[Json], cursor: str, param: str) -> int:
    for i, item in enumerate(seq):
        if item.get("id") == cursor:
            return i
    raise BillingError(f"Invalid {param} id: '{cursor}' is not an object in this list.", status=400,
                       code="resource_missing", param=param)


def expand(obj: Json, paths: Iterable[str], resolve: Resolver) -> Json:
    """A copy of `obj` with every path in `paths` expanded (the input and stored state stay untouched)."""
    out = obj
    for path in paths:
        if not path:
            continue
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH:
            raise invalid(f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. "
                          f"Property: {path}", param="expand")
        out = _expand(out, parts, path, resolve)
    return out


def _expand(value: Any, parts: list[str], path: str, resolve: Resolver) -> Any:
    if isinstance(value, list):
        return [_expand(item, parts, path, resolve) for item in value]
    if not isinstance(value, dict):
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    head, rest = parts[0], parts[1:]
    if head not in value:
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    child = value[head]
    if isinstance(child, str):
        found = resolve(child)
        if found is None:
            raise invalid(f"This property cannot be expanded ({path}).", param="expand")
        child = found
    elif child is None:
        return value  # nothing to expand (e.g. no latest_invoice yet): Stripe keeps null
    elif isinstance(child, list) and not rest:
        child = [resolve(c) or c if isinstance(c, str) else c for c in child]
    elif not isinstance(child, dict | list):
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    if rest:
        child = _expand(child, rest, path, resolve)
    out = dict(value)
    out[head] = child
    return out
