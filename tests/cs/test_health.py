"""Scorecards: weighted overall score, trend against the previous value, colors, history."""

from __future__ import annotations

import httpx
import pytest

from mocks.cs.health import overall, trend_of
from mocks.cs.versions import color_of
from tests.cs.conftest import A, assert_error, insert, query


async def put_measures(client: httpx.AsyncClient, gsid: str, **scores: float | None) -> dict:
    body = {"measures": [{"name": k.replace("_", " "), "score": v} for k, v in scores.items()]}
    r = await client.put(f"/v1/scorecard/company/{gsid}/measures", json=body, headers=A)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_overall_is_the_weighted_mean_of_scored_measures() -> None:
    assert overall({}) is None
    assert overall({"Support": {"score": None}}) is None
    assert overall({"Support": {"score": 40}}) == 40
    # (30*80 + 20*40) / 50 = 64
    assert overall({"Product Adoption": {"score": 80}, "Support": {"score": 40}}) == 64
    # (15*51 + 15*50) / 30 = 50.5 rounds half up
    assert overall({"NPS": {"score": 51}, "Relationship": {"score": 50}}) == 51


@pytest.mark.parametrize(("score", "color"), [(None, None), (0, "red"), (49, "red"), (50, "yellow"),
                                              (74, "yellow"), (75, "green"), (100, "green")])
def test_colors(score: int | None, color: str | None) -> None:
    assert color_of(score) == color


def test_trend_against_previous() -> None:
    assert [trend_of(None, 5), trend_of(5, 5), trend_of(5, 6), trend_of(6, 5)] == ["flat", "flat", "up", "down"]


async def test_trend_history_and_company_health(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    first = await put_measures(client, gsid, Support=80)
    assert (first["score"], first["trend"], first["color"]) == (80, "flat", "green")
    down = await put_measures(client, gsid, Product_Adoption=20)  # (20*80 + 30*20) / 50 = 44
    assert (down["score"], down["trend"], down["color"]) == (44, "down", "red")
    same = await put_measures(client, gsid, Support=80)
    assert (same["score"], same["trend"]) == (44, "flat")
    up = await put_measures(client, gsid, Product_Adoption=70)  # (1600 + 2100) / 50 = 74
    assert (up["score"], up["trend"], up["color"]) == (74, "up", "yellow")
    assert [(h["score"], h["trend"]) for h in up["history"]] == [(80, "flat"), (44, "down"), (44, "flat"),
                                                                 (74, "up")]
    support = next(m for m in up["measures"] if m["name"] == "Support")
    assert (support["score"], support["color"], support["weight"]) == (80, "green", 20)
    [company] = await query(client, {})
    assert (company["HealthScore"], company["HealthTrend"]) == (74, "up")
    r = await client.get(f"/v1/scorecard/company/{gsid}", headers=A)
    assert r.json()["data"]["score"] == 74


async def test_clearing_all_measures_clears_health(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    await put_measures(client, gsid, NPS=90)
    cleared = await put_measures(client, gsid, NPS=None)
    assert (cleared["score"], cleared["trend"], cleared["color"]) == (None, None, None)
    assert (await query(client, {}))[0]["HealthScore"] is None


async def test_measure_validation(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme"})
    url = f"/v1/scorecard/company/{gsid}/measures"
    assert_error(await client.put(url, json={"measures": [{"name": "Vibes", "score": 5}]}, headers=A),
                 400, "GSOBJ_1008")
    assert_error(await client.put(url, json={"measures": [{"name": "NPS", "score": 101}]}, headers=A),
                 400, "GSOBJ_1002")
    assert_error(await client.put(url, json={"measures": []}, headers=A), 400, "GS_2001")
    # Nothing was applied by the refused writes.
    assert (await client.get(f"/v1/scorecard/company/{gsid}", headers=A)).json()["data"]["history"] == []
    assert_error(await client.get("/v1/scorecard/company/1P02NOPE", headers=A), 404, "GS_3004")
    mixed = {"measures": [{"name": "NPS", "score": 50}, {"name": "Vibes", "score": 5}]}
    assert_error(await client.put(url, json=mixed, headers=A), 400, "GSOBJ_1008")
    assert (await client.get(f"/v1/scorecard/company/{gsid}", headers=A)).json()["data"]["score"] is None
