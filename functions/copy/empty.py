"""Zero-byte objects: one PutObject. A ranged GET of an empty object is a 416
and a multipart upload needs at least one part, so they get their own path."""
from __future__ import annotations

import base64
import hashlib

from dynafed_contract.copy import COMPLETED
from dynafed_runtime import errors
from dynafed_runtime.digests import digest_bytes
from dynafed_runtime.objects import head_object
from functions.copy import create_only
from functions.copy.run import CopyRun, Outcome, StartInfo
from functions.copy.verify import require_equal

STRATEGY = "put-empty"


def put_empty(run: CopyRun) -> Outcome:
    run.on_start(StartInfo(resumed=False, bytes_done=0, parts_total=0, part_size=0))
    checksum = digest_bytes(b"", [run.algorithm])[run.algorithm]
    require_equal(run.algorithm, checksum, run.reference, run.source.what)
    dest = run.destination
    metadata = {**run.metadata, run.algorithm: checksum}
    try:
        answer = run.dest_client.put_object(Bucket=dest.bucket, Key=dest.key, Body=b"", Metadata=metadata,
                                            ContentMD5=base64.b64encode(hashlib.md5(b"").digest()).decode(),  # noqa: S324
                                            **run.headers, **create_only.condition(run.create_only))
        etag = str(answer.get("ETag", ""))
    except Exception as exc:
        ours = create_only.after_refusal(run.dest_client, dest.bucket, dest.key, run.job_id, exc) \
            if run.create_only else None
        if ours is None:
            raise errors.translate(exc, what=f"s3://{dest.bucket}/{dest.key}") from None
        etag = ours.etag
    if run.create_only:
        create_only.check_ours(head_object(run.dest_client, dest.bucket, dest.key), run.job_id)
    verified_by = ["source-checksum"] if run.reference is not None else []
    return Outcome(COMPLETED, STRATEGY, 0, checksum=checksum, etag=etag,
                   verified_by=[*verified_by, "size"], written=True)
