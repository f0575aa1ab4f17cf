"""Reading objects from S3: HEAD with stored checksums, and a pinned,
resuming streaming read.

Every read after the HEAD is pinned to the ETag seen there (``IfMatch``), so
an object overwritten mid-read fails with SourceChanged instead of yielding
bytes of two versions. A connection cut mid-body resumes with a ranged GET
from the last byte received (still pinned), a bounded number of times.
"""
from __future__ import annotations

import base64
import dataclasses
import logging
from typing import Any, Iterator, Mapping

from functions.contract.algorithms import ALGORITHMS, normalize_hex
from functions.runtime import errors

log = logging.getLogger("dynafed_fn.objects")

DEFAULT_CHUNK = 8 * 1024 * 1024
_S3_CHECKSUM_FIELDS = {"crc32": "ChecksumCRC32", "crc32c": "ChecksumCRC32C", "sha1": "ChecksumSHA1",
                       "sha256": "ChecksumSHA256"}


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str | None
    metadata: Mapping[str, str]
    #: Checksums the store holds for the object, canonical hex, by algorithm:
    #: ``x-amz-meta-<algo>`` (UVic convention) and S3 full-object checksums.
    stored: Mapping[str, str]
    #: Headers to keep on a metadata-replacing self-copy.
    preserved: Mapping[str, Any]

    @property
    def what(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def head_object(client: Any, bucket: str, key: str) -> ObjectInfo:
    """HEAD with ``ChecksumMode=ENABLED``; errors translated."""
    what = f"s3://{bucket}/{key}"
    try:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except Exception as exc:
        error = errors.translate(exc, what=what)
        if isinstance(error, errors.NoSuchObject):
            error = _bucket_or_object(client, bucket, what)
        raise error from None
    metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=int(head.get("ContentLength", 0)),
        etag=str(head.get("ETag", "")),
        content_type=head.get("ContentType"),
        metadata=metadata,
        stored=stored_checksums(metadata, head),
        preserved={name: head[name] for name in ("ContentType", "ContentEncoding", "ContentDisposition",
                                                  "ContentLanguage", "CacheControl", "Expires")
                   if head.get(name)},
    )


def _bucket_or_object(client: Any, bucket: str, what: str) -> errors.FunctionError:
    """HEAD answers a bare 404 for both; tell the caller which is missing."""
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        error = errors.translate(exc, what=what)
        if isinstance(error, errors.NoSuchObject):
            return errors.NoSuchBucket(f"no such bucket for {what}")
        return error
    return errors.NoSuchObject(f"no such object for {what}")


def stored_checksums(metadata: Mapping[str, str], head: Mapping[str, Any]) -> dict[str, str]:
    """Stored values by algorithm. Composite (per-part) S3 checksums are not
    whole-object digests and are ignored."""
    out: dict[str, str] = {}
    for algorithm in ALGORITHMS:
        value = metadata.get(algorithm)
        if value and all(c in "0123456789abcdefABCDEF" for c in value.strip()):
            out[algorithm] = normalize_hex(algorithm, value)
    if str(head.get("ChecksumType", "FULL_OBJECT")).upper() == "FULL_OBJECT":
        for algorithm, field in _S3_CHECKSUM_FIELDS.items():
            value = head.get(field)
            if value and "-" not in value and algorithm not in out:
                try:
                    out[algorithm] = base64.b64decode(value, validate=True).hex()
                except ValueError:
                    continue
    return out


def iter_object(client: Any, info: ObjectInfo, *, start: int = 0, end: int | None = None,
                chunk_size: int = DEFAULT_CHUNK, max_resumes: int = 3) -> Iterator[bytes]:
    """Yield the bytes [start, end) of the object pinned to ``info.etag``.

    Yields nothing for an empty range (no GET: a ranged GET of a 0-byte object
    is 416). Raises SourceChanged on overwrite, UpstreamUnavailable when the
    connection keeps failing, never yields a short read silently.
    """
    end = info.size if end is None else min(end, info.size)
    position = start
    resumes = 0
    while position < end:
        try:
            body = _get(client, info, position, end)
            while position < end:
                data = body.read(min(chunk_size, end - position))
                if not data:
                    break
                position += len(data)
                yield data
            body.close()
        except errors.FunctionError:
            raise
        except Exception as exc:
            error = errors.translate(exc, what=info.what)
            if not isinstance(error, errors.UpstreamUnavailable):
                raise error from None
        if position < end:
            resumes += 1
            if resumes > max_resumes:
                raise errors.UpstreamUnavailable(
                    f"connection to storage kept failing while reading {info.what}")
            log.warning("read interrupted, resuming", extra={"object": info.what, "offset": position})


def _get(client: Any, info: ObjectInfo, position: int, end: int) -> Any:
    kwargs: dict[str, Any] = {"Bucket": info.bucket, "Key": info.key, "IfMatch": info.etag}
    if position > 0 or end < info.size:
        kwargs["Range"] = f"bytes={position}-{end - 1}"
    try:
        return client.get_object(**kwargs)["Body"]
    except Exception as exc:
        raise errors.translate(exc, what=info.what) from None
