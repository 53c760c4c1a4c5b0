"""CRM API versions as data. The path picks the version (`/services/data/v60.0/...`).

The internal model is v59.0's shape; v60.0 declares its differences relative to it:

- Opportunity.StageName: the picklist value "Negotiation/Review" is called "Negotiation" on v60.0.
  Responses, change events, describe and SOQL filters speak the request's version; on v60.0 writing the
  old value is refused like any bad restricted-picklist value (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST).

Sandbox simplification: real Salesforce does not rename standard picklist values between API versions
(an admin renames them for every version at once); the change is declared here so integrations can
rehearse version drift with a real, visible breaking difference.
"""

from __future__ import annotations

from typing import Any

from mocks.kernel.versions import ApiVersion, EnumChange, VersionRegistry

__all__ = ["LABELS", "crm_versions", "internal_value", "wire_values"]

LABELS = {"59.0": "Winter '24", "60.0": "Spring '24"}
STAGE_RENAME = EnumChange("Opportunity", "StageName", {"Negotiation/Review": "Negotiation"})


def _type_of(data: dict[str, Any]) -> str | None:
    attributes = data.get("attributes")
    return attributes.get("type") if isinstance(attributes, dict) else None


def crm_versions() -> VersionRegistry:
    return VersionRegistry(
        "crm",
        [
            ApiVersion("59.0", [], released="2023-10-14", description="Winter '24"),
            ApiVersion("60.0", [STAGE_RENAME], released="2024-02-17",
                       description="Spring '24: Opportunity stage 'Negotiation/Review' is called 'Negotiation'"),
        ],
        default="60.0",
        schema_names={"Opportunity": "Opportunity"},
        type_of=_type_of,
    )


def _enum_changes(registry: VersionRegistry, version: str, obj: str, field: str) -> list[EnumChange]:
    return [c for c in registry.get(version).changes
            if isinstance(c, EnumChange) and c.obj == obj and c.field == field]


def wire_values(registry: VersionRegistry, version: str, obj: str, field: str, values: list[str]) -> list[str]:
    """Picklist values as `version` spells them (for describe)."""
    for change in _enum_changes(registry, version, obj, field):
        values = [change.mapping.get(v, v) for v in values]
    return values


def internal_value(registry: VersionRegistry, version: str, obj: str, field: str, value: Any) -> Any:
    """A wire value (e.g. in a SOQL filter) in the internal model's spelling."""
    for change in _enum_changes(registry, version, obj, field):
        back = {w.lower(): i for i, w in change.mapping.items()}
        if isinstance(value, str) and value.lower() in back:
            return back[value.lower()]
        if isinstance(value, str) and value in change.mapping:
            return "\x00stale:" + value  # the old spelling matches nothing on this version
    return value
