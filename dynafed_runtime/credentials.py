"""An X.509 client credential (PEM certificate + key) as the file TLS libraries want.

``requests``/``urllib3`` (``ssl.SSLContext.load_cert_chain``) load a client
certificate only from a file, so a credential that arrived in a request is
written to a private temporary file (mode 0600, created with ``mkstemp``)
for the life of one source and removed when it closes. Never logged.
"""
from __future__ import annotations

import contextlib
import os
import tempfile


class ClientCredential:
    """``path`` is None when there is no credential."""

    def __init__(self, pem: str | None) -> None:
        self.path: str | None = None
        if pem:
            fd, path = tempfile.mkstemp(prefix="dynafed-fn-x509-", suffix=".pem")
            try:
                with os.fdopen(fd, "w", encoding="ascii", errors="replace") as out:
                    out.write(pem)
            except BaseException:
                os.unlink(path)
                raise
            self.path = path

    def remove(self) -> None:
        """Delete the file (idempotent)."""
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None
