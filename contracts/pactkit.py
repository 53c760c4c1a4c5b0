"""What every contract module shares: names, where pact files live, and matcher helpers.

Pact files are laid out per provider and API version, so one consumer can hold a contract with each
version of a vendor API it has a mapping for::

    contracts/pacts/<system>/<version>/lockstep-core-<system>.json         HTTP (Synchronous/HTTP)
    contracts/pacts/<system>/events/lockstep-core-<system>-events.json     webhooks (Asynchronous/Messages)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pact import generate
from pact.match.matcher import AbstractMatcher, GenericMatcher

__all__ = [
    "CONSUMER",
    "PACT_DIR",
    "SYSTEMS",
    "TOKENS",
    "VERSIONS",
    "event_pact_path",
    "from_state",
    "http_pact_path",
    "provider_name",
]

CONSUMER = "lockstep-core"
SYSTEMS = ("crm", "erp", "billing", "cs")
# The API versions the core has a mapping for (core/connectors/mapping/*.VERSIONS), oldest first.
VERSIONS: dict[str, tuple[str, ...]] = {
    "crm": ("59.0", "60.0"),
    "erp": ("2024.2", "2025.1"),
    "billing": ("2023-08-16", "2026-10-28.endive"),
    "cs": ("v1", "v2"),
}
# The credentials the consumer tests present; a provider verification serves the tenant they name.
TOKENS = {"crm": "00Dcontracts", "erp": "contracts-erp", "billing": "sk_test_contracts", "cs": "gs-contracts-key"}
PACT_DIR = Path(__file__).resolve().parent / "pacts"


def provider_name(system: str) -> str:
    return f"lockstep-mock-{system}"


def event_provider_name(system: str) -> str:
    return f"lockstep-mock-{system}-events"


def http_pact_path(root: Path, system: str, version: str) -> Path:
    return root / system / version / f"{CONSUMER}-{provider_name(system)}.json"


def event_pact_path(root: Path, system: str) -> Path:
    return root / system / "events" / f"{CONSUMER}-{event_provider_name(system)}.json"


def from_state(example: str, expression: str, regex: str = r".+") -> AbstractMatcher[str]:
    """A value the provider state decides (a generated record id): the consumer test uses `example`, the
    provider verification substitutes `expression` (e.g. `/v1/customers/${customerId}`) with the values its
    state handler returned, and the provider's value must match `regex`."""
    return GenericMatcher("regex", example, generator=generate.provider_state(expression), regex=regex)


Json = dict[str, Any]
