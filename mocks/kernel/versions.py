"""API versions as data: one internal model, per-version overlays of declared changes.

Each version is a list of changes *relative to the internal model* (not to the previous version), so a
version can be read on its own and the internal model never forks. From those declarations we derive:
rendering (internal -> wire), request parsing (wire -> internal), whether an endpoint exists, the
OpenAPI document per version, and the diff between two versions.

Field names in every change are internal names. Per object the steps run in a fixed order, mirrored in
reverse by parse: Custom (structural moves) -> value changes (EnumChange, TypeChange) -> Remove -> Rename.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "AddOperation", "AddRequired", "ApiVersion", "Change", "Custom", "EnumChange", "Remove",
    "RemoveOperation", "Rename", "TypeChange", "VersionParseError", "VersionRegistry",
]

Json = dict[str, Any]
LIST = "list"  # the type of a list envelope {"object": "list", "data": [...]}
_HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}


class VersionParseError(ValueError):
    """A request body that is not valid on its API version; the system renders it in its own envelope."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Rename:
    obj: str
    internal: str
    wire: str
    op: ClassVar[str] = "rename"
    breaking: ClassVar[bool] = True

    def describe(self) -> str:
        return f"{self.obj}.{self.internal} is called {self.wire}"


@dataclass(frozen=True)
class Remove:
    obj: str
    field: str
    op: ClassVar[str] = "remove"
    breaking: ClassVar[bool] = True

    def describe(self) -> str:
        return f"{self.obj}.{self.field} is removed"


@dataclass(frozen=True)
class AddRequired:
    obj: str
    field: str
    op: ClassVar[str] = "add_required"
    breaking: ClassVar[bool] = True

    def describe(self) -> str:
        return f"{self.obj}.{self.field} is required on create"


@dataclass(frozen=True)
class EnumChange:
    obj: str
    field: str
    mapping: dict[str, str]  # internal value -> wire value; unmapped values pass through
    op: ClassVar[str] = "enum_change"
    breaking: ClassVar[bool] = True

    def describe(self) -> str:
        pairs = ", ".join(f"{k} -> {v}" for k, v in self.mapping.items())
        return f"{self.obj}.{self.field} values: {pairs}"


@dataclass(frozen=True)
class TypeChange:
    obj: str
    field: str
    to_wire: Callable[[Any], Any]
    from_wire: Callable[[Any], Any]
    wire_type: Json  # JSON schema of the wire value, for the OpenAPI rewrite
    op: ClassVar[str] = "type_change"
    breaking: ClassVar[bool] = True

    def describe(self) -> str:
        return f"{self.obj}.{self.field} is sent as {self.wire_type.get('type', 'custom')}"


@dataclass(frozen=True)
class Custom:
    """A structural change that field ops cannot say (e.g. moving fields onto nested items).

    `render` gets its own deep copy, so it may mutate freely without touching stored state; `parse`
    gets a fresh top-level dict of the (throwaway) request body, already renamed back to internal names.
    """

    obj: str
    render: Callable[[Json], Json]
    parse: Callable[[Json], Json] | None
    description: str
    breaking: bool = True
    schema: Callable[[Json], Json] | None = None
    op: ClassVar[str] = "custom"

    def describe(self) -> str:
        return self.description


@dataclass(frozen=True)
class RemoveOperation:
    method: str
    path: str
    op: ClassVar[str] = "remove_operation"
    breaking: ClassVar[bool] = True

    def describe(self) -> str:
        return f"{self.method.upper()} {self.path} does not exist"


@dataclass(frozen=True)
class AddOperation:
    """An endpoint that exists only on the versions that declare it."""

    method: str
    path: str
    op: ClassVar[str] = "add_operation"
    breaking: ClassVar[bool] = False

    def describe(self) -> str:
        return f"{self.method.upper()} {self.path} exists"


Change = Rename | Remove | AddRequired | EnumChange | TypeChange | Custom | RemoveOperation | AddOperation
FieldChange = Rename | Remove | AddRequired | EnumChange | TypeChange | Custom


def change_dict(change: Change) -> Json:
    if isinstance(change, RemoveOperation | AddOperation):
        obj, fld = None, None
    else:
        obj, fld = change.obj, getattr(change, "field", None) or getattr(change, "internal", None)
    return {"op": change.op, "obj": obj, "field": fld, "breaking": change.breaking,
            "description": change.describe()}


@dataclass
class ApiVersion:
    name: str
    changes: list[Change] = field(default_factory=list)
    released: str | None = None
    description: str = ""


def _enum_step(mapping: dict[str, str]) -> Callable[[Any], Any]:
    return lambda v: mapping.get(v, v) if isinstance(v, str) else v


def _enum_inverse(field_name: str, mapping: dict[str, str]) -> Callable[[Any], Any]:
    inverse = {w: i for i, w in mapping.items()}
    # Internal values renamed away are not valid on this wire (unless another value took their name).
    stale = set(mapping) - set(inverse)

    def parse(v: Any) -> Any:
        if isinstance(v, str) and v in stale:
            raise VersionParseError(field_name, f"Invalid value for {field_name}: {v!r}")
        return inverse.get(v, v) if isinstance(v, str) else v

    return parse


def _type_inverse(field_name: str, from_wire: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        try:
            return from_wire(v)
        except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. decimal.InvalidOperation
            raise VersionParseError(field_name, f"Invalid value for {field_name}: {v!r}") from exc

    return parse


class _Plan:
    """The compiled changes of one version for one object type: plain dicts and lists, no dispatch."""

    def __init__(self, obj: str, version: str, changes: list[FieldChange]) -> None:
        self.customs = [c for c in changes if isinstance(c, Custom)]
        self.values: list[tuple[str, Callable[[Any], Any]]] = []
        self.inverse: list[tuple[str, Callable[[Any], Any]]] = []  # (internal name, wire -> internal)
        self.removed = {c.field for c in changes if isinstance(c, Remove)}
        self.renames = {c.internal: c.wire for c in changes if isinstance(c, Rename)}
        if len(self.renames) != sum(isinstance(c, Rename) for c in changes):
            raise ValueError(f"{version}: {obj} renames one field twice")
        for c in changes:
            if isinstance(c, EnumChange):
                if len(set(c.mapping.values())) != len(c.mapping):
                    raise ValueError(f"{version}: {obj}.{c.field} enum mapping is not one-to-one")
                wire = self.renames.get(c.field, c.field)
                self.values.append((c.field, _enum_step(c.mapping)))
                self.inverse.append((c.field, _enum_inverse(wire, c.mapping)))
            elif isinstance(c, TypeChange):
                wire = self.renames.get(c.field, c.field)
                self.values.append((c.field, c.to_wire))
                self.inverse.append((c.field, _type_inverse(wire, c.from_wire)))
        self.inverse.reverse()
        self.required = [self.renames.get(c.field, c.field) for c in changes if isinstance(c, AddRequired)]
        self.back = {w: i for i, w in self.renames.items()}
        # On input, removed fields and the internal names of renamed fields are unknown to this version.
        self.rejected = {f: f"{f} is not a field of {obj} on API version {version}" for f in self.removed}
        for internal, wire in self.renames.items():
            if internal not in self.back:
                self.rejected[internal] = f"{internal} is called {wire} on API version {version}"
        self.parses = [c.parse for c in reversed(self.customs) if c.parse is not None]
        # Render only needs to act when something changes the shape of a response.
        self.renders = bool(self.customs or self.values or self.removed or self.renames)

    def render(self, data: Json) -> Json:
        out = dict(data)
        for custom in self.customs:
            out = custom.render(copy.deepcopy(out))
        for name, fn in self.values:
            if out.get(name) is not None:  # null stays null: nullable fields keep their meaning
                out[name] = fn(out[name])
        for name in self.removed:
            out.pop(name, None)
        if self.renames:
            out = {self.renames.get(k, k): v for k, v in out.items()}  # keeps key order
        return out

    def parse(self, data: Json, creating: bool) -> Json:
        for name, message in self.rejected.items():
            if name in data:
                raise VersionParseError(name, message)
        if creating:
            for name in self.required:
                if data.get(name) in (None, ""):
                    raise VersionParseError(name, f"Missing required param: {name}.")
        out = {self.back.get(k, k): v for k, v in data.items()} if self.back else dict(data)
        for internal, fn in self.inverse:
            if out.get(internal) is not None:
                out[internal] = fn(out[internal])
        for parse in self.parses:
            out = parse(out)
        return out


def _map_enums(schema: Any, mapping: dict[str, str]) -> None:
    """Rewrites every `enum` inside one property schema (Stripe nests them in anyOf)."""
    if isinstance(schema, dict):
        if isinstance(schema.get("enum"), list):
            schema["enum"] = [mapping.get(v, v) if isinstance(v, str) else v for v in schema["enum"]]
        for value in schema.values():
            _map_enums(value, mapping)
    elif isinstance(schema, list):
        for item in schema:
            _map_enums(item, mapping)


def _object_tag(data: Json) -> str | None:
    # Stripe's event payload has data.object = <the object>: a dict there is a child, not a type tag.
    tag = data.get("object")
    return tag if isinstance(tag, str) else None


class VersionRegistry:
    """A system's API versions, oldest first; the last one is `latest`."""

    def __init__(
        self,
        system: str,
        versions: list[ApiVersion],
        default: str,
        schema_names: dict[str, str] | None = None,
        type_of: Callable[[Json], str | None] | None = None,
    ) -> None:
        if not versions:
            raise ValueError(f"{system}: at least one API version is needed")
        self.system = system
        self._versions = {v.name: v for v in versions}
        if len(self._versions) != len(versions):
            raise ValueError(f"{system}: duplicate API version names")
        if default not in self._versions:
            raise ValueError(f"{system}: default version {default!r} is not declared")
        self.default = default
        self.latest = versions[-1].name
        self.schema_names = dict(schema_names or {})
        self._type_of = type_of or _object_tag
        self._plans: dict[str, dict[str, _Plan]] = {}
        self._render_plans: dict[str, dict[str, _Plan]] = {}
        self._removed_ops: dict[str, set[tuple[str, str]]] = {}
        self._added_ops: dict[str, set[tuple[str, str]]] = {}
        for v in versions:
            by_obj: dict[str, list[FieldChange]] = {}
            for c in v.changes:
                if isinstance(c, RemoveOperation | AddOperation):
                    continue
                by_obj.setdefault(c.obj, []).append(c)
            self._plans[v.name] = {obj: _Plan(obj, v.name, cs) for obj, cs in by_obj.items()}
            # Precomputed so render's fast path is one dict lookup; AddRequired alone never changes output.
            self._render_plans[v.name] = {o: p for o, p in self._plans[v.name].items() if p.renders}
            self._removed_ops[v.name] = {(c.method.upper(), c.path) for c in v.changes
                                         if isinstance(c, RemoveOperation)}
            self._added_ops[v.name] = {(c.method.upper(), c.path) for c in v.changes
                                       if isinstance(c, AddOperation)}
        self._versioned_ops = set().union(*self._added_ops.values())

    def names(self) -> list[str]:
        return list(self._versions)

    def __contains__(self, name: object) -> bool:
        return name in self._versions

    def get(self, name: str) -> ApiVersion:
        return self._versions[name]  # KeyError for an unknown version, on purpose

    # -- data ---------------------------------------------------------------------------------------

    def render(self, obj: str, data: Json, version: str) -> Json:
        """Internal -> wire. Returns `data` itself when nothing in it changes on this version."""
        plans = self._render_plans[version]
        if not plans:
            return data
        # `obj` types the top-level object; for a list envelope it types the items that carry no type.
        return self._walk(data, plans, None if self._type_of(data) == LIST else obj, fallback=obj)

    def _walk(self, value: Any, plans: dict[str, _Plan], typ: str | None, fallback: str | None = None) -> Any:
        # Copy-on-write: a container is copied only when something below it changed, so unchanged
        # responses come back as the very same objects (and stored state is never mutated).
        if isinstance(value, list):
            out_list = value
            for i, item in enumerate(value):
                if not isinstance(item, dict | list):
                    continue
                new = self._walk(item, plans, None, fallback)
                if new is not item:
                    if out_list is value:
                        out_list = list(value)
                    out_list[i] = new
            return out_list
        if not isinstance(value, dict):
            return value
        typ = typ or self._type_of(value) or fallback
        plan = plans.get(typ) if typ else None
        out = plan.render(value) if plan is not None else value
        for key, child in out.items():
            if not isinstance(child, dict | list):
                continue
            # Only a list envelope hands its fallback type down (to the items under "data").
            new = self._walk(child, plans, None, fallback if typ == LIST and key == "data" else None)
            if new is not child:
                if out is value:
                    out = dict(value)
                out[key] = new  # replacing an existing key while iterating is safe
        return out

    def parse(self, obj: str, data: Json, version: str, *, creating: bool = False) -> Json:
        """Wire -> internal for one request body (flat: request bodies carry no `object` tags)."""
        plan = self._plans[version].get(obj)
        if plan is None:
            return data
        return plan.parse(data, creating)

    # -- operations and documents -----------------------------------------------------------------------

    def operation_exists(self, method: str, path_template: str, version: str) -> bool:
        key = (method.upper(), path_template)
        if key in self._removed_ops[version]:
            return False
        if key in self._versioned_ops:
            return key in self._added_ops[version]
        return True

    def openapi(self, base: Json, version: str) -> Json:
        """The OpenAPI document of `version`, derived from the internal model's document `base`."""
        v = self.get(version)
        doc = copy.deepcopy(base)
        doc.setdefault("info", {})["version"] = version
        schemas = doc.get("components", {}).get("schemas", {})
        by_obj: dict[str, list[FieldChange]] = {}
        for c in v.changes:
            if not isinstance(c, RemoveOperation | AddOperation):
                by_obj.setdefault(c.obj, []).append(c)
        for obj, changes in by_obj.items():
            name = self.schema_names.get(obj, obj)
            if name in schemas:
                schemas[name] = self._rewrite_schema(schemas[name], changes)
        paths = doc.get("paths", {})
        for path in list(paths):
            item = paths[path]
            for method in list(item):
                if method.upper() in _HTTP_METHODS and not self.operation_exists(method, path, version):
                    del item[method]
            if not any(m.upper() in _HTTP_METHODS for m in item):
                del paths[path]
        doc["x-lockstep-changes"] = [change_dict(c) for c in v.changes]
        return doc

    @staticmethod
    def _rewrite_schema(schema: Json, changes: list[FieldChange]) -> Json:
        # Same order as render: custom, values, remove, required, rename.
        for c in changes:
            if isinstance(c, Custom) and c.schema is not None:
                schema = c.schema(schema)
        props: Json = schema.setdefault("properties", {})
        required: list[str] = list(schema.get("required", []))
        for c in changes:
            if isinstance(c, EnumChange) and c.field in props:
                _map_enums(props[c.field], c.mapping)
            elif isinstance(c, TypeChange) and c.field in props:
                old = props[c.field]
                keep = {k: old[k] for k in ("description", "nullable") if k in old}
                props[c.field] = {**copy.deepcopy(c.wire_type), **keep}
        for c in changes:
            if isinstance(c, Remove):
                props.pop(c.field, None)
                required = [r for r in required if r != c.field]
            elif isinstance(c, AddRequired) and c.field not in required:
                required.append(c.field)
        renames = {c.internal: c.wire for c in changes if isinstance(c, Rename)}
        if renames:
            schema["properties"] = {renames.get(k, k): p for k, p in props.items()}
            required = [renames.get(r, r) for r in required]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
        return schema

    def diff(self, a: str, b: str) -> list[Json]:
        """What differs between two versions: changes only `b` declares, then those only `a` declares."""
        va, vb = self.get(a), self.get(b)
        out = [{**change_dict(c), "version": b} for c in vb.changes if c not in va.changes]
        out += [{**change_dict(c), "version": a} for c in va.changes if c not in vb.changes]
        return out
