"""Draining: end copy slices early when the worker is told to stop.

Knative sends SIGTERM on scale-down and gives the pod its grace period;
gunicorn then lets requests in flight finish. A copy slice may have minutes
left, so on SIGTERM every running copy stops taking new parts, finishes the
ones in flight and answers ``in-progress`` — the caller re-posts and the job
resumes on another pod from its multipart checkpoint. The pod leaves in
seconds instead of holding its grace period.

``install`` is called from gunicorn's ``post_worker_init`` hook
(gunicorn.conf.py): it chains a handler in front of gunicorn's own.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

#: set once the worker received SIGTERM (process-wide)
DRAINING = threading.Event()


def install(worker: Any = None) -> None:
    """Chain a SIGTERM handler that sets DRAINING before gunicorn's own."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        DRAINING.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
