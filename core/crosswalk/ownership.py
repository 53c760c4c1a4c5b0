"""Field ownership: which system owns each canonical field, and filtering writes by it.

Loaded from YAML (core/ownership.yaml by default) and checked against the canonical models on load, so
a typo or a model field nobody owns fails at startup with the file and entry named, not at runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from core.model.base import BOOKKEEPING_FIELDS, SYSTEMS
from core.model.catalog import ENTITIES

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "ownership.yaml"
WILDCARD = "*"


class OwnershipConfigError(ValueError):
    """The ownership file is unreadable, not YAML, or names an unknown entity, field or system."""


class UnknownFieldError(KeyError):
    """Asked about (or asked to write) an entity or field the canonical model doesn't have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown field"


@dataclass(frozen=True)
class IgnoredWrite:
    entity: str
    field: str
    system: str  # who tried to write
    owner: str | None  # who owns the field (None: managed by the core)
    value: Any


class WriteDecision(NamedTuple):
    """`accepted, ignored = ownership.filter_write(...)`."""

    accepted: dict[str, Any]
    ignored: list[IgnoredWrite]


class Ownership:
    def __init__(self, owners: Mapping[str, Mapping[str, str]], source: str = "<mapping>") -> None:
        """`owners`: entity -> field -> system, already complete. Prefer `load` / `from_mapping`."""
        self._owners = {entity: dict(fields) for entity, fields in owners.items()}
        self.source = source

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> Ownership:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise OwnershipConfigError(f"{path}: can't read the ownership file: {exc}") from exc
        except yaml.YAMLError as exc:
            raise OwnershipConfigError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<mapping>") -> Ownership:
        def fail(where: str, problem: str) -> OwnershipConfigError:
            return OwnershipConfigError(f"{source}: {where}: {problem}")

        if not isinstance(data, dict):
            raise fail("top level", f"expected a mapping of entity -> fields, got {type(data).__name__}")
        unknown = sorted(set(data) - set(ENTITIES), key=str)
        if unknown:
            raise fail(f"entity {unknown[0]!r}", f"unknown entity; known: {', '.join(ENTITIES)}")
        missing = [entity for entity in ENTITIES if entity not in data]
        if missing:
            raise fail(f"entity {missing[0]!r}", "missing; every canonical entity needs an owner matrix")

        owners: dict[str, dict[str, str]] = {}
        for entity, model in ENTITIES.items():
            entry = data[entity]
            if not isinstance(entry, dict):
                raise fail(entity, f"expected a mapping of field -> system, got {type(entry).__name__}")
            fields = [name for name in model.model_fields if name not in BOOKKEEPING_FIELDS]
            for key, system in entry.items():
                where = f"{entity}.{key}"
                if key in BOOKKEEPING_FIELDS:
                    raise fail(where, "managed by the core; no system may own it")
                if key != WILDCARD and key not in fields:
                    raise fail(where, f"{model.__name__} has no field {key!r}; fields: {', '.join(fields)}")
                if system not in SYSTEMS:
                    raise fail(where, f"unknown system {system!r}; expected one of {', '.join(SYSTEMS)}")
            default = entry.get(WILDCARD)
            unowned = [name for name in fields if name not in entry and default is None]
            if unowned:
                raise fail(f"{entity}.{unowned[0]}", f'no owner (list it, or add "{WILDCARD}": <system>)')
            owners[entity] = {name: entry.get(name, default) for name in fields}
        return cls(owners, source)

    def owner(self, entity: str, field: str) -> str:
        return self._fields(entity).get(field) or self._unknown(entity, field)

    def owned_by(self, entity: str, system: str) -> list[str]:
        return [name for name, owner in self._fields(entity).items() if owner == system]

    def filter_write(self, entity: str, system: str, changes: Mapping[str, Any]) -> WriteDecision:
        """Split `changes` into the fields `system` owns (accepted) and the rest (ignored, logged).

        Core-managed fields (id, version, ...) are always ignored. Unknown fields raise UnknownFieldError:
        they mean a mapping bug, and dropping them quietly would hide it.
        """
        if system not in SYSTEMS:
            raise ValueError(f"unknown system {system!r}; expected one of {', '.join(SYSTEMS)}")
        owners = self._fields(entity)
        accepted: dict[str, Any] = {}
        ignored: list[IgnoredWrite] = []
        for name, value in changes.items():
            if name in BOOKKEEPING_FIELDS:
                ignored.append(IgnoredWrite(entity, name, system, None, value))
            elif name not in owners:
                self._unknown(entity, name)
            elif owners[name] == system:
                accepted[name] = value
            else:
                ignored.append(IgnoredWrite(entity, name, system, owners[name], value))
        for item in ignored:
            log.info(
                "ignored write to %s.%s from %s: owned by %s",
                item.entity,
                item.field,
                item.system,
                item.owner or "the core",
                extra={"ownership_ignored": item},
            )
        return WriteDecision(accepted, ignored)

    def _fields(self, entity: str) -> dict[str, str]:
        if entity not in self._owners:
            raise UnknownFieldError(f"unknown entity {entity!r}; known: {', '.join(self._owners)}")
        return self._owners[entity]

    def _unknown(self, entity: str, field: str) -> str:
        raise UnknownFieldError(f"{entity} has no owned field {field!r}; fields: {', '.join(self._owners[entity])}")
