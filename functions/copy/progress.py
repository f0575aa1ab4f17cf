"""Copy progress: one counter per job, throttled, fanned out to subscribers
(CloudEvents to ``$K_SINK``, the ndjson answer).

``bytes`` counts bytes durably copied (parts the destination holds), so it
never decreases, also across the requests of one job: a resumed request
starts from the parts already in the open multipart upload.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from dynafed_contract import events
from dynafed_contract.copy import progress_line

Clock = Callable[[], float]
Publish = Callable[[dict[str, Any]], None]


class ProgressThrottle:
    """Which updates are worth publishing: at most one per ``interval``
    seconds, plus one whenever the done fraction enters a new ``step``
    (e.g. every 5 %, so a fast copy still shows its course). Never an update
    whose byte count did not grow."""

    def __init__(self, total: int | None, *, interval: float = 0.5, step: float = 0.05,
                 clock: Clock = time.monotonic, start: int = 0) -> None:
        self.total = total
        self.interval = interval
        self.step = step
        self._clock = clock
        self._last_time = clock()
        self._last_bytes = start

    def _bucket(self, done: int) -> int:
        if not self.total:
            return 0
        return int(done / self.total / self.step + 1e-9)

    def should_emit(self, done: int) -> bool:
        """True (and remembered as published) when ``done`` deserves an update."""
        if done <= self._last_bytes:
            return False
        now = self._clock()
        if now - self._last_time >= self.interval or self._bucket(done) > self._bucket(self._last_bytes):
            self._last_time = now
            self._last_bytes = done
            return True
        return False

    def force(self, done: int) -> bool:
        """Publish ``done`` regardless of time (still only when it grew)."""
        if done <= self._last_bytes:
            return False
        self._last_time = self._clock()
        self._last_bytes = done
        return True


class ProgressReporter:
    """Thread-safe byte counter of one request of a job; publishes throttled
    progress lines to every subscriber, in order, under one lock (subscribers
    must not block: queue puts, the non-blocking event emitter)."""

    def __init__(self, job_id: str, total: int | None, *, base: int = 0, interval: float = 0.5,
                 step: float = 0.05, clock: Clock = time.monotonic) -> None:
        self.job_id = job_id
        self.total = total
        self._clock = clock
        self._started = clock()
        self._base = base
        self._done = base
        self._lock = threading.Lock()
        self._throttle = ProgressThrottle(total, interval=interval, step=step, clock=clock, start=base)
        self._subscribers: list[Publish] = []

    def subscribe(self, publish: Publish) -> None:
        self._subscribers.append(publish)

    @property
    def done(self) -> int:
        return self._done

    def line(self) -> dict[str, Any]:
        """The current state as an ndjson progress line."""
        elapsed = max(1e-9, self._clock() - self._started)
        return progress_line(self.job_id, self._done, self.total, (self._done - self._base) / elapsed, elapsed)

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more are durably copied."""
        with self._lock:
            self._set(self._done + nbytes)

    def reach(self, done: int) -> None:
        """At least ``done`` bytes are durably copied (a smaller value is ignored)."""
        with self._lock:
            self._set(done)

    def _set(self, done: int) -> None:
        if done <= self._done:
            return
        self._done = done
        if self._throttle.should_emit(done):
            self._publish()

    def flush(self) -> None:
        """Publish the current count now if it was not published yet (end of a request)."""
        with self._lock:
            if self._throttle.force(self._done):
                self._publish()

    def _publish(self) -> None:
        line = self.line()
        for publish in self._subscribers:
            publish(line)


def event_publisher(emitter: Any, job_id: str) -> Publish:
    """A subscriber sending each update as ``ch.cern.dynafed.copy.progress``."""

    def publish(line: dict[str, Any]) -> None:
        emitter.emit(events.COPY_PROGRESS, job_id, {k: v for k, v in line.items() if k != "type"})

    return publish
