"""Jobs: what a job id names, the idempotency rules, and this worker's memory
of running jobs.

A job is named by its ``job_id``. Re-submitting it is always safe:

* the destination already holds the verified object → ``already-present``
  (same size, and the destination's stored checksum equals the source's —
  or, when the source stores none, the destination carries this job's id and
  this source version's tag, which the copy writes only after verifying);
* the job's multipart upload is open → the work resumes (``in-progress``
  answers), whichever worker gets the request (its witness part, ``multipart.py``);
* otherwise the copy starts (again).

``JobTable`` keeps, per job, the checkpoint of the last request on this
worker (upload id, parts done, and the running digest of the bytes streamed
so far), so a resume that lands on the same worker needs to re-read nothing.
A resume elsewhere re-reads the copied prefix from the source to rebuild the
digest (reads only; parts already uploaded are not sent again).

**A job id names exactly one source -> destination.** The job id is the
idempotency key: re-posting it must never start a second, different copy.
So the first request of a job *binds* the id to its request's identity
(``request_identity``: the source and the destination; not ``verify`` or
``overwrite``, which are options of the same copy, and not a URL's query, so
a re-signed presigned URL of the same object is the same request). A later
request with the same id and another identity gets ``409 JOB_ID_CONFLICT``
before anything is read or written.

Where the binding is kept, checked in this order:

* this worker's memory (``Bindings``; bounded, expires with the checkpoints);
* the destination object: every copy writes the identity's digest as
  ``x-amz-meta-dynafed-job-request`` next to ``dynafed-job-id``, so a
  destination written by the job under another identity is caught by any
  worker, after any restart;
* a registry bucket, when ``DYNAFED_FN_COPY_JOB_REGISTRY=<store>/<bucket>``
  is set: one small object per job id, created with ``If-None-Match: *``
  (the store decides between two simultaneous first requests), so the
  same id for *another destination* is caught by any worker. Without a
  registry that case is caught on the same worker only (docs/reliability.md).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import JOB_ID_METADATA, SOURCE_ETAG_METADATA, CopyRequest
from dynafed_runtime import errors
from dynafed_runtime.objects import ObjectInfo, head_object
from functions.copy.create_only import is_refused
from functions.copy.multipart import Checkpoint


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


# -- job id bindings ----------------------------------------------------------

#: user metadata holding the digest of the request identity (see module docstring)
JOB_REQUEST_METADATA = "dynafed-job-request"
#: where the registry keeps one object per job id
REGISTRY_PREFIX = "dynafed-fn/jobs/"


def request_identity(request: CopyRequest) -> str:
    """A short digest of what the job copies from where to where."""
    document = {"source": request.source.to_json(), "destination": request.destination.to_json()}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:32]


def conflict(job_id: str) -> errors.JobIdConflict:
    return errors.JobIdConflict(f"job id '{job_id}' already names another source or destination; "
                                "use a new job id for a different copy")


class Bindings:
    """This worker's job id -> identity table (bounded; entries expire after ``ttl``)."""

    def __init__(self, *, ttl: float = 3600.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._bound: dict[str, tuple[str, float]] = {}

    def bind(self, job_id: str, identity: str) -> None:
        """Remember the binding; JobIdConflict when the id is bound to another identity."""
        with self._lock:
            now = self._clock()
            known = self._bound.get(job_id)
            if known is not None and now - known[1] <= self._ttl and known[0] != identity:
                raise conflict(job_id)
            self._bound.pop(job_id, None)  # re-insert: dict order is age order
            self._bound[job_id] = (identity, now)
            while len(self._bound) > self._max:
                del self._bound[next(iter(self._bound))]


def check_destination(metadata: Any, *, job_id: str, identity: str) -> None:
    """A destination written by this job id under another identity is a conflict."""
    if metadata.get(JOB_ID_METADATA) == job_id and metadata.get(JOB_REQUEST_METADATA, identity) != identity:
        raise conflict(job_id)


class Registry:
    """Job id bindings in a bucket, shared by every worker (create-only objects)."""

    def __init__(self, client: Any, bucket: str, prefix: str = REGISTRY_PREFIX) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def bind(self, job_id: str, identity: str) -> None:
        key = self.prefix + job_id
        body = json.dumps({"job_id": job_id, "request": identity}).encode()
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json",
                                   IfNoneMatch="*")
            return
        except Exception as exc:
            if not is_refused(exc):
                raise errors.translate(exc, what=f"the job registry s3://{self.bucket}") from None
        try:
            stored = json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:
            raise errors.translate(exc, what=f"the job registry s3://{self.bucket}") from None
        if not isinstance(stored, dict) or stored.get("request") != identity:
            raise conflict(job_id)

