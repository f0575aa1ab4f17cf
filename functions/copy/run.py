"""What a copy engine gets (``CopyRun``) and gives back (``Outcome``)."""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from dynafed_contract.checksum import ObjectRef
from functions.copy.jobs import JobTable
from functions.copy.progress import ProgressReporter
from functions.copy.settings import CopySettings
from functions.copy.source import CopySource


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
    strategy: str
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
