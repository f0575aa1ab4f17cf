"""The copy function's tunables (``DYNAFED_FN_COPY_*``), parsed once from Config.

Defaults are measured on the local SeaweedFS stack (functions/copy/README.md):
a CopyObject and parallel UploadPartCopy run at the same ~230 MB/s there, so
the server-side threshold is about progress granularity and request length,
not speed; streamed copies are bound by the destination's PUT rate.
"""
from __future__ import annotations

import dataclasses

from dynafed_runtime.config import Config, ConfigError

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class CopySettings:
    #: same-store copies up to this size are one CopyObject (max 5 GiB); above
    #: it, UploadPartCopy parts (progress per part, resumable across requests)
    server_side_threshold: int = 512 * MiB
    #: preferred part size of a server-side multipart copy
    server_side_part_size: int = 64 * MiB
    #: UploadPartCopy requests in flight
    server_side_concurrency: int = 4
    #: preferred part size of a streamed copy (grown so no object needs > 9,999 parts)
    part_size: int = 16 * MiB
    #: parts in flight in a streamed copy: memory = parts_in_flight x part size
    parts_in_flight: int = 4
    #: cap on a streamed copy's part buffers; fewer parts fly when parts are huge
    memory_budget: int = 256 * MiB
    #: longest one request works on a job before answering ``in-progress``
    slice_seconds: float = 240.0
    #: ndjson: a line at least this often, even when no byte moved
    heartbeat_seconds: float = 1.0
    #: progress updates at most this often ...
    progress_interval: float = 0.5
    #: ... and also whenever another step of this fraction of the total is done
    progress_step: float = 0.05
    #: http(s) sources: seconds to connect / between bytes
    http_connect_timeout: float = 5.0
    http_read_timeout: float = 60.0
    #: how long an idle job checkpoint stays in this worker's memory
    checkpoint_ttl: float = 3600.0
    #: (store, bucket) of the shared job-id registry (``DYNAFED_FN_COPY_JOB_REGISTRY=<store>/<bucket>``);
    #: None: job ids are bound in this worker's memory and on the destination only (jobs.py)
    job_registry: tuple[str, str] | None = None
    #: a server-side copy takes a source's ``x-amz-meta-<algo>`` checksum as true without
    #: reading the source (``DYNAFED_FN_COPY_TRUST_STORED_CHECKSUMS=1``: for deployments whose
    #: stored values are written only by a trusted path, e.g. checksum on upload); by
    #: default it reads the source once and compares, so "verified" is backed by bytes
    trust_stored_checksums: bool = False

    @classmethod
    def from_config(cls, config: Config) -> CopySettings:
        d = cls()

        def size(name: str, default: int, minimum: int = 1) -> int:
            value = int(config.setting(name, default))
            if value < minimum:
                raise ConfigError(f"DYNAFED_FN_COPY_{name} must be >= {minimum}")
            return value

        def seconds(name: str, default: float, minimum: float = 0.0) -> float:
            value = config.setting(name, default)
            if value < minimum:
                raise ConfigError(f"DYNAFED_FN_COPY_{name} must be >= {minimum}")
            return value

        return cls(
            server_side_threshold=size("SERVER_SIDE_THRESHOLD", d.server_side_threshold, 0),
            server_side_part_size=size("SERVER_SIDE_PART_BYTES", d.server_side_part_size),
            server_side_concurrency=size("SERVER_SIDE_CONCURRENCY", d.server_side_concurrency),
            part_size=size("PART_BYTES", d.part_size),
            parts_in_flight=size("PARTS_IN_FLIGHT", d.parts_in_flight),
            memory_budget=size("MEMORY_BUDGET_BYTES", d.memory_budget),
            slice_seconds=seconds("SLICE_SECONDS", d.slice_seconds),
            heartbeat_seconds=seconds("HEARTBEAT_SECONDS", d.heartbeat_seconds, 0.05),
            progress_interval=seconds("PROGRESS_INTERVAL_SECONDS", d.progress_interval),
            progress_step=seconds("PROGRESS_STEP", d.progress_step, 0.001),
            http_connect_timeout=seconds("HTTP_CONNECT_TIMEOUT", d.http_connect_timeout, 0.1),
            http_read_timeout=seconds("HTTP_READ_TIMEOUT", d.http_read_timeout, 0.1),
            checkpoint_ttl=seconds("CHECKPOINT_TTL_SECONDS", d.checkpoint_ttl),
            job_registry=_registry(config),
            trust_stored_checksums=_flag(config, "TRUST_STORED_CHECKSUMS"),
        )


def _flag(config: Config, name: str) -> bool:
    raw = config.extra.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"DYNAFED_FN_COPY_{name} must be a boolean (1/0/true/false)")


def _registry(config: Config) -> tuple[str, str] | None:
    raw = config.extra.get("JOB_REGISTRY", "").strip()
    if not raw:
        return None
    store, _, bucket = raw.partition("/")
    if not store or not bucket or "/" in bucket:
        raise ConfigError(f"DYNAFED_FN_COPY_JOB_REGISTRY must be <store>/<bucket>, got {raw[:80]!r}")
    if store not in config.stores:
        raise ConfigError(f"DYNAFED_FN_COPY_JOB_REGISTRY names an unknown store {store[:64]!r}")
    return store, bucket
