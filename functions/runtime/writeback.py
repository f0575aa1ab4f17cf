"""Writing checksums back as ``x-amz-meta-<algo>`` (the UVic convention).

A self-copy with ``MetadataDirective=REPLACE`` that keeps the other user
metadata and the content headers, pinned to the ETag that was read
(``CopySourceIfMatch``). Objects above the CopyObject limit take the
multipart-copy path of s3transfer; object bytes never change.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.runtime import errors
from functions.runtime.objects import ObjectInfo

#: S3's CopyObject limit (PROTOCOLS.md §5).
COPY_OBJECT_LIMIT = 5 * 1024**3


def write_metadata(client: Any, info: ObjectInfo, checksums: Mapping[str, str]) -> None:
    metadata = {**info.metadata, **{k.lower(): v for k, v in checksums.items()}}
    source = {"Bucket": info.bucket, "Key": info.key}
    extra = {"MetadataDirective": "REPLACE", "Metadata": metadata, **info.preserved}
    try:
        if info.size <= COPY_OBJECT_LIMIT:
            client.copy_object(Bucket=info.bucket, Key=info.key, CopySource=source,
                               CopySourceIfMatch=info.etag, **extra)
        else:
            from boto3.s3.transfer import TransferConfig

            client.copy(source, info.bucket, info.key, ExtraArgs={**extra, "CopySourceIfMatch": info.etag},
                        Config=TransferConfig(multipart_chunksize=512 * 1024**2, max_concurrency=8))
    except Exception as exc:
        raise errors.translate(exc, what=info.what) from None
