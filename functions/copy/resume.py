"""Finding (or starting) a job's multipart upload: the resume logic shared by
the streamed and the server-side multipart copies.

Order of preference: this worker's checkpoint (still matching the witness,
and the upload still open per ListParts), then an open upload on the
destination key whose witness part proves it is this job's for this source
version (another worker, or this one after a restart), else a new upload
with a fresh witness. An upload that turns out to be someone else's or
stale is never touched: cleanup aborts it by age.
"""
from __future__ import annotations

import base64
import hashlib

from dynafed_contract.copy import Strategy
from functions.copy import multipart
from functions.copy.engine import CopyRun
from functions.copy.jobs import Checkpoint
from functions.copy.parts import PartPlan
from functions.copy.witness import WITNESS_PART, witness_body, witness_etag


def md5_hex(etag: str) -> str | None:
    """The MD5 an ETag stands for, when it is a plain (single-part) one."""
    value = etag.strip('"').lower()
    return value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else None


def open_upload(run: CopyRun, plan: PartPlan, strategy: Strategy) -> Checkpoint:
    """This job's upload and what it holds. Without a source tag (an http
    source with no ETag/Last-Modified) nothing can be resumed safely."""
    client, dest = run.dest_client, run.destination
    body = witness_body(job_id=run.job_id, strategy=strategy, source_tag=str(run.source.tag), size=plan.size,
                        part_size=plan.part_size, metadata=run.metadata, headers=run.headers)
    witness = witness_etag(body)
    pinned = run.source.tag is not None
    checkpoint = run.jobs.get(run.job_id) if pinned else None
    if checkpoint is not None and (checkpoint.witness != witness or checkpoint.plan != plan
                                   or (checkpoint.upload.bucket, checkpoint.upload.key) != (dest.bucket, dest.key)):
        checkpoint = None
    if checkpoint is not None:
        listed = multipart.list_parts(client, checkpoint.upload)
        if listed is None:  # aborted (cleanup) or completed by another request meanwhile
            checkpoint = None
        else:
            listed.pop(WITNESS_PART, None)
            checkpoint.etags = {n: p.etag for n, p in listed.items()}
            checkpoint.md5s = {n: m for n, m in checkpoint.md5s.items()
                               if md5_hex(checkpoint.etags.get(n, "")) == m.hex()}
            if any(n not in checkpoint.md5s for n in range(1, checkpoint.digested + 1)):
                checkpoint.digests, checkpoint.digested = None, 0  # a digested part changed: rebuild
    if checkpoint is None and pinned:
        found = multipart.find_by_witness(client, dest.bucket, dest.key, witness)
        if found is not None:
            upload, listed = found
            checkpoint = Checkpoint(run.job_id, witness, upload, plan, {n: p.etag for n, p in listed.items()}, {})
    if checkpoint is None:
        upload = multipart.create(client, dest.bucket, dest.key, run.metadata, run.headers)
        try:
            multipart.upload_part(client, upload, WITNESS_PART, body,
                                  base64.b64encode(hashlib.md5(body).digest()).decode())  # noqa: S324
        except BaseException:
            multipart.abort(client, upload)
            raise
        checkpoint = Checkpoint(run.job_id, witness, upload, plan, {}, {})
    return checkpoint
