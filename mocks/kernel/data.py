"""Copying plain JSON-like data (dicts, lists, scalars) fast.

State in the mocks is plain dicts; handing out copies keeps callers from mutating stored state.
`copy.deepcopy` is general and slow (memo dict, dispatch per object); a JSON round trip through orjson is
an order of magnitude faster for this shape of data. Anything orjson cannot encode falls back to a
recursive copy that shares immutable leaves.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson

T = TypeVar("T")


def _clone_slow(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone_slow(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone_slow(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_clone_slow(v) for v in value)
    return value


def clone(value: T) -> T:
    """A deep copy of JSON-like data."""
    if not isinstance(value, dict | list):
        return value
    try:
        copied = orjson.loads(orjson.dumps(value))
    except TypeError:
        return _clone_slow(value)
    # orjson turns tuples into lists and non-str keys fail above; floats and ints round-trip exactly.
    return copied  # type: ignore[no-any-return]
