"""Copy request, progress lines and result (the copy function's wire format)."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping
from urllib.parse import urlsplit

from functions.contract import fields
from functions.contract.checksum import ObjectRef, object_ref

#: ``auto`` verifies by the best means available; ``full`` also re-reads the
#: destination after a server-side copy.
VERIFY_MODES = ("auto", "full")
STRATEGIES = ("server-side", "server-side-multipart", "stream", "put-empty")
STATUSES = ("completed", "already-present", "in-progress")
MAX_URL_LENGTH = 8192


@dataclasses.dataclass(frozen=True)
class UrlSource:
    """An http(s) source (e.g. a presigned URL). Never logged in full."""

    url: str

    def redacted(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"

    def to_json(self) -> dict[str, str]:
        return {"url": self.redacted()}


@dataclasses.dataclass(frozen=True)
class CopyRequest:
    source: ObjectRef | UrlSource
    destination: ObjectRef
    job_id: str | None = None
    verify: str = "adler32"
    verify_mode: str = "auto"
    overwrite: bool = False


_FIELDS = {"source", "destination", "job_id", "verify", "verify_mode", "overwrite"}


def parse_copy_request(body: Any) -> CopyRequest:
    """Validate a JSON copy request (raises ContractViolation)."""
    body = fields.require_mapping(body, "request body")
    fields.reject_unknown(body, _FIELDS, "copy request")
    source_json = fields.require_mapping(body.get("source"), "field 'source'")
    source: ObjectRef | UrlSource
    if "url" in source_json:
        fields.reject_unknown(source_json, {"url"}, "source")
        url = fields.string_field(source_json, "url")
        if len(url) > MAX_URL_LENGTH:
            raise fields.invalid("source url is too long")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise fields.invalid("source url must be http:// or https://")
        if not urlsplit(url).hostname:
            raise fields.invalid("source url has no host")
        source = UrlSource(url)
    else:
        fields.reject_unknown(source_json, {"store", "bucket", "key"}, "source")
        source = object_ref(source_json, "source")
    dest_json = fields.require_mapping(body.get("destination"), "field 'destination'")
    fields.reject_unknown(dest_json, {"store", "bucket", "key"}, "destination")
    destination = object_ref(dest_json, "destination")
    verify_raw = body.get("verify", "adler32")
    verify_mode = body.get("verify_mode", "auto")
    if verify_raw == "full":  # shorthand: default algorithm, full re-read
        verify_raw, verify_mode = "adler32", "full"
    (verify,) = fields.algorithm_list([verify_raw] if isinstance(verify_raw, str) else verify_raw,
                                      default=("adler32",))[:1]
    if verify_mode not in VERIFY_MODES:
        raise fields.invalid(f"field 'verify_mode' must be one of {', '.join(VERIFY_MODES)}")
    if isinstance(source, ObjectRef) and source == destination:
        raise fields.invalid("source and destination are the same object")
    return CopyRequest(
        source=source,
        destination=destination,
        job_id=fields.job_id(body.get("job_id")),
        verify=verify,
        verify_mode=verify_mode,
        overwrite=fields.boolean(body, "overwrite", False),
    )


def progress_line(job_id: str, bytes_done: int, total: int, rate_bps: float, elapsed_s: float) -> dict[str, Any]:
    """One ndjson progress line (``"type": "progress"``)."""
    return {
        "type": "progress",
        "job_id": job_id,
        "bytes": bytes_done,
        "total": total,
        "rate_bps": round(rate_bps, 1),
        "elapsed_s": round(elapsed_s, 3),
    }


def copy_result(
    *,
    job_id: str,
    status: str,
    strategy: str,
    bytes_: int,
    checksums: Mapping[str, str],
    verified: bool,
    elapsed_s: float,
    source: ObjectRef | UrlSource,
    destination: ObjectRef,
    **extra: Any,
) -> dict[str, Any]:
    """The final result (the 200 body, or the last ndjson line with ``"type": "result"``)."""
    return {
        "type": "result",
        "job_id": job_id,
        "status": status,
        "strategy": strategy,
        "bytes": bytes_,
        "checksums": dict(checksums),
        "verified": verified,
        "elapsed_s": round(elapsed_s, 6),
        "source": source.to_json(),
        "destination": destination.to_json(),
        **extra,
    }
