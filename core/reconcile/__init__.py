"""Reconciliation: for each canonical account, what each system of record says (existence, key fields,
amounts, statuses) -> findings classed missing / orphan / conflict, with the owning system; JSON output.

    from core.reconcile import run
    report = await run(crosswalk, connections)      # -> Report (report.to_json(), report.summary)

model.py (Finding, Report), compare.py (pure comparison), gather.py (reads through the connectors),
service.py (run). Served by the core API as GET / POST /reconcile.
"""

from core.reconcile.compare import Claim, OneOf, Snapshot, compare_account, orphan_findings
from core.reconcile.model import KINDS, Finding, FindingKind, ReadError, ReconcileRequest, Report, Summary
from core.reconcile.service import run

__all__ = [
    "KINDS",
    "Claim",
    "Finding",
    "FindingKind",
    "OneOf",
    "ReadError",
    "ReconcileRequest",
    "Report",
    "Snapshot",
    "Summary",
    "compare_account",
    "orphan_findings",
    "run",
]
