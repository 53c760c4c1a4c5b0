"""Connectors: one async httpx client per vendor, with version-pinned mappings to the canonical model.

    BillingClient (Stripe API)   CrmClient (Salesforce REST)   ErpClient (NetSuite REST)   CsClient (Gainsight)

Each takes `base_url`, its credential, an explicit `api_version` pin, and optionally `transport` (an
`httpx.ASGITransport` in tests), `retry` (RetryPolicy), `limiter` (ClientLimiter, shareable), `timeout`,
`headers_provider` (correlation / traceparent headers per call) and `send_version`. Errors: see `errors`.
The core reaches vendors only through these clients; nothing here imports the mocks.
"""

from core.connectors.base import BaseClient, ClientLimiter, HeadersProvider, Limits, RetryPolicy
from core.connectors.billing import BillingClient, SubscriptionItemInput, derive_idempotency_key
from core.connectors.crm import CrmClient, LimitUsage, UpsertResult
from core.connectors.cs import CsClient, WriteResult
from core.connectors.erp import ErpClient, eid
from core.connectors.errors import (
    ConflictError,
    ConnectorError,
    NotFoundError,
    RateLimitedError,
    SchemaDriftError,
    VendorError,
)

__all__ = [
    "BaseClient",
    "BillingClient",
    "ClientLimiter",
    "ConflictError",
    "ConnectorError",
    "CrmClient",
    "CsClient",
    "ErpClient",
    "HeadersProvider",
    "LimitUsage",
    "Limits",
    "NotFoundError",
    "RateLimitedError",
    "RetryPolicy",
    "SchemaDriftError",
    "SubscriptionItemInput",
    "UpsertResult",
    "VendorError",
    "WriteResult",
    "derive_idempotency_key",
    "eid",
]
