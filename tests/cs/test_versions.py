"""API drift: v1 vs v2 differ exactly as declared in mocks/cs/versions.py, on the wire and in OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx

from mocks.cs.versions import STAGE_V2, cs_versions
from tests.cs.conftest import ADMIN, KEY_A, V2, A, assert_error, insert, query, where


def as_declared_v2(v1: dict[str, Any]) -> dict[str, Any]:
    """The declared v2 changes applied by hand to a v1 record."""
    out = {("CsmId" if k == "CSM" else k): v for k, v in v1.items() if k not in ("HealthScore", "HealthTrend")}
    out["Stage"] = STAGE_V2[v1["Stage"]]
    score = v1["HealthScore"]
    colors = "red" if score < 50 else "yellow" if score < 75 else "green"
    out["Health"] = {"score": score, "trend": v1["HealthTrend"], "color": colors}
    return out


async def test_same_read_differs_exactly_as_declared(client: httpx.AsyncClient) -> None:
    [gsid] = await insert(client, {"Name": "Acme", "CSM": "csm@example.com", "Stage": "Onboarding", "ARR": 10})
    await client.put(f"/v1/scorecard/company/{gsid}/measures", json={"measures": [{"name": "NPS", "score": 60}]},
                     headers=A)
    [v1] = await query(client, {})
    [v2] = await query(client, {}, headers=V2)
    assert v1["CSM"] == "csm@example.com" and v1["Stage"] == "Onboarding" and v1["HealthScore"] == 60
    assert v2 == as_declared_v2(v1)
    assert set(v1) ^ set(v2) == {"CSM", "CsmId", "HealthScore", "HealthTrend", "Health"}
    assert v2["Health"] == {"score": 60, "trend": "flat", "color": "yellow"}


async def test_v2_writes_and_filters_use_v2_names_and_values(client: httpx.AsyncClient) -> None:
    await insert(client, {"Name": "Acme", "CsmId": "a@example.com", "Stage": "ADOPTION"}, headers=V2)
    [v1] = await query(client, {})
    assert v1["CSM"] == "a@example.com" and v1["Stage"] == "Adopting" and v1["HealthScore"] is None
    rows = await query(client, {"select": ["Name", "CsmId", "Stage", "Health"],
                                "where": where(("CsmId", "EQ", "a@example.com"), ("Stage", "IN", ["ADOPTION"]))},
                       headers=V2)
    assert rows == [{"Name": "Acme", "CsmId": "a@example.com", "Stage": "ADOPTION", "Health": None}]
    r = await client.post("/v1/data/objects/Company", json={"records": [{"Name": "X", "CSM": "b@x.co"}]}, headers=V2)
    assert "CsmId" in assert_error(r, 400, "GSOBJ_1002")["errorDesc"]
    r = await client.post("/v1/data/objects/Company", json={"records": [{"Name": "X", "Stage": "Adopting"}]},
                          headers=V2)
    assert_error(r, 400, "GSOBJ_1002")
    r = await client.post("/v1/data/objects/Company", json={"records": [{"Name": "X", "CsmId": "b@x.co"}]}, headers=A)
    assert_error(r, 400, "GSOBJ_1002")
    for cond in (("CSM", "EQ", "a@example.com"), ("Stage", "EQ", "Adopting"), ("Health", "GT", 1)):
        r = await client.post("/v1/data/objects/query/Company", json={"where": where(cond)}, headers=V2)
        assert_error(r, 400, "GSOBJ_1002")
    r = await client.post("/v1/data/objects/query/Company", json={"select": ["HealthScore"]}, headers=V2)
    assert_error(r, 400, "GSOBJ_1002")
    await insert(client, {"Name": "Acme", "Stage": "RENEWAL"}, keys="Name", headers=V2)
    assert (await query(client, {}))[0]["Stage"] == "Renewal"


async def test_tenant_default_version_can_be_switched(client: httpx.AsyncClient) -> None:
    await insert(client, {"Name": "Acme", "CSM": "c@x.co"})
    r = await client.put(f"/_sandbox/tenants/{KEY_A}/version", json={"api_version": "v2"}, headers=ADMIN)
    assert r.status_code == 200
    [row] = await query(client, {})
    assert row["CsmId"] == "c@x.co" and "CSM" not in row
    [row] = await query(client, {}, headers={**A, "X-Gainsight-Version": "v1"})
    assert row["CSM"] == "c@x.co"


async def test_openapi_per_version_shows_the_drift(client: httpx.AsyncClient) -> None:
    v1 = (await client.get("/openapi/v1.json")).json()
    v2 = (await client.get("/openapi/v2.json")).json()
    c1, c2 = v1["components"]["schemas"]["Company"]["properties"], v2["components"]["schemas"]["Company"]["properties"]
    assert {"CSM", "HealthScore", "HealthTrend"} <= set(c1) and not {"CsmId", "Health"} & set(c1)
    assert {"CsmId", "Health"} <= set(c2) and not {"CSM", "HealthScore", "HealthTrend"} & set(c2)
    assert set(c1["Stage"]["anyOf"][0]["enum"]) == set(STAGE_V2)
    assert set(c2["Stage"]["anyOf"][0]["enum"]) == set(STAGE_V2.values())
    i1, i2 = (doc["components"]["schemas"]["CompanyInput"]["properties"] for doc in (v1, v2))
    assert "CSM" in i1 and "CsmId" in i2 and "CSM" not in i2
    assert "KICK_OFF" in str(i2["Stage"]) and "Kick Off" in str(i1["Stage"])
    assert v1["info"]["version"] == "v1" and v2["info"]["version"] == "v2"
    assert v1["x-lockstep-changes"] == [] and len(v2["x-lockstep-changes"]) == 5
    diff = {(d["op"], d["obj"], d["field"]) for d in cs_versions().diff("v1", "v2")}
    assert ("rename", "company", "CSM") in diff and ("enum_change", "company", "Stage") in diff
    assert (await client.get("/openapi/v3.json")).status_code == 404
    assert v2["components"]["securitySchemes"]["accesskey"] == {"type": "apiKey", "in": "header",
                                                               "name": "accesskey"}
    query_op = v2["paths"]["/v1/data/objects/query/Company"]["post"]
    assert query_op["security"] == [{"accesskey": []}] and "422" not in query_op["responses"]
    assert {"400", "401", "429"} <= set(query_op["responses"])
