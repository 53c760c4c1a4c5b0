"""CS API versions as data: one internal model (= v1's wire names), v2 declared as changes over it.

A request picks its version with the `X-Gainsight-Version` header (`v1` | `v2`); without it the tenant's
default applies (`v1` unless switched through the control API). An unknown value is a 400 `GS_2002`.

v2 differs from v1 on the company object (responses, request bodies, query conditions, webhooks):
- `CSM` is called `CsmId`;
- `Stage` uses upper-case codes: Kick Off -> KICK_OFF, Onboarding -> ONBOARDING, Adopting -> ADOPTION,
  Expanding -> EXPANSION, Renewal -> RENEWAL, Churned -> CHURNED (v1 names are refused on v2);
- health is one object `Health: {"score", "trend", "color"}` instead of v1's `HealthScore` (number) and
  `HealthTrend` (string).
"""

from __future__ import annotations

from typing import Any

from mocks.kernel.versions import ApiVersion, Custom, EnumChange, Rename, VersionRegistry

__all__ = ["DEFAULT", "STAGE_V2", "V1", "V2", "color_of", "cs_versions"]

V1 = "v1"
V2 = "v2"
DEFAULT = V1

STAGE_V2 = {"Kick Off": "KICK_OFF", "Onboarding": "ONBOARDING", "Adopting": "ADOPTION",
            "Expanding": "EXPANSION", "Renewal": "RENEWAL", "Churned": "CHURNED"}

# Internal object type -> component schema in the OpenAPI document.
SCHEMA_NAMES = {"company": "Company", "company_input": "CompanyInput"}


def color_of(score: float | None) -> str | None:
    if score is None:
        return None
    return "red" if score < 50 else "yellow" if score < 75 else "green"


def _health_render(data: dict[str, Any]) -> dict[str, Any]:
    if "HealthScore" not in data and "HealthTrend" not in data:
        return data
    score = data.pop("HealthScore", None)
    trend = data.pop("HealthTrend", None)
    data["Health"] = None if score is None else {"score": score, "trend": trend, "color": color_of(score)}
    return data


def _health_parse(data: dict[str, Any]) -> dict[str, Any]:
    if "Health" in data:
        # Read-only: map it to the internal field so the model refuses it with its usual message.
        data["HealthScore"] = data.pop("Health")
    return data


def _health_schema(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties", {})
    props.pop("HealthScore", None)
    props.pop("HealthTrend", None)
    props["Health"] = {
        "anyOf": [
            {"type": "object", "required": ["score", "trend", "color"], "properties": {
                "score": {"type": "integer", "minimum": 0, "maximum": 100},
                "trend": {"anyOf": [{"type": "string", "enum": ["up", "down", "flat"]}, {"type": "null"}]},
                "color": {"type": "string", "enum": ["red", "yellow", "green"]}}},
            {"type": "null"},
        ],
        "title": "Health",
        "description": "Overall health from the scorecard (read-only).",
    }
    return schema


def cs_versions() -> VersionRegistry:
    v1 = ApiVersion(V1, released="2023-01-01", description="Gainsight field names: CSM, Stage names, "
                    "HealthScore + HealthTrend.")
    v2 = ApiVersion(
        V2,
        released="2025-06-01",
        description="CsmId, upper-case Stage codes, Health as an object {score, trend, color}.",
        changes=[
            Custom("company", _health_render, _health_parse,
                   "company.HealthScore and HealthTrend become Health {score, trend, color}",
                   schema=_health_schema),
            EnumChange("company", "Stage", STAGE_V2),
            Rename("company", "CSM", "CsmId"),
            # The request body schema of writes, for the per-version OpenAPI (parsing uses "company").
            EnumChange("company_input", "Stage", STAGE_V2),
            Rename("company_input", "CSM", "CsmId"),
        ],
    )
    return VersionRegistry("cs", [v1, v2], default=DEFAULT, schema_names=SCHEMA_NAMES,
                           type_of=lambda data: None)
