"""A local certificate authority and a server certificate for 127.0.0.1 / localhost (trustme), so the CRM
mock can serve https and clients that build https:// URLs (simple-salesforce) work unchanged.

    certfile, keyfile, ca_bundle = tls_files(Path(".lockstep/tls"))
    ServerThread(app, ssl_certfile=certfile, ssl_keyfile=keyfile)   # clients trust ca_bundle
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["HOSTS", "tls_files"]

HOSTS = ("127.0.0.1", "localhost", "::1")
CERT, KEY, CA = "server.pem", "server.key", "ca.pem"


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def tls_files(directory: str | os.PathLike[str]) -> tuple[str, str, str]:
    """(certfile, keyfile, ca_bundle) under `directory`, made once and reused while all three exist."""
    folder = Path(directory)
    paths = (folder / CERT, folder / KEY, folder / CA)
    if not all(p.exists() for p in paths):
        import trustme  # a dev/test dependency: imported only when certificates are needed

        folder.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="Lockstep sandbox CA")
        server = ca.issue_cert(*HOSTS)
        # The key first and the CA last: a reader that sees the CA file sees a complete set.
        _write(paths[1], server.private_key_pem.bytes())
        os.chmod(paths[1], 0o600)
        _write(paths[0], b"".join(blob.bytes() for blob in server.cert_chain_pems))
        _write(paths[2], ca.cert_pem.bytes())
    return str(paths[0]), str(paths[1]), str(paths[2])
