"""Rewriting an object's user metadata by copying it onto itself, pinned.

The one implementation for the checksum function's write-back
(dynafed_runtime/writeback.py) and the Dynafed checksum hook
(dynafed_client/hooks/metadata.py). It lives in the contract because both
sides may import only this package; it does no I/O of its own and imports
no boto3: it drives the S3 client it is given (any object with boto3's
method names).

Every request that reads the source carries ``CopySourceIfMatch=<ETag
read>``: the single CopyObject, and each UploadPartCopy of the multipart
path used above :data:`~dynafed_contract.s3limits.COPY_OBJECT_LIMIT`
(PROTOCOLS.md §5: pin the source while reading it in pieces). An object
replaced meanwhile makes the copy fail with 412 and is left as the writer
left it; a failed multipart copy is aborted, so nothing half-made appears.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dynafed_contract.s3limits import COPY_OBJECT_LIMIT, MAX_PARTS, MIN_PART_SIZE

#: HEAD fields a self-copy with ``MetadataDirective=REPLACE`` must send again
#: or lose (S3 replaces them along with the user metadata)
PRESERVED_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage",
                     "CacheControl", "Expires")
#: part size of the multipart path (as the s3transfer copy used before: 512 MiB)
PART_SIZE = 512 * 1024**2
MAX_CONCURRENCY = 8


@dataclasses.dataclass(frozen=True)
class PinnedObject:
    """The object as it was read: the copy applies to this version only."""

    bucket: str
    key: str
    etag: str
    size: int


def preserved_headers(head: Mapping[str, Any]) -> dict[str, Any]:
    """The content headers of a HEAD response that a REPLACE copy must repeat."""
    return {name: head[name] for name in PRESERVED_HEADERS if head.get(name)}


def rewrite_metadata(client: Any, obj: PinnedObject, metadata: Mapping[str, str], *,
                     preserved: Mapping[str, Any] | None = None,
                     single_copy_limit: int = COPY_OBJECT_LIMIT, part_size: int = PART_SIZE,
                     max_concurrency: int = MAX_CONCURRENCY) -> None:
    """Replace ``obj``'s user metadata with ``metadata`` (content unchanged,
    ``preserved`` content headers repeated), pinned to ``obj.etag``.
    Raises what the client raises (botocore errors; 412 when replaced)."""
    target = {"Bucket": obj.bucket, "Key": obj.key}
    source = dict(target)
    new = {"Metadata": dict(metadata), **(preserved or {})}
    if obj.size <= single_copy_limit:
        client.copy_object(**target, CopySource=source, CopySourceIfMatch=obj.etag,
                           MetadataDirective="REPLACE", **new)
        return
    ranges = _part_ranges(obj.size, part_size)
    upload_id = client.create_multipart_upload(**target, **new)["UploadId"]

    def copy_part(number: int, first: int, last: int) -> dict[str, Any]:
        reply = client.upload_part_copy(**target, UploadId=upload_id, PartNumber=number, CopySource=source,
                                        CopySourceIfMatch=obj.etag, CopySourceRange=f"bytes={first}-{last}")
        return {"PartNumber": number, "ETag": reply["CopyPartResult"]["ETag"]}

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(ranges)))) as pool:
            parts = list(pool.map(lambda r: copy_part(*r), ranges))
        client.complete_multipart_upload(**target, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        with contextlib.suppress(Exception):  # the copy's own error is the one to report
            client.abort_multipart_upload(**target, UploadId=upload_id)
        raise


def _part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(part number, first byte, last byte) covering ``size`` bytes in at most
    MAX_PARTS parts of at least MIN_PART_SIZE (the last may be shorter)."""
    part = max(part_size, MIN_PART_SIZE, -(-size // MAX_PARTS))
    return [(n + 1, first, min(first + part, size) - 1) for n, first in enumerate(range(0, size, part))]
