"""`${name.field}` substitution, and the reverse (values -> `${name.field}`) that keeps reports seed-stable.

Native ids are minted by the mocks in whatever order concurrent scenarios reach them, so a report that
printed them would differ run to run. Every value a scenario binds is therefore shown as the binding that
holds it: `${a.erp}`, never `123`.
"""

from __future__ import annotations

import re
from typing import Any

from lockstep.scenario.loader import REF

__all__ = ["BindingError", "Bindings"]

_MIN_MASKED = 4  # shorter values ("1", "usd") are too common to stand for one binding


class BindingError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class Bindings:
    def __init__(self, builtins: dict[str, Any]) -> None:
        self.values: dict[str, Any] = dict(builtins)
        self._builtins = set(builtins)

    def bind(self, name: str, value: Any) -> None:
        self.values[name] = value

    def lookup(self, name: str, path: str) -> Any:
        if name not in self.values:
            raise BindingError(f"${{{name}{path}}}: nothing bound to {name!r}")
        value = self.values[name]
        for part in [p for p in path.split(".") if p]:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise BindingError(f"${{{name}{path}}}: {name!r} has no {part!r}")
        return value

    def render(self, value: Any) -> Any:
        """Substitute bindings in strings (recursively); a string that is one `${...}` keeps the type."""
        if isinstance(value, str):
            whole = REF.fullmatch(value)
            if whole:
                return self.lookup(whole.group(1), whole.group(2))
            return REF.sub(lambda m: str(self.lookup(m.group(1), m.group(2))), value)
        if isinstance(value, dict):
            return {self.render(k) if isinstance(k, str) else k: self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v) for v in value]
        return value

    def names(self) -> dict[str, str]:
        """{value: "${name.field}"} for every bound string (the reverse map used by `mask`)."""
        out: dict[str, str] = {}

        def walk(value: Any, ref: str) -> None:
            if isinstance(value, str) and len(value) >= _MIN_MASKED:
                out.setdefault(value, "${" + ref + "}")
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, f"{ref}.{k}")
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, f"{ref}.{i}")

        for name, value in self.values.items():
            if name not in ("scenario", "seed", "api"):
                walk(value, name)
        return out

    def mask(self, value: Any, names: dict[str, str] | None = None) -> Any:
        """`value` with every bound string replaced by its `${binding}` (also inside longer strings)."""
        names = self.names() if names is None else names
        if not names:
            return value
        pattern = re.compile("|".join(re.escape(k) for k in sorted(names, key=len, reverse=True)))

        def sub(v: Any) -> Any:
            if isinstance(v, str):
                return pattern.sub(lambda m: names[m.group(0)], v)
            if isinstance(v, dict):
                return {sub(k) if isinstance(k, str) else k: sub(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [sub(x) for x in v]
            return v

        return sub(value)
