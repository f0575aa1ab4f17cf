"""Which certificate authorities outgoing https connections trust.

WLCG storage is mostly signed by grid CAs (IGTF), not by the public roots
``certifi`` ships, and sites keep them in a hashed directory
(``/etc/grid-security/certificates``, named by ``X509_CERT_DIR``; files
``<subject hash>.<n>`` as ``openssl rehash`` makes them). Settings, read once
at start-up::

    DYNAFED_FN_CA_BUNDLE   PEM file of extra CAs (e.g. a mounted Secret/ConfigMap)
    X509_CERT_DIR          hashed CA directory (the grid convention)

Both add to certifi's public roots (a presigned AWS URL keeps working).
:meth:`TrustSettings.verify` is what ``requests`` (``verify=``) and boto3
take: ``True`` when nothing is configured, else the path of one combined PEM
file (certifi + the bundle + every hashed certificate in the directory),
written once per content into the temp directory. A snapshot: a CA added to
the directory later needs a restart (Knative: a new revision), as with any
file read at start-up.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

CA_BUNDLE_ENV = "DYNAFED_FN_CA_BUNDLE"
CA_DIR_ENV = "X509_CERT_DIR"
#: what OpenSSL looks up in a hashed directory (``c_rehash``/``openssl rehash`` names)
_HASHED = re.compile(r"[0-9a-f]{8}\.[0-9]+")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_lock = threading.Lock()
#: settings -> the combined file written for them (once per process)
_written: dict[TrustSettings, str] = {}


class TrustError(ValueError):
    """A trust setting names a file or directory that is missing or holds no certificate."""


@dataclasses.dataclass(frozen=True)
class TrustSettings:
    """Extra CAs for outgoing https (see the module docstring)."""

    ca_bundle: Path | None = None
    ca_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TrustSettings:
        """Parse and check the settings (raises TrustError naming the variable)."""
        bundle = (env.get(CA_BUNDLE_ENV) or "").strip() or None
        directory = (env.get(CA_DIR_ENV) or "").strip() or None
        settings = cls(Path(bundle) if bundle else None, Path(directory) if directory else None)
        if settings.ca_bundle is not None and not settings.ca_bundle.is_file():
            raise TrustError(f"{CA_BUNDLE_ENV}: {settings.ca_bundle} is not a file")
        if settings.ca_dir is not None and not settings.ca_dir.is_dir():
            raise TrustError(f"{CA_DIR_ENV}: {settings.ca_dir} is not a directory")
        if settings.configured and not settings.extra_pem():
            raise TrustError(f"{CA_BUNDLE_ENV}/{CA_DIR_ENV}: no PEM certificate found in "
                             f"{settings.ca_bundle or ''} {settings.ca_dir or ''}".strip())
        return settings

    @property
    def configured(self) -> bool:
        return self.ca_bundle is not None or self.ca_dir is not None

    def extra_pem(self) -> bytes:
        """The configured CA certificates, PEM, in a stable order."""
        blocks: list[bytes] = []
        if self.ca_bundle is not None:
            blocks.extend(_PEM.findall(self.ca_bundle.read_bytes()))
        if self.ca_dir is not None:
            for path in sorted(self.ca_dir.iterdir()):
                if _HASHED.fullmatch(path.name) and path.is_file():
                    blocks.extend(_PEM.findall(path.read_bytes()))
        return b"\n".join(blocks) + (b"\n" if blocks else b"")

    def verify(self) -> bool | str:
        """``verify=`` for requests/boto3: True (certifi) or the combined bundle's path."""
        if not self.configured:
            return True
        with _lock:
            cached = _written.get(self)
        if cached is not None and Path(cached).is_file():
            return cached
        import certifi

        content = Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + self.extra_pem()
        name = f"dynafed-fn-ca-{hashlib.sha256(content).hexdigest()[:16]}.pem"
        path = Path(tempfile.gettempdir()) / name
        with _lock:
            if not path.is_file() or path.read_bytes() != content:
                fd, tmp = tempfile.mkstemp(prefix=".dynafed-fn-ca-", dir=path.parent)
                with os.fdopen(fd, "wb") as out:
                    out.write(content)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            _written[self] = str(path)
        return str(path)
