"""The mock systems Lockstep knows, their default ports and how to build each one."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from mocks.kernel.system import MockSystem


@dataclass(frozen=True)
class SystemEntry:
    name: str
    port: int
    factory: str  # "module:function" returning a MockSystem
    credential_hint: str

    def build(self) -> MockSystem:
        module, func = self.factory.split(":")
        return getattr(importlib.import_module(module), func)()


# Ports from ARCHITECTURE.md: core 8100, CRM 8101, ERP 8102, billing 8103, CS 8104.
SYSTEMS: dict[str, SystemEntry] = {
    "billing": SystemEntry("billing", 8103, "mocks.billing.system:billing_system",
                           "Authorization: Bearer sk_test_<anything>"),
}
