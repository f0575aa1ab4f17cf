"""Writing checksums back as ``x-amz-meta-<algo>`` (the UVic convention).

A self-copy that keeps the other user metadata and the content headers,
pinned to the ETag that was read, by the one implementation both the
functions and the Dynafed hook use (dynafed_contract/metadata_copy.py:
``CopySourceIfMatch`` on the CopyObject and on every UploadPartCopy above
5 GiB); object bytes never change.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynafed_contract.metadata_copy import PinnedObject, rewrite_metadata
from dynafed_runtime import errors
from dynafed_runtime.objects import ObjectInfo


def write_metadata(client: Any, info: ObjectInfo, checksums: Mapping[str, str]) -> None:
    """Add ``checksums`` to the user metadata of the version ``info`` describes."""
    metadata = {**info.metadata, **{k.lower(): v for k, v in checksums.items()}}
    try:
        rewrite_metadata(client, PinnedObject(info.bucket, info.key, info.etag, info.size), metadata,
                         preserved=info.preserved)
    except Exception as exc:
        raise errors.translate(exc, what=info.what) from None
