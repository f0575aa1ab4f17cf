"""The body of an accepted COPY: runs the copy in a thread, streams markers.

The first Perf Marker goes out at once (clients and proxies see bytes
flowing), then one whenever the byte count moved and ``min_gap_s`` passed,
and at least every ``heartbeat_s`` (HTTP-TPC asks for one every 30 s; we
keep it at a few seconds). Whatever happens (an exception in the copy, a
timeout, a bug here) the body ends with ``success: Created`` or
``failure: <reason>``; only a client that hangs up stops it early — and
then the copy is cancelled (``cancel`` is set: the copy stops, a push
deletes what it wrote), since nobody is left to learn its outcome and a
retry of the COPY must not race it.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

from dynafed_client import errors as ce
from dynafed_client.gateway.errors import GatewayError
from dynafed_client.gateway.perfmarkers import SUCCESS_LINE, failure_line, perf_marker

log = logging.getLogger("dynafed_client.gateway")

#: ``run(report)`` does the copy, calling ``report(bytes_so_far)``; returns the
#: final byte count (or None) or raises
CopyRun = Callable[[Callable[[int], None]], "int | None"]

_URL_QUERY = re.compile(r"(https?://[^\s?#]+)[?#]\S*")


def describe(exc: BaseException) -> str:
    """A one-line, secret-free reason for a ``failure:`` line."""
    if isinstance(exc, GatewayError):
        text = exc.reason
    elif isinstance(exc, ce.FunctionError):
        text = f"{exc.code}: {exc.detail}" if exc.detail else exc.code
    elif isinstance(exc, ce.ClientError):
        text = exc.message
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return _URL_QUERY.sub(r"\1?<redacted>", text)


class TransferStream:
    """Iterable of text chunks: Perf Marker blocks, then the final line."""

    def __init__(self, run: CopyRun, *, heartbeat_s: float = 2.0, min_gap_s: float = 0.5,
                 timeout_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 name: str = "copy", cancel: threading.Event | None = None,
                 on_end: Callable[[], None] | None = None) -> None:
        if heartbeat_s <= 0 or min_gap_s < 0:
            raise ValueError("heartbeat_s must be > 0 and min_gap_s >= 0")
        self._run = run
        self._heartbeat = heartbeat_s
        self._min_gap = min_gap_s
        self._timeout = timeout_s
        self._clock = clock
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._bytes = 0
        self._final: int | None = None
        self._error: BaseException | None = None
        #: set when the client hung up (the run should stop)
        self.cancel = cancel if cancel is not None else threading.Event()
        self._on_end = on_end
        self._started = False
        self._ended = False

    # -- the copy thread -----------------------------------------------------

    def _report(self, n: int) -> None:
        with self._lock:
            if n > self._bytes:
                self._bytes = n
        self._wake.set()

    def _work(self) -> None:
        try:
            final = self._run(self._report)
            with self._lock:
                self._final = final
        except BaseException as exc:
            with self._lock:
                self._error = exc
        finally:
            self._done.set()
            self._wake.set()
            self._end()

    def _end(self) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        if self._on_end is not None:
            self._on_end()

    def close(self) -> None:
        """The body is dropped: cancel the run; if it never started, it has ended."""
        self.cancel.set()
        if not self._started:
            self._end()

    # -- the response body ---------------------------------------------------

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._stream()
        except GeneratorExit:
            if not self._done.is_set():
                log.info("%s: client went away; cancelling the copy", self._name)
                self.cancel.set()
            raise
        except Exception as exc:  # a bug here must still end the body properly
            log.exception("%s: marker stream failed", self._name)
            yield failure_line(f"gateway error: {describe(exc)}")

    def _stream(self) -> Iterator[str]:
        start = self._clock()
        thread = threading.Thread(target=self._work, name=f"tpc-{self._name}", daemon=True)
        self._started = True
        thread.start()
        yield perf_marker(0)
        sent, last_emit = 0, self._clock()
        while True:
            self._wake.clear()
            now = self._clock()
            with self._lock:
                current = self._bytes
            if self._done.is_set():
                break
            if self._timeout is not None and now - start >= self._timeout:
                self.cancel.set()
                yield failure_line(f"timed out after {int(self._timeout)} s")
                return
            since = now - last_emit
            if since >= self._heartbeat or (current > sent and since >= self._min_gap):
                yield perf_marker(current)
                sent, last_emit = current, now
                continue
            wait = self._heartbeat - since
            if current > sent:
                wait = min(wait, self._min_gap - since)
            if self._timeout is not None:
                wait = min(wait, self._timeout - (now - start))
            self._wake.wait(max(0.005, wait))
        with self._lock:
            error, final, current = self._error, self._final, self._bytes
        if error is not None:
            if current > sent:
                yield perf_marker(current)
            yield failure_line(describe(error))
            return
        total = max(current, final or 0)
        if total > sent or sent == 0:
            yield perf_marker(total)
        yield SUCCESS_LINE
