"""``MOVE`` within one store: S3 has no rename, so a server-side CopyObject
pinned to the source's ETag, a check that the copy is that version, then a
DELETE of the source.

Possible only where the store can do it: both ends in the same store (one
endpoint and credentials) and at most 5 GiB (CopyObject's limit; larger
objects would need a multipart copy, which a MOVE's single answer cannot
show progress for — use COPY then DELETE). Anything else is a clear 502 /
403, never a partial move: the source is deleted only after the
destination holds its version.
"""
from __future__ import annotations

from typing import Any

from dynafed_client.gateway import errors
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.s3limits import COPY_OBJECT_LIMIT


def move_object(client: Any, source: ObjectRef, destination: ObjectRef, *, overwrite: bool) -> bool:
    """Move ``source`` to ``destination`` (same store); True when the
    destination is new (201), False when it was replaced (204)."""
    if source.store != destination.store:
        raise errors.BadGateway("MOVE between stores is not possible (S3 has no cross-store rename); "
                                "use COPY, then DELETE")
    try:
        head = client.head_object(Bucket=source.bucket, Key=source.key)
    except Exception as exc:
        raise errors.from_botocore(exc, "object") from None
    size, etag = int(head.get("ContentLength", 0)), str(head.get("ETag", ""))
    if size > COPY_OBJECT_LIMIT:
        raise errors.BadGateway("MOVE of an object over 5 GiB is not possible server-side; use COPY, then DELETE")
    existed = _exists(client, destination)
    if existed and not overwrite:
        raise errors.PreconditionFailed("destination exists and Overwrite is F")
    try:
        client.copy_object(Bucket=destination.bucket, Key=destination.key, MetadataDirective="COPY",
                           CopySource={"Bucket": source.bucket, "Key": source.key}, CopySourceIfMatch=etag)
        copied = client.head_object(Bucket=destination.bucket, Key=destination.key)
    except Exception as exc:
        raise errors.from_botocore(exc, "object") from None
    if int(copied.get("ContentLength", -1)) != size or ("-" not in etag and copied.get("ETag") != etag):
        raise errors.BadGateway("the store's copy does not match the source; the source was kept")
    try:
        client.delete_object(Bucket=source.bucket, Key=source.key)
    except Exception as exc:
        raise errors.from_botocore(exc, "object") from None
    return not existed


def _exists(client: Any, ref: ObjectRef) -> bool:
    return errors.found(lambda: client.head_object(Bucket=ref.bucket, Key=ref.key), "object")
