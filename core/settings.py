"""The core's settings: one typed object, read from `LOCKSTEP_CORE_*` environment variables (or passed in).

Storage: by default everything lives in SQLite files under `data_dir` (the DBOS system database, the core's
own tables, the crosswalk: one file each, so their writers don't queue on one lock). Setting `database_url`
to a PostgreSQL URL moves all three into that database, in their own schemas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SYSTEM_NAMES: tuple[str, ...] = ("crm", "erp", "billing", "cs")
_SCHEMA = r"^[a-z_][a-z0-9_]{0,62}$"


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKSTEP_CORE_", extra="ignore", frozen=True)

    # -- storage ----------------------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL for DBOS + core tables + crosswalk; unset -> SQLite files in data_dir"
    )
    data_dir: Path = Field(default=Path(".lockstep/core"), description="where the SQLite files live")
    db_schema: str = Field(default="lockstep_core", pattern=_SCHEMA, description="PostgreSQL schema of core tables")
    dbos_schema: str = Field(default="dbos", pattern=_SCHEMA, description="PostgreSQL schema of DBOS tables")
    crosswalk_schema: str = Field(default="lockstep_crosswalk", pattern=_SCHEMA)
    sqlite_tuned: bool = Field(default=True, description="SQLite WAL + synchronous=NORMAL (False: SQLite defaults)")

    # -- DBOS -------------------------------------------------------------------------------------------
    app_name: str = "lockstep-core"
    executor_id: str | None = None
    # Fixed, so a restarted core recovers (and replays) workflows of the previous process even after a code
    # edit; DBOS would otherwise derive it from a hash of the workflow code. Bump it on breaking flow changes.
    app_version: str = "lockstep-core-2"
    flow_queue: str = "lockstep-flows"
    flow_concurrency: int = Field(default=32, ge=1, description="flows running at once per core process")
    # Core processes behind one port, sharing one store (see core/workers.py): each is a full core (intake,
    # flows from the shared queue, API) with its own GIL, executor id and a 1/N share of each vendor's
    # client-side limits. 1: this process serves (no supervisor).
    workers: int = Field(default=1, ge=1, le=16, description="core processes serving one port and one store")
    # Set by the supervisor for its workers (not by users): the worker's number and the listening socket.
    worker_index: int | None = Field(default=None, ge=0)
    listen_fd: int | None = Field(default=None, ge=0)
    # Threads DBOS runs its blocking database calls on (each async step's checkpoint, each workflow's
    # outcome): a few suffice, since SQLite serializes writes anyway, and each extra thread only adds GIL
    # hand-offs (DBOS's default is unbounded: one thread per flow in flight).
    dbos_threads: int = Field(default=8, ge=1, le=256)
    # How often each core process asks the store for queued flows: at most this much is added to a flow's
    # start, and an idle core pays for every poll (1 worker, idle, here: 24% of a CPU at 0.02 s, 13% at
    # 0.05 s). A poll takes every flow that fits, so a burst's throughput does not depend on it.
    queue_polling_interval_s: float = Field(default=0.05, gt=0, le=5)
    # DBOS's listener for its notifications (send / recv, workflow events): no flow uses them, so it looks
    # rarely; a flow that comes to wait on one would want this low.
    dbos_notification_polling_s: float = Field(default=1.0, ge=0.01, le=60)
    dbos_log_level: str = "WARNING"

    # -- intake -----------------------------------------------------------------------------------------
    # Endpoint secrets, one per system; several comma-separated ones are all accepted (secret rotation).
    crm_webhook_secret: str = "whsec_lockstep_crm"
    erp_webhook_secret: str = "whsec_lockstep_erp"
    billing_webhook_secret: str = "whsec_lockstep_billing"
    cs_webhook_secret: str = "whsec_lockstep_cs"
    signature_tolerance_s: int = Field(default=300, ge=1)
    max_webhook_bytes: int = Field(default=1_000_000, ge=1024)
    intake_batch: int = Field(default=64, ge=1, le=1000,
                              description="most webhooks processed in one batch (two transactions per batch)")
    # Events of one aggregate arriving while its state-based flow is still queued join that flow (see
    # Router.start): in a burst, an invoice's `open` and `paid` events become one flow. Off by default, so
    # every business key gets its own flow and the set of flows does not depend on timing (reproducible
    # scenario reports); the month-end burst bench turns it on.
    coalesce_events: bool = False

    # -- the systems of record (what `python -m core` / `lockstep serve core` connects to) ----------------
    # Defaults: a local `lockstep up` and its demo tenants. Versions: the API version each connector pins
    # (the vendor account's default version there).
    crm_url: str = "http://127.0.0.1:8101"
    crm_key: str = "00Dlockstepdemo"
    crm_version: str = "60.0"
    erp_url: str = "http://127.0.0.1:8102"
    erp_key: str = "nsdemo"
    erp_version: str = "2024.2"
    billing_url: str = "http://127.0.0.1:8103"
    billing_key: str = "sk_test_lockstepdemo"
    billing_version: str = "2023-08-16"
    cs_url: str = "http://127.0.0.1:8104"
    cs_key: str = "gs-lockstep-demo"
    cs_version: str = "v1"
    ca_bundle: Path | None = Field(default=None, description="CA file to trust for https system URLs")
    client_limits: Literal["vendor", "off"] = Field(
        default="vendor", description="vendor: keep to each vendor's published limits client-side; off: no "
                                      "client-side throttle (measuring the core's own capacity)")

    # -- the dashboard (/ui) ---------------------------------------------------------------------------
    # The mocks' admin token: with it the dashboard drives the sandbox (clock, faults, API versions, user
    # actions) through each system's /_sandbox control API, on the tenant named by that system's key.
    # Unset (real vendors): the dashboard only observes.
    sandbox_admin_token: str | None = Field(default=None, description="the mocks' Lockstep-Admin-Token")
    ui_poll_interval_s: float = Field(default=0.25, gt=0, le=5, description="how often the live feed looks")

    # -- serving ----------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("database_url must be a PostgreSQL URL (leave it unset for SQLite)")
        return value

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.database_url is None else "postgresql"

    def webhook_secrets(self, system: str) -> list[str]:
        """The accepted secrets for `system` (KeyError for a system the core doesn't know)."""
        if system not in SYSTEM_NAMES:
            raise KeyError(system)
        raw: str = getattr(self, f"{system}_webhook_secret")
        return [s.strip() for s in raw.split(",") if s.strip()]

    @property
    def worker_executor_id(self) -> str | None:
        """The DBOS executor id of this process: the configured one (None: DBOS's default, "local") for a
        single core and for worker 0, `<id>-w<i>` for worker i. Stable per worker, because DBOS recovers at
        launch the unfinished flows of its own executor id: a restarted worker resumes what it left."""
        if not self.worker_index:
            return self.executor_id
        return f"{self.executor_id or 'local'}-w{self.worker_index}"

    # -- derived locations -----------------------------------------------------------------------------

    def sqlite_path(self, name: str) -> Path:
        return (self.data_dir / f"{name}.sqlite").expanduser().resolve()

    @property
    def postgres_url(self) -> str:
        """database_url with the psycopg 3 driver spelled out (SQLAlchemy's default would be psycopg2)."""
        assert self.database_url is not None
        return "postgresql+psycopg://" + self.database_url.split("://", 1)[1]

    @property
    def dbos_url(self) -> str:
        if self.database_url is None:
            return f"sqlite:///{self.sqlite_path('dbos')}"
        return "postgresql://" + self.database_url.split("://", 1)[1]

    @property
    def core_db_url(self) -> str:
        return f"sqlite:///{self.sqlite_path('core')}" if self.database_url is None else self.postgres_url

    @property
    def crosswalk_url(self) -> str:
        return str(self.sqlite_path("crosswalk")) if self.database_url is None else self.database_url
