"""A job id names exactly one source -> destination.

The job id is the idempotency key: re-posting it must never start a second,
different copy. So the first request of a job *binds* the id to its
request's identity (``request_identity``: the source and the destination;
not ``verify`` or ``overwrite``, which are options of the same copy, and
not a URL's query, so a re-signed presigned URL of the same object is the
same request). A later request with the same id and another identity gets
``409 JOB_ID_CONFLICT`` before anything is read or written.

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

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from dynafed_contract.copy import JOB_ID_METADATA, CopyRequest
from dynafed_runtime import errors
from functions.copy.create_only import is_refused

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

