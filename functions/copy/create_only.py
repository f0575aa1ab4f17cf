"""``overwrite: false`` under concurrency: the destination is written only if
it does not exist yet, decided by the store at the moment of the write.

The HEAD in ``prepare`` answers "absent" to two simultaneous copies to one
new key alike; only the store can decide which one of their writes comes
first. So every write that makes the object appear (PutObject,
CopyObject, CompleteMultipartUpload) carries ``If-None-Match: *`` when the
request said ``overwrite: false`` and the destination was not this job's:
the store refuses the second with ``412 PreconditionFailed``, which becomes
``409 DESTINATION_EXISTS``.

SeaweedFS (4.48, the local stack) checks the condition under its per-object
write lock (seaweedfs ``weed/s3api/s3api_object_handlers_put.go``
``withObjectWriteLock`` around ``checkConditionalHeaders``, used by
``PutObjectHandler``, ``CopyObjectHandler`` in ``s3api_object_handlers_copy.go``
and ``completeMultipartUpload`` in ``filer_multipart.go``); AWS S3 documents
the same for PutObject, CopyObject and CompleteMultipartUpload.

A 412 is not always a lost race: botocore retries a write whose answer was
lost, and the retry of a write that did land finds "our" object. So a 412 is
re-checked with a HEAD: an object carrying this job's id is ours. For stores
that ignore the header, ``check_ours`` after the write (a HEAD) catches a
replacement that landed before it; one that lands after it cannot be told
apart from a later, legitimate overwrite (docs/reliability.md).
"""
from __future__ import annotations

from typing import Any

from dynafed_contract.copy import JOB_ID_METADATA
from dynafed_runtime import errors
from dynafed_runtime.objects import ObjectInfo, head_object

#: the S3 precondition that makes a write create-only (RFC 9110 13.1.2)
CREATE_ONLY = {"IfNoneMatch": "*"}


def condition(create_only: bool) -> dict[str, str]:
    """Extra keyword arguments of the write that makes the object appear."""
    return dict(CREATE_ONLY) if create_only else {}


def is_refused(exc: BaseException) -> bool:
    """The store refused a conditional write (412 PreconditionFailed)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "412") or status == 412


def lost(bucket: str, key: str) -> errors.DestinationExists:
    return errors.DestinationExists(
        f"s3://{bucket}/{key} was created by another copy meanwhile; set \"overwrite\": true to replace it")


def after_refusal(client: Any, bucket: str, key: str, job_id: str, exc: BaseException) -> ObjectInfo | None:
    """The create-only write failed with ``exc``. A 412 is a lost race (raises
    DestinationExists) unless the object is this job's own (a retried write
    that had landed): then its HEAD. None when ``exc`` is no 412 (the caller
    translates it as usual)."""
    if not is_refused(exc):
        return None
    try:
        info = head_object(client, bucket, key)
    except errors.NoSuchObject:
        raise lost(bucket, key) from None
    if info.metadata.get(JOB_ID_METADATA) != job_id:
        raise lost(bucket, key) from None
    return info


def check_ours(info: ObjectInfo, job_id: str) -> None:
    """After a create-only write: the object must be this job's (a store that
    ignored ``If-None-Match`` may have let another copy replace it)."""
    if info.metadata.get(JOB_ID_METADATA) != job_id:
        raise lost(info.bucket, info.key)
