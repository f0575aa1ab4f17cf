"""The copy engines' common ground: which engine copies what
(``choose_strategy``), what an engine gets (``CopyRun``) and gives back
(``Outcome``), and the one engine too small for a module of its own
(``put_empty``).

The engines, one module each: ``server_side`` (CopyObject, UploadPartCopy),
``streamed`` (bytes through the function into a multipart upload), ``push``
(one PUT to an http(s) destination), and ``put_empty`` here.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import COMPLETED, Strategy
from dynafed_contract.s3limits import COPY_OBJECT_LIMIT
from dynafed_runtime import errors
from dynafed_runtime.digests import digest_bytes
from dynafed_runtime.objects import head_object
from dynafed_runtime.stores import Store
from functions.copy import create_only
from functions.copy.jobs import JobTable
from functions.copy.progress import ProgressReporter
from functions.copy.settings import CopySettings
from functions.copy.source import CopySource
from functions.copy.verify import require_equal

__all__ = ["CopyRun", "Outcome", "StartInfo", "Strategy", "choose_strategy", "put_empty"]


def choose_strategy(*, size: int, source_store: Store | None, destination_store: Store,
                    settings: CopySettings) -> Strategy:
    """``put-empty`` for zero bytes (no ranged GET of an empty object — that
    is a 416 — and no empty multipart upload); server-side when both objects
    live behind the same endpoint and credentials (``Store.same_backend``):
    one CopyObject up to the threshold (never above S3's 5 GiB CopyObject
    limit), UploadPartCopy parts above; otherwise (another store, an http
    source) stream. A push (http(s) destination) is ``http-put``, decided
    by its destination before this."""
    if size == 0:
        return Strategy.PUT_EMPTY
    if source_store is not None and source_store.same_backend(destination_store):
        if size <= min(settings.server_side_threshold, COPY_OBJECT_LIMIT):
            return Strategy.SERVER_SIDE
        return Strategy.SERVER_SIDE_MULTIPART
    return Strategy.STREAM


@dataclasses.dataclass(frozen=True)
class StartInfo:
    """Announced once an engine knows whether it starts or resumes."""

    resumed: bool
    bytes_done: int
    parts_total: int
    part_size: int


@dataclasses.dataclass
class CopyRun:
    job_id: str
    source: CopySource
    destination: ObjectRef
    dest_client: Any
    algorithm: str
    #: the checksum the copied bytes must have (the source's stored value,
    #: or a server-side copy's pre-read); None: no reference, record what streams
    reference: str | None
    #: the destination's user metadata (the checksum included when the reference is known)
    metadata: dict[str, str]
    #: the destination's content headers (ContentType, ...)
    headers: dict[str, Any]
    settings: CopySettings
    jobs: JobTable
    reporter: ProgressReporter
    #: monotonic time after which no new part is started (the request's slice)
    deadline: float
    #: set when the caller went away: stop at the next part, keep the checkpoint
    cancel: threading.Event
    on_start: Callable[[StartInfo], None] = lambda info: None
    on_read: Callable[[int], Any] = lambda n: None
    on_written: Callable[[int], Any] = lambda n: None

    #: set when the worker is draining (SIGTERM): end the slice early
    draining: threading.Event = dataclasses.field(default_factory=threading.Event)
    #: ``overwrite: false`` and the destination is not this job's: the write
    #: that makes the object appear is create-only (create_only.py)
    create_only: bool = False

    def time_left(self) -> bool:
        return (time.monotonic() < self.deadline and not self.cancel.is_set()
                and not self.draining.is_set())


@dataclasses.dataclass
class Outcome:
    status: str
    strategy: Strategy
    bytes_done: int
    #: the verified checksum (completed) — None while in progress
    checksum: str | None = None
    etag: str | None = None
    parts_done: int = 0
    parts_total: int = 0
    part_size: int = 0
    #: which checks passed (e.g. ["source-checksum", "content-md5", "etag"])
    verified_by: list[str] = dataclasses.field(default_factory=list)
    #: the checksum is stored on the destination (x-amz-meta-<algorithm>)
    written: bool = False


def put_empty(run: CopyRun) -> Outcome:
    """Zero-byte objects: one PutObject. A ranged GET of an empty object is a
    416 and a multipart upload needs at least one part, so they get their own path."""
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
    return Outcome(COMPLETED, Strategy.PUT_EMPTY, 0, checksum=checksum, etag=etag,
                   verified_by=[*verified_by, "size"], written=True)
