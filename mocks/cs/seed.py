"""Control-API hooks: seeding demo / explicit data, and "user actions" (what a CSM does in Gainsight's UI).

Seed body (all optional):
    {"companies": 30,                       # demo companies drawn from the tenant RNG (0..500)
     "records": [{"Name": ..., "ExternalId": ..., "ARR": ..., "Stage": ..., "RenewalDate": ...,
                  "persons": [{"Email": ..., "FirstName": ...}], "measures": {"Support": 80},
                  "plan": "Standard Onboarding"}]}        # explicit companies, created first
Seeding emits no webhooks.

Actions (`{"action": ..., ...}`): company refs accept a Gsid or an ExternalId.
    set_measure        {"company", "measure", "score", "comments"?}     -> scorecard
    complete_milestone {"milestone"}                                     -> success plan
    close_cta          {"cta", "status"? ("Closed Success"), "reason"?}  -> CTA
    change_stage       {"company", "stage"}                              -> company (v1 names)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mocks.cs import cockpit, health
from mocks.cs.errors import CSError
from mocks.cs.fields import DAY, STAGES, iso_date

__all__ = ["action", "seed"]

Record = dict[str, Any]
_NAMES = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell",
          "Cyberdyne", "Wonka", "Oscorp", "Nakatomi", "Gringotts", "Aperture", "Monarch", "Dunder", "Prestige",
          "Sterling", "Bluth", "Pendant", "Virtucon", "Massive", "Krusty"]
_SUFFIXES = ["Corp", "Labs", "Systems", "Industries", "Group", "Holdings", "Analytics", "Logistics"]
_INDUSTRIES = ["Software", "Healthcare", "Retail", "Manufacturing", "Finance", "Education", "Media", "Energy"]
_FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia",
          "Tim", "Katherine", "John", "Hedy"]
_LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen",
         "Dijkstra", "Perlman", "Berners-Lee", "Johnson", "Backus", "Lamarr"]
_ROLES = ["Champion", "Decision Maker", "Admin", "End User", "Executive Sponsor"]
_CSMS = ["csm.alex@example.com", "csm.blair@example.com", "csm.casey@example.com", "csm.drew@example.com"]


def _user_error(call: Callable[[], Any]) -> Any:
    """Control-API hooks answer bad input with a 400 from the kernel (ValueError), never a 500."""
    try:
        return call()
    except CSError as exc:
        raise ValueError(f"{exc.code}: {exc.message}") from exc


def seed(tenant: Any, body: dict[str, Any]) -> dict[str, Any]:
    count = body.get("companies", 30)
    records = body.get("records", [])
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 500:
        raise ValueError("companies must be an integer 0..500")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError("records must be a list of company objects")
    state = tenant.state
    state.events.muted = True
    try:
        made = [_user_error(lambda r=r: _seed_company(state, dict(r))) for r in records]
        made += [_seed_company(state, _demo_company(tenant, state, i)) for i in range(count)]
    finally:
        state.events.muted = False
    return {"companies": len(made), "persons": sum(m["persons"] for m in made),
            "plans": sum(1 for m in made if m["plan"]), "records": [m["company"] for m in made]}


def _demo_company(tenant: Any, state: Any, i: int) -> Record:
    rng = tenant.rng
    name = f"{rng.choice(_NAMES)} {rng.choice(_SUFFIXES)} {len(state.companies) + 1}"
    arr = rng.randrange(12_000, 600_000, 1_200)
    stage = rng.choices(STAGES, weights=[2, 4, 6, 2, 3, 1])[0]
    slug = name.lower().replace(" ", "")
    persons = [{"Email": f"{first.lower()}.{last.lower()}@{slug}.example.com", "FirstName": first,
                "LastName": last, "Role": rng.choice(_ROLES)}
               for first, last in dict.fromkeys((rng.choice(_FIRST), rng.choice(_LAST))
                                                for _ in range(rng.randint(1, 3)))]
    measures = {m: rng.randint(15, 100) for m in rng.sample(list(health.MEASURES), rng.randint(2, 5))}
    return {
        "Name": name, "ExternalId": f"CUST-{len(state.companies) + 1:05d}", "ARR": arr, "MRR": round(arr / 12, 2),
        "RenewalDate": iso_date(state.clock.now() + rng.randint(20, 400) * DAY), "CSM": rng.choice(_CSMS),
        "Stage": stage, "Industry": rng.choice(_INDUSTRIES), "persons": persons,
        "measures": measures, "plan": "Standard Onboarding" if stage in ("Kick Off", "Onboarding") else None,
    }


def _seed_company(state: Any, row: Record) -> Record:
    persons = row.pop("persons", []) or []
    measures = row.pop("measures", {}) or {}
    plan = row.pop("plan", None)
    if not isinstance(persons, list) or not isinstance(measures, dict):
        raise ValueError("persons must be a list and measures an object")
    [written] = state.insert_companies([row])
    gsid = written["Gsid"]
    for person in persons:
        state.upsert_person({**person, "CompanyId": gsid})
    if measures:
        health.set_measures(state, gsid, [{"name": k, "score": v} for k, v in measures.items()])
    if plan:
        cockpit.create_plan(state, gsid, plan)
    company = state.companies[gsid]
    return {"company": {"Gsid": gsid, "ExternalId": company.get("ExternalId"), "Name": company["Name"]},
            "persons": len(persons), "plan": bool(plan)}


def _company_id(state: Any, ref: Any) -> str:
    if isinstance(ref, str) and ref in state.companies:
        return ref
    if isinstance(ref, str) and ref in state.company_by_ext:
        return state.company_by_ext[ref]
    raise ValueError(f"no company with Gsid or ExternalId {ref!r}")


def action(tenant: Any, body: dict[str, Any]) -> dict[str, Any]:
    state = tenant.state
    kind = body.get("action")
    if kind == "set_measure":
        gsid = _company_id(state, body.get("company"))
        update = {"name": body.get("measure"), "score": body.get("score"), "comments": body.get("comments")}
        return _user_error(lambda: health.set_measures(state, gsid, [update]))
    if kind == "complete_milestone":
        return _user_error(lambda: cockpit.complete_milestone(state, body.get("milestone")))
    if kind == "close_cta":
        return _user_error(lambda: cockpit.close_cta(state, body.get("cta"), body.get("status") or "Closed Success",
                                                     body.get("reason")))
    if kind == "change_stage":
        gsid = _company_id(state, body.get("company"))
        _user_error(lambda: state.update_company(gsid, {"Stage": body.get("stage")}))
        return dict(state.companies[gsid])
    raise ValueError(f"unknown action {kind!r}; actions: set_measure, complete_milestone, close_cta, change_stage")
