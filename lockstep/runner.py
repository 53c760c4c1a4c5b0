"""Process wiring: serve one mock in the foreground, or the whole sandbox in one process (`lockstep up`)."""

from __future__ import annotations

import signal
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType

import httpx

from lockstep.demo import DEMO_TENANTS, play_crm_demo, play_demo, seed_demo
from lockstep.systems import SystemEntry
from mocks.crm.tls import tls_files
from mocks.kernel.app import create_mock_app
from mocks.kernel.serving import ServerThread


def serve_one(entry: SystemEntry, *, host: str, port: int, admin_token: str, state_file: Path | None,
              seed: int, demo: bool) -> int:
    """One mock on its own port: the command each docker-compose service runs."""
    return up([replace(entry, port=port)], host=host, admin_token=admin_token, demo=demo,
              state_files={entry.name: state_file} if state_file else None, seed=seed)


def up(entries: list[SystemEntry], *, host: str, admin_token: str, demo: bool,
       state_files: dict[str, Path] | None = None, seed: int = 0, tls_dir: Path | None = None) -> int:
    servers: list[tuple[SystemEntry, ServerThread]] = []
    ca_bundle: str | None = None
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
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"could not start the sandbox: {exc} (is another `lockstep up` running?)")
        for _, server in servers:
            server.stop()
        return 1

    print("\nLockstep sandbox is up:")
    for entry, server in servers:
        print(f"  {entry.name:<8} {server.url:<26} credential: {entry.credential_hint}")
        print(f"  {'':<8} docs {server.url}/docs   control {server.url}/_sandbox/health")
    print(f"\n  admin token (Lockstep-Admin-Token header): {admin_token}")
    if ca_bundle:
        print(f"  CRM serves https; trust its local CA: REQUESTS_CA_BUNDLE={ca_bundle}")
    if demo:
        urls = {entry.name: server.url for entry, server in servers}
        try:
            seed_demo(urls, admin_token, verify=ca_bundle or True)
            for name, key in DEMO_TENANTS.items():
                if name in urls:
                    print(f"  demo tenant on {name}: {key}")
            play_demo(urls, admin_token)
            play_crm_demo(urls, admin_token, verify=ca_bundle or True)
        except httpx.HTTPError as exc:
            # Keep the sandbox up so the failure can be inspected through the journal.
            detail = exc.response.text[:500] if isinstance(exc, httpx.HTTPStatusError) else ""
            print(f"\nthe demo story stopped: {exc} {detail}")
    print("\nPress Ctrl-C to stop.", flush=True)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stop.wait()
    print("\nstopping...", flush=True)
    for _, server in servers:
        server.stop()
    print("stopped.")
    return 0
