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
    demo_key: str  # the credential of the seeded demo tenant
    vendor: str

    def build(self) -> MockSystem:
        module, func = self.factory.split(":")
        return getattr(importlib.import_module(module), func)()


# Ports from ARCHITECTURE.md: core 8100, CRM 8101, ERP 8102, billing 8103, CS 8104.
# The integration core is not a mock (it is not in SYSTEMS); `lockstep up` serves it on CORE_PORT.
CORE_NAME = "core"
CORE_PORT = 8100
SYSTEMS: dict[str, SystemEntry] = {
    "crm": SystemEntry("crm", 8101, "mocks.crm.system:crm_system", "Authorization: Bearer <any token>",
                       "00Dlockstepdemo", "Salesforce REST"),
    "erp": SystemEntry("erp", 8102, "mocks.erp.system:erp_system", "Authorization: Bearer <any token>",
                       "nsdemo", "NetSuite REST"),
    "billing": SystemEntry("billing", 8103, "mocks.billing.system:billing_system",
                           "Authorization: Bearer sk_test_<anything>", "sk_test_lockstepdemo", "Stripe"),
    "cs": SystemEntry("cs", 8104, "mocks.cs.system:cs_system", "accesskey: <8+ chars>", "gs-lockstep-demo",
                      "Gainsight"),
}
