"""Verification of a copy, and what happens to a destination that fails it.

What each strategy proves (functions/copy/README.md, "Verification"):

* stream: the ``verify`` digest of the bytes read (pinned to one source
  version) must equal the source's stored checksum when it has one; every
  part goes up with Content-MD5 (the store refuses a damaged part) and the
  completed ETag must be the MD5-of-part-MD5s of exactly those parts. All of
  it is checked *before* CompleteMultipartUpload, so a failed check leaves
  no object and a pre-existing destination untouched.
* server-side: the store copies a pinned source (``CopySourceIfMatch``);
  afterwards the destination's size, its ETag (a CopyObject keeps the MD5
  ETag) and any full-object checksum the store keeps for both are compared.
* ``verify_mode: full`` re-reads the destination after completion and
  compares its digest.

A check that can only run after the object became visible (server-side
checks, ``full``) removes the new object on failure — but only while it is
still the object this copy wrote (its ETag), never a newer write. An object
the copy replaced is gone by then: S3 has no rollback (versioned buckets keep
it as the previous version). That is why a stream never completes before its
checks pass.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dynafed_runtime import errors
from dynafed_runtime.hashing import digest_object
from dynafed_runtime.objects import ObjectInfo, head_object

log = logging.getLogger("dynafed_fn.copy.verify")


def require_equal(algorithm: str, computed: str, expected: str | None, what: str) -> None:
    """CHECKSUM_MISMATCH unless ``computed`` equals ``expected`` (None: nothing to compare)."""
    if expected is not None and computed != expected:
        raise errors.ChecksumMismatch(f"{algorithm} of the bytes copied from {what} is {computed}, "
                                      f"but the source states {expected}")


def remove_if_ours(client: Any, bucket: str, key: str, etag: str) -> bool:
    """Delete the destination if it still is the object with ``etag``. Never raises."""
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        if head.get("ETag") != etag:
            log.warning("destination changed since the copy; not removing it", extra={"object": key})
            return False
        client.delete_object(Bucket=bucket, Key=key)
        return True
    except Exception as exc:  # the failure being reported matters more
        log.warning("could not remove a destination that failed verification: %s", type(exc).__name__)
        return False


def reread(client: Any, bucket: str, key: str, algorithm: str, expected: str, *,
           on_bytes: Callable[[int], Any] | None = None) -> ObjectInfo:
    """``verify_mode: full``: digest the destination as stored and compare;
    on mismatch remove it (if still ours) and raise CHECKSUM_MISMATCH."""
    info = head_object(client, bucket, key)
    computed = digest_object(client, info, [algorithm], on_bytes=on_bytes)[algorithm]
    if computed != expected:
        remove_if_ours(client, bucket, key, info.etag)
        raise errors.ChecksumMismatch(f"{algorithm} of the destination {info.what} as stored is {computed}, "
                                      f"expected {expected}; the destination was removed")
    return info


def server_side_checks(source: ObjectInfo, dest: ObjectInfo, *, same_layout: bool) -> list[str]:
    """Cheap checks after a server-side copy; the names of those that applied.
    Raises CHECKSUM_MISMATCH (after which the caller removes the object)."""
    applied = ["size"]
    if dest.size != source.size:
        raise errors.ChecksumMismatch(f"{dest.what} has {dest.size} bytes after the copy, the source {source.size}")
    if same_layout and _plain_md5(source.etag) and _plain_md5(dest.etag):
        applied.append("etag")
        if source.etag != dest.etag:
            raise errors.ChecksumMismatch(f"the ETag (MD5) of {dest.what} differs from the source's")
    for algorithm, value in source.stored.items():
        # metadata-based values were carried over by the copy itself; only a
        # store-computed full-object checksum on both sides is evidence
        if algorithm in dest.stored and algorithm not in source.metadata and algorithm not in dest.metadata:
            applied.append(f"s3-{algorithm}")
            if dest.stored[algorithm] != value:
                raise errors.ChecksumMismatch(f"the store's {algorithm} of {dest.what} differs from the source's")
    return applied


def _plain_md5(etag: str) -> bool:
    value = etag.strip('"')
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value.lower())
