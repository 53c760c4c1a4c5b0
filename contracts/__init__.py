"""Pact contracts between the core and the mocks, OpenAPI snapshots and drift reports (see README "Contracts")."""

import os

# Pact's FFI reports usage unless told not to: set before any submodule loads it.
os.environ.setdefault("PACT_DO_NOT_TRACK", "true")
