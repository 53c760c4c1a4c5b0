"""The ERP's API versions as data: two renderings of one internal model.

NetSuite's REST path stays `/record/v1`; what drifts between account releases is the representation.
The mock models two releases, picked per request with the `X-NetSuite-Version` header (otherwise the
tenant's default, switchable through the control API):

- `2024.2` (default): list/select fields are plain strings: `"status": "Pending Fulfillment"`,
  `"creditHoldOverride": "AUTO"`.
- `2025.1`: the same fields are NetSuite select references `{"id": ..., "refName": ...}`, like other
  references (`subsidiary`, `entity`): `"status": {"id": "B", "refName": "Pending Fulfillment"}`,
  `"creditHoldOverride": {"id": "AUTO", "refName": "Auto"}`. On input, `creditHoldOverride` must be
  such an object (`{"id": "ON"}`); a plain string is refused with 400 INVALID_VALUE.
"""

from __future__ import annotations

from typing import Any

from mocks.kernel.versions import ApiVersion, TypeChange, VersionRegistry

__all__ = ["DEFAULT", "V2024_2", "V2025_1", "VERSION_HEADER", "erp_versions"]

V2024_2 = "2024.2"
V2025_1 = "2025.1"
DEFAULT = V2024_2
VERSION_HEADER = "x-netsuite-version"

SCHEMA_NAMES = {
    "customer": "Customer",
    "salesOrder": "SalesOrder",
    "invoice": "Invoice",
    "creditMemo": "CreditMemo",
    "item": "Item",
}

# Status ids as NetSuite's SuiteQL reports them (transaction.status), per record type.
STATUS_IDS: dict[str, dict[str, str]] = {
    "salesOrder": {"Pending Approval": "A", "Pending Fulfillment": "B", "Cancelled": "C", "Billed": "G",
                   "Closed": "H"},
    "invoice": {"Open": "A", "Paid In Full": "B", "Voided": "V"},
    "creditMemo": {"Open": "A", "Fully Applied": "B"},
}
CREDIT_HOLD_NAMES = {"AUTO": "Auto", "ON": "On", "OFF": "Off"}

SELECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "refName": {"type": "string"}},
    "required": ["id"],
}


def _status_change(record_type: str) -> TypeChange:
    ids = STATUS_IDS[record_type]
    names = {v: k for k, v in ids.items()}

    def to_wire(value: Any) -> Any:
        return {"id": ids.get(value, value), "refName": value}

    def from_wire(value: Any) -> Any:
        # Status is read-only (ignored on input); still refuse what is not a select reference.
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise ValueError(value)
        return names.get(value["id"], value["id"])

    return TypeChange(record_type, "status", to_wire, from_wire, SELECT_SCHEMA)


def _credit_hold_to_wire(value: Any) -> Any:
    return {"id": value, "refName": CREDIT_HOLD_NAMES.get(value, value)}


def _credit_hold_from_wire(value: Any) -> Any:
    if not isinstance(value, dict) or set(value) - {"id", "refName"} or value.get("id") not in CREDIT_HOLD_NAMES:
        raise ValueError(value)
    return value["id"]


def erp_versions() -> VersionRegistry:
    v2024 = ApiVersion(
        V2024_2,
        released="2024-08-01",
        description="Select fields (status, creditHoldOverride) as plain strings.",
    )
    v2025 = ApiVersion(
        V2025_1,
        released="2025-02-01",
        description="Select fields as {id, refName} references, on output and input.",
        changes=[
            _status_change("salesOrder"),
            _status_change("invoice"),
            _status_change("creditMemo"),
            TypeChange("customer", "creditHoldOverride", _credit_hold_to_wire, _credit_hold_from_wire,
                       SELECT_SCHEMA),
        ],
    )
    return VersionRegistry("erp", [v2024, v2025], default=DEFAULT, schema_names=SCHEMA_NAMES,
                           type_of=lambda data: None)
