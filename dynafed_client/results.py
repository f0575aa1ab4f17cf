"""What the client returns: checksum and copy results (frozen, with the raw body)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dynafed_client.errors import ProtocolError


@dataclasses.dataclass(frozen=True)
class ChecksumResult:
    """The checksum function's answer for one object."""

    store: str
    bucket: str
    key: str
    size: int | None
    etag: str | None
    #: algorithm -> lowercase hex (CRC-like values 8 digits)
    checksums: Mapping[str, str]
    #: algorithms answered from stored metadata
    cached: tuple[str, ...] = ()
    elapsed_s: float | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Any) -> ChecksumResult:
        if not isinstance(body, dict) or not isinstance(body.get("checksums"), dict):
            raise ProtocolError("checksum answer without 'checksums'")
        return cls(store=str(body.get("store", "")), bucket=str(body.get("bucket", "")),
                   key=str(body.get("key", "")), size=body.get("size"), etag=body.get("etag"),
                   checksums={str(k): str(v) for k, v in body["checksums"].items()},
                   cached=tuple(body.get("cached") or ()), elapsed_s=body.get("elapsed_s"), raw=body)


@dataclasses.dataclass(frozen=True)
class CopyResult:
    """The final answer of a copy job."""

    job_id: str
    #: ``completed`` or ``already-present``
    status: str
    strategy: str | None
    bytes: int
    checksums: Mapping[str, str]
    verified: bool
    elapsed_s: float | None = None
    #: how many times the job was re-posted after an ``in-progress`` answer
    resubmissions: int = 0
    #: attempts repeated after transport errors / retryable statuses (whole job)
    retries: int = 0
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Any, *, resubmissions: int = 0, retries: int = 0) -> CopyResult:
        if not isinstance(body, dict) or "status" not in body:
            raise ProtocolError("copy answer without 'status'")
        return cls(job_id=str(body.get("job_id", "")), status=str(body["status"]),
                   strategy=body.get("strategy"), bytes=int(body.get("bytes") or 0),
                   checksums={str(k): str(v) for k, v in (body.get("checksums") or {}).items()},
                   verified=bool(body.get("verified")), elapsed_s=body.get("elapsed_s"),
                   resubmissions=resubmissions, retries=retries, raw=body)
