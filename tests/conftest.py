"""Fixtures shared across test packages."""

from tests.live import live, reports_dir

__all__ = ["live", "reports_dir"]
