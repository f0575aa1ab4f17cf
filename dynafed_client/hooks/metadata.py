"""Store a checksum as S3 user metadata, the UVic ``dynafed-storage checksums put`` way.

``x-amz-meta-<algorithm>: <lowercase hex>``, written by copying the object
onto itself with ``MetadataDirective=REPLACE``, keeping the other metadata
and the content headers, pinned to the ETag read on every path (an object
replaced meanwhile is left alone: 412). The copy is the functions' own
(dynafed_contract/metadata_copy.py): the client may import the contract
only, and a hook storing a value Dynafed hands it has nothing to compute, so
calling the checksum function instead would read the whole object for nothing.
The content never changes.
"""
from __future__ import annotations

import re
from typing import Any

from dynafed_contract.algorithms import CRC_LIKE, canonical_stored, normalize_hex
from dynafed_contract.metadata_copy import PinnedObject, preserved_headers, rewrite_metadata

#: hex digits of each algorithm's value
_HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")


def canonical_value(algorithm: str, value: str) -> str:
    """Lowercase hex, CRC-like zero-padded to 8; ValueError if it cannot be a value of ``algorithm``."""
    text = normalize_hex(algorithm, value)
    if not _HEX.fullmatch(text):
        raise ValueError(f"{algorithm} value must be hexadecimal")
    expected = 8 if algorithm in CRC_LIKE else _HEX_LENGTH.get(algorithm)
    if expected is None or len(text) != expected:
        raise ValueError(f"{algorithm} value must have {expected} hex digits")
    return text


def read_stored(client: Any, bucket: str, key: str, algorithm: str) -> str | None:
    """The stored value, metadata keys matched case-insensitively (S3 servers differ);
    None when absent or not a value of ``algorithm`` at all (canonical_stored: a
    garbled value is no claim, so it neither answers nor blocks a correct one)."""
    meta = client.head_object(Bucket=bucket, Key=key).get("Metadata") or {}
    for name, value in meta.items():
        if name.lower() == algorithm:
            return canonical_stored(algorithm, str(value))
    return None


def store_checksum(client: Any, bucket: str, key: str, algorithm: str, value: str) -> None:
    """Write ``x-amz-meta-<algorithm>`` (keeping the rest), pinned to the
    version HEAD saw; raises botocore errors (412 if it was replaced)."""
    head = client.head_object(Bucket=bucket, Key=key)
    metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items() if k.lower() != algorithm}
    metadata[algorithm] = canonical_value(algorithm, value)
    pinned = PinnedObject(bucket, key, str(head["ETag"]), int(head.get("ContentLength", 0)))
    rewrite_metadata(client, pinned, metadata, preserved=preserved_headers(head))
