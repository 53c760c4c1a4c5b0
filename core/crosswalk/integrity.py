"""The standing invariant "every crosswalk entry resolves", checked over the whole store.

Foreign keys already stop most breakage; this catches what they can't (alias cycles, entity mix-ups) and
what bypassed them (hand edits, partial restores, a SQLite connection without `PRAGMA foreign_keys`).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from core.crosswalk.db import Tables
from core.crosswalk.records import Problem


def check_integrity(conn: Connection, t: Tables) -> list[Problem]:
    entity_of = dict(conn.execute(select(t.canonical.c.canonical_id, t.canonical.c.entity)).all())
    edges = {row.loser: row.winner for row in conn.execute(select(t.aliases.c.loser, t.aliases.c.winner))}
    problems: list[Problem] = []

    for loser, winner in sorted(edges.items()):
        missing = [side for side, cid in (("loser", loser), ("winner", winner)) if cid not in entity_of]
        if missing:
            detail = f"alias {loser} -> {winner}: unknown {' and '.join(missing)}"
            problems.append(Problem("dangling_alias", loser, detail))
        elif entity_of[loser] != entity_of[winner]:
            problems.append(
                Problem(
                    "entity_mismatch", loser, f"alias {loser} ({entity_of[loser]}) -> {winner} ({entity_of[winner]})"
                )
            )

    reported: set[str] = set()
    for start in sorted(edges):
        path, current = [start], edges[start]
        while current in edges and current not in path:
            path.append(current)
            current = edges[current]
        if current in path and current not in reported:
            cycle = path[path.index(current) :]
            reported.update(cycle)
            problems.append(Problem("alias_cycle", min(cycle), " -> ".join([*cycle, cycle[0]])))

    rows = conn.execute(select(t.refs.c.canonical_id, t.refs.c.entity, t.refs.c.system, t.refs.c.native_id))
    for cid, entity, system, native_id in rows:
        if cid not in entity_of:
            problems.append(Problem("dangling_ref", cid, f"{system} {entity} {native_id!r} -> unknown {cid}"))
        elif entity_of[cid] != entity:
            problems.append(
                Problem("entity_mismatch", cid, f"{system} {entity} {native_id!r} linked to a {entity_of[cid]} id")
            )
    return problems
