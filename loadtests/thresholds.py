"""Thresholds (a TOML file) and how a run's summary is held to them."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.toml")


class ThresholdsError(ValueError):
    """A thresholds file that cannot be used (missing, not TOML, unknown key, not a number)."""


@dataclass(frozen=True)
class Check:
    key: str
    describe: str  # what is measured, for the breach message

    def measured(self, summary: dict[str, Any]) -> list[tuple[str, float]]:
        """(label, value) pairs to hold to the limit."""
        if self.key == "max_p95_ms":
            return [(f"p95 of {e['name']}", float(e["p95_ms"])) for e in summary["endpoints"]
                    if not e.get("control") and e.get("p95_ms") is not None and e["requests"] > 0]
        value = summary["figures"].get(self.key.removeprefix("max_"))
        return [(self.describe, math.nan if value is None else float(value))]


CHECKS: dict[str, Check] = {c.key: c for c in (
    Check("max_failure_ratio", "failure ratio"),
    Check("max_p95_ms", "p95"),
    Check("max_duplicates", "duplicates"),
    Check("max_lost", "lost events"),
    Check("max_dlq", "new DLQ entries"),
    Check("max_core_429s", "429s answered to the core"),
    Check("max_core_429_ratio", "share of the core's calls answered 429"),
    Check("max_load_429_ratio", "share of load requests answered 429"),
    Check("max_reconcile_failures", "reconcile calls the core failed"),
    Check("max_reconcile_findings", "reconcile findings"),
)}


def load_thresholds(path: Path | None = None) -> dict[str, float]:
    path = path or DEFAULT_THRESHOLDS
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ThresholdsError(f"thresholds file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdsError(f"{path}: not valid TOML ({exc})") from exc
    table = raw.get("thresholds")
    if not isinstance(table, dict):
        raise ThresholdsError(f"{path}: no [thresholds] table")
    out: dict[str, float] = {}
    for key, value in table.items():
        if key not in CHECKS:
            raise ThresholdsError(f"{path}: unknown threshold {key!r}; known: {', '.join(CHECKS)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ThresholdsError(f"{path}: {key} must be a number, not {value!r}")
        out[key] = float(value)
    return out


def breaches(summary: dict[str, Any], thresholds: dict[str, float]) -> list[str]:
    """One line per breached threshold (empty: the run passes)."""
    out = []
    for key, limit in thresholds.items():
        for label, value in CHECKS[key].measured(summary):
            if math.isnan(value):
                out.append(f"threshold {key}: {label} was not measured in this summary")
            elif value > limit:
                out.append(f"threshold breached: {label} = {_fmt(value)} > {key} = {_fmt(limit)}")
    return out


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"
