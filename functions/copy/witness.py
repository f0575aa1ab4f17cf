"""The witness part: how a later request recognises its job's multipart upload.

S3 cannot return the metadata of an open multipart upload (neither
ListMultipartUploads nor ListParts shows it), yet a resumed request must
know that an upload on the destination key was created by *this* job, for
*this* version of the source, with *this* part size and *this* destination
metadata — otherwise completing it could publish bytes of two source
versions or wrong checksum metadata.

So right after CreateMultipartUpload the job uploads a tiny part number
10,000 whose content is a canonical description of all of that. Its ETag
(the MD5 of the part, as ListParts shows it) is recomputed by any later
request from the same inputs and compared: a match proves the upload's
identity. The witness is never listed in CompleteMultipartUpload, so it is
not part of the object. Stores whose part ETags are not the part's MD5 (e.g.
SSE-KMS) never match: such jobs start a new upload instead of resuming, and
the old one is left to cleanup.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from functions.copy.parts import MAX_PARTS

WITNESS_PART = MAX_PARTS
_MAGIC = "dynafed-fn copy witness v1"


def witness_body(*, job_id: str, strategy: str, source_tag: str, size: int, part_size: int,
                 metadata: Mapping[str, str], headers: Mapping[str, Any]) -> bytes:
    """The witness content (deterministic for equal inputs)."""
    document = {
        "job_id": job_id,
        "strategy": str(strategy),  # a Strategy: its value
        "source": source_tag,
        "size": size,
        "part_size": part_size,
        "metadata": dict(sorted(metadata.items())),
        "headers": {k: str(v) for k, v in sorted(headers.items())},
    }
    return (_MAGIC + "\n" + json.dumps(document, sort_keys=True, separators=(",", ":"))).encode()


def witness_etag(body: bytes) -> str:
    """The part ETag S3 reports for ``body`` (quoted MD5 hex)."""
    return f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324 - S3's part ETag, not security
