"""Lockstep: a sandbox for customer-lifecycle integrations (the CLI face)."""

__version__ = "0.1.0"
