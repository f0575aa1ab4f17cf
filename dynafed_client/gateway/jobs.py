"""One job per (source, destination): the gateway's COPY job ids and the
copies running here.

A COPY's job id is derived from what it copies (``job_id_for``), so a client
retrying a COPY — FTS does, after gfal2 has DELETEd the failed destination —
names the same job. The copy function keeps a job's checkpoint under its id
(an open multipart upload), so the retry resumes it; and because the gateway
lets only one COPY of a job run at a time (``RunningCopies.begin`` cancels
the older one and waits until it has ended), the retry replaces the older
copy instead of racing it (two writers of one destination could otherwise
leave the older one's bytes behind after the newer one's DELETE).
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dynafed_client.gateway import errors
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlDestination, UrlSource


def job_id_for(source: ObjectRef | UrlSource, destination: ObjectRef | UrlDestination) -> str:
    """``gw-<32 hex>`` from the source and destination as shown (URLs without
    their query: a presigned URL re-signed for the retry is the same object)."""
    document = {"source": source.to_json(), "destination": destination.to_json()}
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"gw-{digest[:32]}"


class CopyHandle:
    """A running COPY: ``cancel`` asks it to stop, ``done`` is set once it has."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.done = threading.Event()


class RunningCopies:
    """The COPY jobs running in this gateway, at most one per job id."""

    def __init__(self, *, stop_wait_s: float = 60.0) -> None:
        self._stop_wait = stop_wait_s
        self._lock = threading.Lock()
        self._running: dict[str, CopyHandle] = {}

    def running(self, job_id: str) -> CopyHandle | None:
        with self._lock:
            return self._running.get(job_id)

    def begin(self, job_id: str) -> CopyHandle:
        """Register a new run of ``job_id``; an older one is cancelled and
        waited for first (Conflict if it does not stop in ``stop_wait_s``)."""
        while True:
            with self._lock:
                older = self._running.get(job_id)
                if older is None:
                    handle = CopyHandle()
                    self._running[job_id] = handle
                    return handle
            older.cancel.set()
            if not older.done.wait(self._stop_wait):
                raise errors.Conflict("an earlier COPY of the same source and destination is still stopping; "
                                      "retry later")

    def end(self, job_id: str, handle: CopyHandle) -> None:
        """The run is over (whatever its outcome)."""
        with self._lock:
            if self._running.get(job_id) is handle:
                del self._running[job_id]
        handle.done.set()

    @contextmanager
    def run(self, job_id: str) -> Iterator[CopyHandle]:
        handle = self.begin(job_id)
        try:
            yield handle
        finally:
            self.end(job_id, handle)
