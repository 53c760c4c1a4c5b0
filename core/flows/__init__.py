"""The core's durable flows. Each module registers its flow(s) with `core.intake.router.register_flow` at
import; importing this package imports them all, which the runtime does before DBOS launches so that crash
recovery finds every workflow.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> list[str]:
    """Import every flow module of this package; returns their names."""
    names = []
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
            names.append(module.name)
    return names
