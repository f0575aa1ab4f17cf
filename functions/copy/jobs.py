"""Jobs: the idempotency rules and this worker's memory of running jobs.

A job is named by its ``job_id``. Re-submitting it is always safe:

* the destination already holds the verified object → ``already-present``
  (same size, and the destination's stored checksum equals the source's —
  or, when the source stores none, the destination carries this job's id and
  this source version's tag, which the copy writes only after verifying);
* the job's multipart upload is open → the work resumes (``in-progress``
  answers), whichever worker gets the request (``witness.py``);
* otherwise the copy starts (again).

``JobTable`` keeps, per job, the checkpoint of the last request on this
worker (upload id, parts done, and the running digest of the bytes streamed
so far), so a resume that lands on the same worker needs to re-read nothing.
A resume elsewhere re-reads the copied prefix from the source to rebuild the
digest (reads only; parts already uploaded are not sent again).
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import JOB_ID_METADATA, SOURCE_ETAG_METADATA
from dynafed_runtime import errors
from dynafed_runtime.digests import DigestSet
from dynafed_runtime.objects import ObjectInfo, head_object
from functions.copy.multipart import Upload
from functions.copy.parts import PartPlan


@dataclasses.dataclass
class Checkpoint:
    """Where a job stopped on this worker."""

    job_id: str
    #: ETag of the witness part: the identity of the upload (see witness.py)
    witness: str
    upload: Upload
    plan: PartPlan
    #: part number -> ETag of the parts the upload holds
    etags: dict[int, str]
    #: part number -> MD5 (digest) of the part, when known
    md5s: dict[int, bytes]
    #: running digest over parts 1..digested (streamed copies only)
    digests: DigestSet | None = None
    digested: int = 0
    touched: float = 0.0

    @property
    def bytes_done(self) -> int:
        return self.plan.bytes_of(self.etags)


class JobTable:
    """This worker's running jobs (one request per job at a time) and idle checkpoints."""

    def __init__(self, *, ttl: float = 3600.0, max_checkpoints: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_checkpoints
        self._clock = clock
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._checkpoints: dict[str, Checkpoint] = {}

    @contextlib.contextmanager
    def claim(self, job_id: str) -> Iterator[bool]:
        """Yields True when this request may work on the job, False when
        another request of the same job is running on this worker."""
        with self._lock:
            busy = job_id in self._running
            if not busy:
                self._running.add(job_id)
        try:
            yield not busy
        finally:
            if not busy:
                with self._lock:
                    self._running.discard(job_id)

    def running(self, job_id: str) -> bool:
        """Whether a request of ``job_id`` is working on this worker right now."""
        with self._lock:
            return job_id in self._running

    def get(self, job_id: str) -> Checkpoint | None:
        with self._lock:
            self._expire()
            return self._checkpoints.get(job_id)

    def put(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            checkpoint.touched = self._clock()
            self._checkpoints[checkpoint.job_id] = checkpoint
            self._expire()

    def drop(self, job_id: str) -> None:
        with self._lock:
            self._checkpoints.pop(job_id, None)

    def _expire(self) -> None:
        now = self._clock()
        for job_id in [j for j, c in self._checkpoints.items() if now - c.touched > self._ttl]:
            del self._checkpoints[job_id]
        while len(self._checkpoints) > self._max:
            oldest = min(self._checkpoints.values(), key=lambda c: c.touched)
            del self._checkpoints[oldest.job_id]


def head_destination(client: Any, ref: ObjectRef) -> ObjectInfo | None:
    """The destination's HEAD, or None when there is no object (a missing
    bucket is an error: NoSuchBucket)."""
    try:
        return head_object(client, ref.bucket, ref.key)
    except errors.NoSuchBucket:
        raise
    except errors.NoSuchObject:
        return None


def present_checksum(dest: ObjectInfo | None, *, size: int, algorithm: str, reference: str | None,
                     job_id: str, source_tag: str | None, tag_is_content: bool = False) -> str | None:
    """The destination's verified checksum when it already holds the source's
    bytes, else None. Evidence, in order: the source's stored checksum equals
    the destination's; or the destination was written by a verified copy of
    this very source version (its ``dynafed-source-etag``) — by this job, or
    by any job when the tag is an S3 content hash (``tag_is_content``: an
    MD5 or multipart ETag names the bytes, an HTTP ETag only a version)."""
    if dest is None or dest.size != size:
        return None
    value = dest.stored.get(algorithm)
    if value is None:
        return None
    if reference is not None:
        return value if value == reference else None
    if source_tag is None or dest.metadata.get(SOURCE_ETAG_METADATA) != source_tag:
        return None
    return value if tag_is_content or dest.metadata.get(JOB_ID_METADATA) == job_id else None


def check_overwrite(dest: ObjectInfo | None, *, job_id: str, overwrite: bool) -> None:
    """``overwrite: false`` refuses to replace another object (409); an
    object written by this very job (an earlier attempt) may be replaced."""
    if dest is None or overwrite or dest.metadata.get(JOB_ID_METADATA) == job_id:
        return
    raise errors.DestinationExists(
        f"{dest.what} exists and differs from the source; set \"overwrite\": true to replace it")
