"""The dashboard's account list: canonical accounts (merge survivors) and their native ids per system.

`GET /crosswalk/{id}` has the full story of one account (aliases, merge history); this list is how the page
finds the ids to ask about.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from core.intake.receivers import RuntimeDep

__all__ = ["accounts_router"]


def accounts_router() -> APIRouter:
    router = APIRouter()

    @router.get("/accounts", summary="Canonical accounts (newest first) with their native id in each system")
    def accounts(runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        xw = runtime.crosswalk
        ids = xw.survivors("account")
        newest = sorted(ids, reverse=True)[:limit]  # ids sort by creation time (ULID-style)
        return {"accounts": [{"id": cid, "refs": xw.refs(cid)} for cid in newest], "count": len(ids)}

    return router
