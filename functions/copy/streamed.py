"""The streamed copy: source bytes through the function into a multipart upload.

Workers (``parts_in_flight`` of them, each holding at most one part buffer
from a shared pool, so memory is ``parts_in_flight x part size`` whatever the
object size) take parts in order, read them (S3: a pinned ranged GET each,
in parallel; http: one pinned stream, in turn), feed them to the ``verify``
digest strictly in order, compute the part's MD5 and upload it with
Content-MD5. Nothing is visible until CompleteMultipartUpload, which happens
only after the digest matched the source's stored checksum (when there is
one) — so a failed copy never replaces or creates anything, and every
failure aborts the upload.

When the request's slice ends, workers stop taking parts, the ones in flight
finish, and the job answers ``in-progress``: the open upload (with its
witness part) and this worker's ``Checkpoint`` (parts and running digest)
let the next request continue. A resume without the checkpoint (another
worker, a restart) re-reads the parts already uploaded to rebuild the digest
and checks each against its part ETag (MD5) instead of uploading it again.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import threading

from dynafed_contract.copy import COMPLETED, IN_PROGRESS, Strategy
from dynafed_runtime import errors
from dynafed_runtime.digests import DigestSet
from dynafed_runtime.objects import BufferPool, head_object
from dynafed_runtime.writeback import write_metadata
from functions.copy import create_only, multipart
from functions.copy.engine import CopyRun, Outcome, StartInfo
from functions.copy.parts import Part, PartPlan, PartScheduler, parts_in_flight
from functions.copy.verify import remove_if_ours, require_equal

log = logging.getLogger("dynafed_fn.copy.stream")

def copy_stream(run: CopyRun, plan: PartPlan) -> Outcome:
    """Run (or resume) a streamed copy for at most the request's slice."""
    checkpoint = multipart.open_upload(run, plan, Strategy.STREAM)
    if checkpoint.digests is None:
        checkpoint.digests, checkpoint.digested = DigestSet([run.algorithm]), 0
    resumed = bool(checkpoint.etags) or checkpoint.digested > 0
    run.reporter.reach(checkpoint.bytes_done)
    run.on_start(StartInfo(resumed=resumed, bytes_done=checkpoint.bytes_done, parts_total=plan.count,
                           part_size=plan.part_size))
    try:
        finished = _transfer(run, plan, checkpoint)
    except BaseException:
        run.jobs.drop(run.job_id)
        multipart.abort(run.dest_client, checkpoint.upload)
        raise
    if not finished and run.source.tag is None:
        # only a client disconnect stops an unpinned copy early: it cannot be resumed
        run.jobs.drop(run.job_id)
        multipart.abort(run.dest_client, checkpoint.upload)
        raise errors.UpstreamUnavailable(f"copy from {run.source.what} interrupted; a source without "
                                         "ETag or Last-Modified cannot be resumed")
    if not finished:
        run.jobs.put(checkpoint)
        return Outcome(IN_PROGRESS, Strategy.STREAM, checkpoint.bytes_done, parts_done=len(checkpoint.etags),
                       parts_total=plan.count, part_size=plan.part_size)
    run.jobs.drop(run.job_id)
    try:
        return _finish(run, plan, checkpoint)
    except BaseException:
        multipart.abort(run.dest_client, checkpoint.upload)
        raise


def _transfer(run: CopyRun, plan: PartPlan, checkpoint: multipart.Checkpoint) -> bool:
    """Move parts until done, the slice ends or something fails; True when
    every part is uploaded and digested."""
    assert checkpoint.digests is not None
    first = checkpoint.digested + 1
    if first > plan.count:
        return True
    digests = checkpoint.digests
    counted = set(checkpoint.etags)  # already in the reporter's byte count
    workers = parts_in_flight(plan.part_size, run.settings.parts_in_flight, run.settings.memory_budget)
    workers = min(workers, plan.count - first + 1)
    # mapped: part buffers (16 MiB) go back to the kernel when a copy ends; as
    # bytearrays glibc kept them (tests/soak/copy_memory.py: idle RSS 465 -> 103 MiB)
    pool = BufferPool(workers, plan.part_size, mapped=True)
    reader = run.source.reader(pool, plan.part(first).start)
    pinned = run.source.tag is not None
    # an unpinned source cannot resume: only the caller's disconnect ends it early
    scheduler = PartScheduler(plan.parts(first), uploaded=counted,
                              time_left=run.time_left if pinned else lambda: not run.cancel.is_set())
    scheduler.on_halt(pool.close)
    scheduler.on_halt(reader.cancel)
    lock = threading.Lock()

    def work(part: Part) -> None:
        view = reader.read(part)
        try:
            run.on_read(part.size)
            with scheduler.turn(part):  # the digest takes the parts in order
                digests.update(view)
            md5 = hashlib.md5(view).digest()  # noqa: S324 - S3's Content-MD5
            known = checkpoint.etags.get(part.number)
            if known is None or multipart.md5_hex(known) != md5.hex():
                etag = multipart.upload_part(run.dest_client, checkpoint.upload, part.number,
                                             multipart.PartBody(view), base64.b64encode(md5).decode())
                if multipart.md5_hex(etag) not in (None, md5.hex()):
                    raise errors.UpstreamError(f"storage acknowledged part {part.number} of "
                                               f"{checkpoint.upload.what} with a foreign ETag")
                run.on_written(part.size)
                with lock:
                    checkpoint.etags[part.number] = etag
            with lock:
                checkpoint.md5s[part.number] = md5
            if part.number not in counted:
                run.reporter.advance(part.size)
        finally:
            pool.put(view.obj)  # type: ignore[arg-type]

    try:
        scheduler.run(workers, work, "copy-part")
    finally:
        reader.close()
    checkpoint.digested = scheduler.passed
    if scheduler.error is not None:
        raise scheduler.error
    return checkpoint.digested >= plan.count


def _finish(run: CopyRun, plan: PartPlan, checkpoint: multipart.Checkpoint) -> Outcome:
    assert checkpoint.digests is not None
    checksum = checkpoint.digests.hexdigests()[run.algorithm]
    require_equal(run.algorithm, checksum, run.reference, run.source.what)
    verified_by = ["content-md5"]
    if run.reference is not None:
        verified_by.insert(0, "source-checksum")
    missing = [n for n in range(1, plan.count + 1) if n not in checkpoint.etags or n not in checkpoint.md5s]
    if missing:  # pragma: no cover - every part was read in this or an earlier request
        raise errors.InternalError(f"parts {missing[:5]} of the copy are unaccounted for")
    etags = {n: checkpoint.etags[n] for n in range(1, plan.count + 1)}
    etag = multipart.complete(run.dest_client, checkpoint.upload, etags,
                              create_only_for=run.job_id if run.create_only else None)
    if run.create_only:
        create_only.check_ours(head_object(run.dest_client, run.destination.bucket, run.destination.key),
                               run.job_id)
    expected = multipart.expected_etag([checkpoint.md5s[n] for n in range(1, plan.count + 1)])
    dest = run.destination
    if etag.strip('"').endswith(f"-{plan.count}"):
        verified_by.append("etag")
        if etag != expected:
            remove_if_ours(run.dest_client, dest.bucket, dest.key, etag)
            raise errors.ChecksumMismatch(f"s3://{dest.bucket}/{dest.key} was assembled from other parts than "
                                          "the ones uploaded; the destination was removed")
    written = run.reference is not None
    if not written:
        etag, written = _write_back(run, etag, checksum)
    return Outcome(COMPLETED, Strategy.STREAM, plan.size, checksum=checksum, etag=etag, parts_done=plan.count,
                   parts_total=plan.count, part_size=plan.part_size, verified_by=verified_by, written=written)


def _write_back(run: CopyRun, etag: str, checksum: str) -> tuple[str, bool]:
    """Without a source checksum the value is known only after the last byte,
    and S3 fixes metadata at CreateMultipartUpload: store it with a
    metadata-replacing self-copy pinned to the object just completed."""
    dest = run.destination
    info = head_object(run.dest_client, dest.bucket, dest.key)
    if info.etag != etag:
        log.warning("destination replaced right after the copy; checksum not written",
                    extra={"object": info.what})
        return etag, False
    write_metadata(run.dest_client, info, {run.algorithm: checksum})
    after = head_object(run.dest_client, dest.bucket, dest.key)
    return after.etag, after.stored.get(run.algorithm) == checksum

