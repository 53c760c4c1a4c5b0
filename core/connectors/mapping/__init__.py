"""Vendor <-> canonical mappings, one module per system, each keyed by an explicit API version."""
