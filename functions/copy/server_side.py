"""Server-side copies within one store (same endpoint and credentials): no
object bytes pass through the function.

* up to the threshold (and never above 5 GiB): one CopyObject, pinned with
  ``CopySourceIfMatch``, metadata replaced with the destination's (job id,
  source tag, the verified checksum);
* above it: a multipart upload of UploadPartCopy parts (each pinned),
  ``server_side_concurrency`` in flight, resumable across requests exactly
  like a streamed copy (witness part + ListParts).

The checksum written to the destination is known before the copy starts
(the source's stored value, or a pre-read of the source by the caller), so
the object appears with it: there is no write-back step.
"""
from __future__ import annotations

import threading
from typing import Any

from dynafed_contract.copy import COMPLETED, IN_PROGRESS, Strategy
from dynafed_runtime import errors
from dynafed_runtime.hashing import digest_object
from dynafed_runtime.objects import head_object
from functions.copy import create_only, multipart
from functions.copy.engine import CopyRun, Outcome, StartInfo
from functions.copy.parts import Part, PartPlan, PartScheduler, plan_parts
from functions.copy.source import S3Source
from functions.copy.verify import remove_if_ours, require_equal, server_side_checks


def copy_server_side(run: CopyRun, source: S3Source, strategy: Strategy) -> Outcome:
    """A server-side copy (``server-side`` or ``server-side-multipart``), with
    the checksum the destination will carry made sure of first."""
    settings = run.settings
    stated_only = run.reference is not None and run.algorithm in source.info.metadata
    read = run.reference is None or (stated_only and not settings.trust_stored_checksums)
    if read:
        # A server-side copy moves no bytes through here, so the checksum the
        # destination carries and the answer calls verified comes from one pinned
        # read of the source: never from an x-amz-meta value nobody checked (a
        # wrong one is CHECKSUM_MISMATCH before anything is written, as when
        # streaming). Only a checksum the store computed itself is taken as is,
        # or a stored one when the operator says so (trust_stored_checksums).
        computed = digest_object(source.client, source.info, [run.algorithm], on_bytes=run.on_read)[run.algorithm]
        require_equal(run.algorithm, computed, run.reference, source.what)
        run.reference = computed
        run.metadata[run.algorithm] = computed
    if strategy is Strategy.SERVER_SIDE:
        outcome = copy_single(run, source)
    else:
        outcome = copy_multipart(run, source, plan_parts(source.size, settings.server_side_part_size))
    if outcome.status != IN_PROGRESS:
        if read:
            outcome.verified_by.append("source-read")
        elif stated_only:
            outcome.verified_by.append("stored-checksum-trusted")  # by configuration, not by a check
    return outcome


def _copy_source(source: S3Source) -> dict[str, str]:
    return {"Bucket": source.info.bucket, "Key": source.info.key}


def copy_single(run: CopyRun, source: S3Source) -> Outcome:
    """One CopyObject; verified afterwards (see verify.py: a failed check removes it)."""
    assert run.reference is not None, "the checksum is known before a server-side copy"
    run.on_start(StartInfo(resumed=False, bytes_done=0, parts_total=1, part_size=source.size))
    dest = run.destination
    try:
        run.dest_client.copy_object(Bucket=dest.bucket, Key=dest.key, CopySource=_copy_source(source),
                                    CopySourceIfMatch=source.tag, MetadataDirective="REPLACE",
                                    Metadata=run.metadata, **run.headers,
                                    **create_only.condition(run.create_only))
    except Exception as exc:
        # a 412 is the destination's If-None-Match or the source's CopySourceIfMatch: the HEAD tells
        if not run.create_only or create_only.after_refusal(run.dest_client, dest.bucket, dest.key, run.job_id,
                                                            exc) is None:
            raise errors.translate(exc, what=source.what) from None
    info = head_object(run.dest_client, dest.bucket, dest.key)
    if run.create_only:
        create_only.check_ours(info, run.job_id)
    try:
        checks = server_side_checks(source.info, info, same_layout=True)
    except errors.ChecksumMismatch:
        remove_if_ours(run.dest_client, dest.bucket, dest.key, info.etag)
        raise
    run.reporter.reach(source.size)
    return Outcome(COMPLETED, Strategy.SERVER_SIDE, source.size, checksum=run.reference, etag=info.etag, parts_done=1,
                   parts_total=1, part_size=source.size, verified_by=["pinned-copy", *checks],
                   written=info.stored.get(run.algorithm) == run.reference)


def copy_multipart(run: CopyRun, source: S3Source, plan: PartPlan) -> Outcome:
    """UploadPartCopy parts for at most the request's slice."""
    assert run.reference is not None, "the checksum is known before a server-side copy"
    checkpoint = multipart.open_upload(run, plan, Strategy.SERVER_SIDE_MULTIPART)
    run.reporter.reach(checkpoint.bytes_done)
    run.on_start(StartInfo(resumed=bool(checkpoint.etags), bytes_done=checkpoint.bytes_done,
                           parts_total=plan.count, part_size=plan.part_size))
    todo = [p for p in plan.parts() if p.number not in checkpoint.etags]
    scheduler = PartScheduler(todo, time_left=run.time_left)
    lock = threading.Lock()

    def work(part: Part) -> None:
        etag = _upload_part_copy(run.dest_client, checkpoint.upload, source, part)
        with lock:
            checkpoint.etags[part.number] = etag
        run.reporter.advance(part.size)

    try:
        if todo:
            scheduler.run(min(run.settings.server_side_concurrency, len(todo)), work, "copy-part")
        if scheduler.error is not None:
            raise scheduler.error
        if len(checkpoint.etags) < plan.count:
            run.jobs.put(checkpoint)
            return Outcome(IN_PROGRESS, Strategy.SERVER_SIDE_MULTIPART, checkpoint.bytes_done,
                           parts_done=len(checkpoint.etags), parts_total=plan.count, part_size=plan.part_size)
        run.jobs.drop(run.job_id)
        etag = multipart.complete(run.dest_client, checkpoint.upload,
                                  {n: checkpoint.etags[n] for n in range(1, plan.count + 1)},
                                  create_only_for=run.job_id if run.create_only else None)
    except BaseException:
        run.jobs.drop(run.job_id)
        multipart.abort(run.dest_client, checkpoint.upload)
        raise
    dest = run.destination
    info = head_object(run.dest_client, dest.bucket, dest.key)
    if run.create_only:
        create_only.check_ours(info, run.job_id)
    try:
        if info.etag != etag:
            raise errors.SourceChanged(f"{info.what} was replaced right after the copy completed")
        checks = server_side_checks(source.info, info, same_layout=False)
    except errors.ChecksumMismatch:
        remove_if_ours(run.dest_client, dest.bucket, dest.key, info.etag)
        raise
    return Outcome(COMPLETED, Strategy.SERVER_SIDE_MULTIPART, plan.size, checksum=run.reference, etag=info.etag,
                   parts_done=plan.count, parts_total=plan.count, part_size=plan.part_size,
                   verified_by=["pinned-copy", *checks], written=info.stored.get(run.algorithm) == run.reference)


def _upload_part_copy(client: Any, upload: multipart.Upload, source: S3Source, part: Part) -> str:
    try:
        answer = client.upload_part_copy(Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id,
                                         PartNumber=part.number, CopySource=_copy_source(source),
                                         CopySourceRange=f"bytes={part.start}-{part.end - 1}",
                                         CopySourceIfMatch=source.tag)
    except Exception as exc:
        if multipart.is_no_such_upload(exc):
            raise multipart.translate_upload_error(exc, upload) from None
        raise errors.translate(exc, what=source.what) from None
    return str(answer["CopyPartResult"]["ETag"])
