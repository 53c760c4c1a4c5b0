"""Contract tests: Pact's FFI must never phone home, whatever the shell exported."""

from __future__ import annotations

import os

os.environ["PACT_DO_NOT_TRACK"] = "true"
