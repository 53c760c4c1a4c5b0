"""Scorecards: per-company measures (0-100) -> an overall health score 0-100 with trend, color and history.

Rules:
- Overall = weighted mean of the measures that have a score, rounded half up; no scored measure -> null.
- Every scorecard evaluation (a measure write) appends the overall to the history (last 50 kept) and sets
  the trend against the previous evaluation: up / down / flat; the first evaluation is flat.
- Colors: red below 50, yellow below 75, green otherwise (measures and overall alike).
- A change of the overall score emits `company.health.changed` with old/new score, trend and colors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mocks.cs.errors import INVALID_VALUE, REQUIRED, CSError
from mocks.cs.versions import color_of

if TYPE_CHECKING:
    from mocks.cs.models import CSState

__all__ = ["MEASURES", "overall", "scorecard_view", "set_measures", "trend_of"]

Record = dict[str, Any]
MEASURES: dict[str, int] = {"Product Adoption": 30, "Support": 20, "Engagement": 20, "NPS": 15, "Relationship": 15}
HISTORY_MAX = 50


def overall(measures: dict[str, Record]) -> int | None:
    scored = [(MEASURES[name], m["score"]) for name, m in measures.items() if m.get("score") is not None]
    weight = sum(w for w, _ in scored)
    if not weight:
        return None
    return int(sum(w * s for w, s in scored) / weight + 0.5)


def trend_of(previous: int | None, current: int | None) -> str:
    if previous is None or current is None or previous == current:
        return "flat"
    return "up" if current > previous else "down"


def _check_update(update: Any) -> tuple[str, int | None, str | None]:
    if not isinstance(update, dict):
        raise CSError(INVALID_VALUE, "Each measure update must be an object {name, score}")
    name = update.get("name")
    if name is None:
        raise CSError(REQUIRED, "Invalid field value (name = null): the measure name is required", field="name")
    if name not in MEASURES:
        raise CSError(INVALID_VALUE, f"Unknown scorecard measure {name!r}; measures: {list(MEASURES)}", field="name")
    score = update.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100):
        raise CSError(INVALID_VALUE, f"Invalid score for {name}: {score!r} (0-100 or null)", field="score")
    comments = update.get("comments")
    if comments is not None and not isinstance(comments, str):
        raise CSError(INVALID_VALUE, "comments must be a string", field="comments")
    return name, None if score is None else round(score), comments


def set_measures(state: CSState, company_id: str, updates: list[Any]) -> Record:
    company = state.company(company_id)
    checked = [_check_update(u) for u in updates]  # all checked before anything changes
    if not checked:
        raise CSError(REQUIRED, "At least one measure is required", field="measures")
    card = state.scorecards.setdefault(company_id, {"measures": {}, "history": []})
    now = state.now_iso()
    for name, score, comments in checked:
        card["measures"][name] = {"score": score, "comments": comments, "updatedDate": now}
    old = company.get("HealthScore")
    new = overall(card["measures"])
    previous = card["history"][-1]["score"] if card["history"] else None
    trend = trend_of(previous, new)
    card["history"].append({"date": now, "score": new, "trend": trend})
    del card["history"][:-HISTORY_MAX]
    company["HealthScore"] = new
    company["HealthTrend"] = trend if new is not None else None
    if old != new:
        company["ModifiedDate"] = now
        state.emit("company.health.changed", {
            "companyId": company_id, "externalId": company.get("ExternalId"), "oldScore": old, "newScore": new,
            "trend": trend, "oldColor": color_of(old), "color": color_of(new)})
    return scorecard_view(state, company_id)


def scorecard_view(state: CSState, company_id: str) -> Record:
    company = state.company(company_id)
    card = state.scorecards.get(company_id, {"measures": {}, "history": []})
    measures = []
    for name, weight in MEASURES.items():
        m = card["measures"].get(name, {})
        score = m.get("score")
        measures.append({"name": name, "weight": weight, "score": score, "color": color_of(score),
                         "comments": m.get("comments"), "updatedDate": m.get("updatedDate")})
    score = company.get("HealthScore")
    return {"companyId": company_id, "score": score, "trend": company.get("HealthTrend"), "color": color_of(score),
            "measures": measures, "history": list(card["history"])}
