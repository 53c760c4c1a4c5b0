"""Version drift: the same requests on v59.0 and v60.0 differ exactly as mocks/crm/versions.py declares."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.crm.conftest import V59, A, V, create, soql


async def test_stage_value_differs_by_path_version_in_reads_queries_and_describe(client: httpx.AsyncClient) -> None:
    opp = await create(client, "Opportunity", {"Name": "Deal", "StageName": "Negotiation/Review",
                                               "CloseDate": "2026-03-01"}, version=V59)
    old = (await client.get(f"{V59}/sobjects/Opportunity/{opp}", headers=A)).json()
    new = (await client.get(f"{V}/sobjects/Opportunity/{opp}", headers=A)).json()
    assert old["StageName"] == "Negotiation/Review" and new["StageName"] == "Negotiation"
    assert {k for k in old if old[k] != new[k]} == {"StageName", "attributes"}
    found_new = (await soql(client, "SELECT StageName FROM Opportunity WHERE StageName = 'Negotiation'")).json()
    assert [r["StageName"] for r in found_new["records"]] == ["Negotiation"]
    found_old = (await soql(client, "SELECT StageName FROM Opportunity WHERE StageName = 'Negotiation/Review'",
                            version=V59)).json()
    assert [r["StageName"] for r in found_old["records"]] == ["Negotiation/Review"]
    # Each version's spelling matches nothing on the other.
    assert (await soql(client, "SELECT Id FROM Opportunity WHERE StageName = 'Negotiation/Review'")).json()[
        "totalSize"] == 0
    assert (await soql(client, "SELECT Id FROM Opportunity WHERE StageName = 'Negotiation'", version=V59)).json()[
        "totalSize"] == 0
    for version, expected in ((V59, "Negotiation/Review"), (V, "Negotiation")):
        describe = (await client.get(f"{version}/sobjects/Opportunity/describe", headers=A)).json()
        stage = next(f for f in describe["fields"] if f["name"] == "StageName")
        values = [p["value"] for p in stage["picklistValues"]]
        assert expected in values and ({"Negotiation", "Negotiation/Review"} - {expected}).isdisjoint(values)


async def test_writes_use_the_path_version_spelling(client: httpx.AsyncClient) -> None:
    opp = await create(client, "Opportunity", {"Name": "D", "StageName": "Negotiation", "CloseDate": "2026-03-01"})
    assert (await client.get(f"{V59}/sobjects/Opportunity/{opp}", headers=A)).json()["StageName"] == \
        "Negotiation/Review"
    stale = await client.patch(f"{V}/sobjects/Opportunity/{opp}", json={"StageName": "Negotiation/Review"}, headers=A)
    assert stale.status_code == 400 and stale.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    future = await client.patch(f"{V59}/sobjects/Opportunity/{opp}", json={"StageName": "Negotiation"}, headers=A)
    assert future.status_code == 400 and future.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


async def test_per_version_openapi_shows_the_declared_change(app: FastAPI, client: httpx.AsyncClient) -> None:
    docs = {v: (await client.get(f"/openapi/{v}.json")).json() for v in ("59.0", "60.0")}

    def stages(doc: dict) -> list[str]:
        prop = doc["components"]["schemas"]["Opportunity"]["properties"]["StageName"]
        return next(option["enum"] for option in prop["anyOf"] if "enum" in option)

    assert "Negotiation/Review" in stages(docs["59.0"]) and "Negotiation" not in stages(docs["59.0"])
    assert "Negotiation" in stages(docs["60.0"]) and "Negotiation/Review" not in stages(docs["60.0"])
    assert docs["59.0"]["x-lockstep-changes"] == []
    assert [c["op"] for c in docs["60.0"]["x-lockstep-changes"]] == ["enum_change"]
    assert app.state.system.versions.diff("59.0", "60.0")[0]["field"] == "StageName"
