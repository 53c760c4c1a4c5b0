"""Process wiring: serve one mock in the foreground, or the whole sandbox in one process (`lockstep up`)."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from lockstep.demo import DEMO_TENANTS, play_crm_demo, play_demo, seed_demo
from lockstep.story import StoryError, play_story
from lockstep.systems import SYSTEMS, SystemEntry
from mocks.crm.tls import tls_files
from mocks.kernel.app import create_mock_app
from mocks.kernel.serving import ServerThread


def serve_one(entry: SystemEntry, *, host: str, port: int, admin_token: str, state_file: Path | None,
              seed: int, demo: bool) -> int:
    """One mock on its own port: the command each docker-compose service runs."""
    return up([replace(entry, port=port)], host=host, admin_token=admin_token, demo=demo,
              state_files={entry.name: state_file} if state_file else None, seed=seed)


@dataclass(frozen=True)
class CoreOptions:
    """The integration core beside the mocks: its port, where its SQLite files go (None: a temp dir removed at
    stop; LOCKSTEP_CORE_DATA_DIR / LOCKSTEP_CORE_DATABASE_URL still apply) and every mock's port (the core
    is wired to all four, running or not)."""

    port: int
    mock_ports: dict[str, int]
    data_dir: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # extra CoreSettings fields (e.g. client_limits)



def webhook_in_flight() -> int:
    """Deliveries in flight at once from each mock to the core (LOCKSTEP_WEBHOOK_MAX_IN_FLIGHT, default 1:
    in order, one at a time, reproducible; the vendors themselves deliver concurrently, and the burst bench
    uses 8)."""
    raw = os.environ.get("LOCKSTEP_WEBHOOK_MAX_IN_FLIGHT", "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise SystemExit(f"LOCKSTEP_WEBHOOK_MAX_IN_FLIGHT must be a whole number 1..64, not {raw!r}")
    return int(raw)

class CoreServer:
    """The core as a local server in its own process (`python -m core`: one core each for the mocks and the
    core, so neither waits on the other's GIL), wired by `LOCKSTEP_CORE_*` settings to the mocks' loopback
    URLs and demo tenants; then its webhook subscriptions on the mocks."""

    def __init__(self, options: CoreOptions, *, host: str, ca_bundle: str | None,
                 startup_timeout: float = 90.0) -> None:
        from core.settings import CoreSettings

        self.options = options
        self.host = host
        self.ca_bundle = ca_bundle
        self.startup_timeout = startup_timeout
        self._tmp: Path | None = None
        overrides: dict[str, Any] = {"host": host, "port": options.port, "log_level": "warning"}
        if options.data_dir is not None:
            overrides["data_dir"] = options.data_dir
        elif "LOCKSTEP_CORE_DATA_DIR" not in os.environ and "LOCKSTEP_CORE_DATABASE_URL" not in os.environ:
            self._tmp = Path(tempfile.mkdtemp(prefix="lockstep-core-"))
            overrides["data_dir"] = self._tmp
        for name, entry in SYSTEMS.items():
            overrides[f"{name}_url"] = self.mock_url(name)
            overrides[f"{name}_key"] = entry.demo_key
            overrides[f"{name}_version"] = entry.build().versions.default
        if ca_bundle:
            overrides["ca_bundle"] = ca_bundle
        overrides.update(options.settings)
        self.settings = CoreSettings(**overrides)
        self.env = {**os.environ, **{f"LOCKSTEP_CORE_{k.upper()}": str(v) for k, v in overrides.items()}}
        self.process: subprocess.Popen[bytes] | None = None

    def mock_url(self, system: str) -> str:
        scheme = "https" if system == "crm" and self.ca_bundle else "http"
        return f"{scheme}://{self.host}:{self.options.mock_ports[system]}"

    def start(self) -> CoreServer:
        self.process = subprocess.Popen([sys.executable, "-m", "core"], env=self.env)
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the core exited with {self.process.returncode} while starting")
                try:
                    if client.get(f"{self.url}/health").json().get("status") == "ok":
                        return self
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"the core did not answer {self.url}/health in {self.startup_timeout} s")
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.options.port}"

    def subscribe(self, urls: dict[str, str], admin_token: str, verify: str | bool = True) -> list[str]:
        """Make sure each running mock has its demo tenant, with a webhook endpoint pointing at the core."""
        return subscribe_core(self.url, urls, admin_token, settings=self.settings, verify=verify)

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)  # uvicorn shuts down; the lifespan destroys the runtime
                try:
                    self.process.wait(60)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)


def subscribe_core(core_url: str, urls: dict[str, str], admin_token: str, *, settings: Any,
                   tenants: dict[str, str] | None = None, verify: str | bool = True) -> list[str]:
    """Make sure each mock in `urls` has the tenant (default: its demo tenant), with a webhook endpoint
    `core_url/webhooks/<system>` (the core as the mock reaches it) for the event types the core's flows use."""
    from core import flows
    from core.intake.router import subscribed_events

    flows.load_all()
    done = []
    tls = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    with httpx.Client(timeout=30, verify=tls, headers={"Lockstep-Admin-Token": admin_token}) as client:
        for system, base in urls.items():
            key = (tenants or DEMO_TENANTS)[system]
            made = client.post(f"{base}/_sandbox/tenants", json={"key": key})
            if made.status_code != 409:
                made.raise_for_status()
            hook = f"{core_url}/webhooks/{system}"
            endpoints = client.get(f"{base}/_sandbox/tenants/{key}/webhooks/endpoints").raise_for_status()
            if not any(e["url"] == hook for e in endpoints.json()):
                client.post(f"{base}/_sandbox/tenants/{key}/webhooks/endpoints", json={
                    "url": hook, "secret": settings.webhook_secrets(system)[0],
                    "events": subscribed_events(system),
                    "max_in_flight": webhook_in_flight()}).raise_for_status()
            done.append(system)
    return done


def up(entries: list[SystemEntry], *, host: str, admin_token: str, demo: bool,
       state_files: dict[str, Path] | None = None, seed: int = 0, tls_dir: Path | None = None,
       core: CoreOptions | None = None, pace: float = 0.0) -> int:
    servers: list[tuple[SystemEntry, ServerThread]] = []
    ca_bundle: str | None = None
    core_server: CoreServer | None = None
    try:
        for entry in entries:
            state_file = (state_files or {}).get(entry.name)
            app = create_mock_app(entry.build(), admin_token=admin_token, state_file=state_file, seed=seed)
            tls: dict[str, str] = {}
            # simple-salesforce only builds https:// URLs, so the CRM can serve TLS from a local CA.
            if tls_dir is not None and entry.name == "crm":
                certfile, keyfile, ca_bundle = tls_files(tls_dir)
                tls = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
            servers.append((entry, ServerThread(app, host=host, port=entry.port, **tls).start()))
        if core is not None:
            if tls_dir is not None and ca_bundle is None:
                ca_bundle = tls_files(tls_dir)[2]
            # The dashboard's sandbox console reaches the mocks' control APIs with the same admin token.
            core = replace(core, settings={"sandbox_admin_token": admin_token, **core.settings})
            core_server = CoreServer(core, host=host, ca_bundle=ca_bundle).start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"could not start the sandbox: {exc} (is another `lockstep up` running?)")
        for _, server in servers:
            server.stop()
        return 1

    try:
        _announce_and_play(servers, core_server, admin_token=admin_token, demo=demo, ca_bundle=ca_bundle, pace=pace)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        stop.wait()
        print("\nstopping...", flush=True)
    finally:
        if core_server is not None:
            core_server.stop()  # first: no flow should be calling a mock that is going away
        for _, server in servers:
            server.stop()
    print("stopped.")
    return 0


def _announce_and_play(servers: list[tuple[SystemEntry, ServerThread]], core_server: CoreServer | None, *,
                       admin_token: str, demo: bool, ca_bundle: str | None, pace: float = 0.0) -> None:
    print("\nLockstep sandbox is up:")
    for entry, server in servers:
        print(f"  {entry.name:<8} {server.url:<26} credential: {entry.credential_hint}")
        print(f"  {'':<8} docs {server.url}/docs   control {server.url}/_sandbox/health")
    if core_server is not None:
        url = core_server.url
        print(f"  {'core':<8} {url:<26} backend: {core_server.settings.backend}")
        print(f"  {'':<8} docs {url}/docs   flows {url}/flows   dlq {url}/dlq")
        print(f"\n  dashboard: {url}/ui")
    print(f"\n  admin token (Lockstep-Admin-Token header): {admin_token}")
    if ca_bundle:
        print(f"  CRM serves https; trust its local CA: REQUESTS_CA_BUNDLE={ca_bundle}")
    urls = {entry.name: server.url for entry, server in servers}
    try:
        if demo:
            seed_demo(urls, admin_token, verify=ca_bundle or True)
            for name, key in DEMO_TENANTS.items():
                if name in urls:
                    print(f"  demo tenant on {name}: {key}")
        if core_server is not None:
            # After seeding (a reseed resets the tenant; endpoints survive a reset), before the story plays.
            subscribed = core_server.subscribe(urls, admin_token, verify=ca_bundle or True)
            if subscribed:
                print(f"  the core is subscribed to the webhooks of: {', '.join(subscribed)} "
                      f"(tenants {', '.join(DEMO_TENANTS[s] for s in subscribed)})")
        if demo and core_server is not None and set(SYSTEMS) <= urls.keys():
            # The story through the core (lockstep/story.py), paced for the dashboard.
            play_story({**urls, "core": core_server.url}, admin_token, pace=pace, verify=ca_bundle or True)
        elif demo:  # mocks only: their own stories
            play_demo(urls, admin_token)
            play_crm_demo(urls, admin_token, verify=ca_bundle or True)
    except httpx.HTTPError as exc:
        # Keep the sandbox up so the failure can be inspected through the journal.
        detail = exc.response.text[:500] if isinstance(exc, httpx.HTTPStatusError) else ""
        print(f"\nthe demo story stopped: {exc} {detail}")
    except StoryError as exc:
        print(f"\nthe demo story stopped: {exc}")
    print("\nPress Ctrl-C to stop.", flush=True)
