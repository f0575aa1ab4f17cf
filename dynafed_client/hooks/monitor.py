"""``monitor:`` progress lines on stdout, the way Dynafed reads them.

Dynafed scans the hook's stdout with ``"monitor: %s %s %f %ld %ld %ld"``
(src, dst, average rate, instant rate, bytes transferred, elapsed seconds;
``gfal-copy -v`` prints the same line with rates in bytes/s). How it reads
them (indigo-dc/dynafed ``src/plugins/dmlite/UgrDMLite.cc``,
``fileCopyPull``/``fileCopyPush``): each poll waits up to one second
(``waitResult(id, 1)``) and parses only the *next* unread ``monitor: ``
(found with ``strstr``, anywhere in the output), into ``char buf[1024]``
buffers with an unbounded ``%s``. So:

* at most one line per second (:data:`MIN_GAP_S`): more builds a lag that
  only grows;
* each URL cut to :data:`MAX_URL_CHARS` and without spaces: a longer one
  would overflow Dynafed's stack buffers;
* integers after the average, bytes never decreasing, a line at least every
  ``interval`` seconds while the copy runs;
* diagnostics (:meth:`MonitorPrinter.note`, :func:`diagnostic_line`) are
  other stdout lines that never contain ``monitor:`` (Dynafed reads only
  stdout: the stock hooks run gfal-copy with ``2>&1``).
"""
from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

_QUERY = re.compile(r"[?#].*$")
#: Dynafed polls once a second and parses one line per poll
MIN_GAP_S = 1.0
#: Dynafed's scan buffers are 1024 bytes each (unbounded ``%s``): keep each URL well under
MAX_URL_CHARS = 400
DIAGNOSTIC_PREFIX = "dynafed-fn: "


def printable_url(url: str) -> str:
    """The URL for a ``monitor:`` line: no query (presigned signatures), no
    whitespace, at most :data:`MAX_URL_CHARS` characters (the end kept: it
    names the file; ``...`` marks the cut)."""
    text = re.sub(r"\s", lambda m: f"%{ord(m.group()):02X}", _QUERY.sub("", url)) or "-"
    if len(text) > MAX_URL_CHARS:
        text = text[:120] + "..." + text[-(MAX_URL_CHARS - 123):]
    return text


def diagnostic_line(text: str) -> str:
    """A one-line diagnostic for stdout that Dynafed cannot mistake for
    progress: prefixed, on one line, no ``monitor:`` anywhere in it."""
    flat = " ".join(text.split())
    return DIAGNOSTIC_PREFIX + re.sub(r"monitor:", "monitor-", flat, flags=re.IGNORECASE)[:2000]


def monitor_line(src: str, dst: str, avg_bps: float, inst_bps: float, bytes_done: int, elapsed_s: float) -> str:
    """One ``monitor:`` line (no newline)."""
    return (f"monitor: {printable_url(src)} {printable_url(dst)} {int(max(avg_bps, 0))} "
            f"{int(max(inst_bps, 0))} {int(max(bytes_done, 0))} {int(max(elapsed_s, 0))}")


class MonitorPrinter:
    """Prints ``monitor:`` lines as progress arrives, never two within
    ``min_gap`` seconds (at least :data:`MIN_GAP_S`), plus a heartbeat every
    ``interval`` seconds (at least ``min_gap``); the final line waits for its
    turn (``sleep``) rather than crowd the one before."""

    def __init__(self, src: str, dst: str, *, out: IO[str] | None = None, interval: float = 2.0,
                 min_gap: float = MIN_GAP_S, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._src, self._dst = src, dst
        self._out = out or sys.stdout
        self._min_gap = max(min_gap, MIN_GAP_S)
        self._interval = max(interval, self._min_gap)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._start = clock()
        self._bytes = 0
        self._printed_bytes = 0
        self._printed_at = self._start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lines = 0

    def start(self) -> MonitorPrinter:
        """Print the first line and start the heartbeat."""
        self._emit(force=True)
        self._thread = threading.Thread(target=self._heartbeat, name="monitor", daemon=True)
        self._thread.start()
        return self

    def update(self, bytes_done: int) -> None:
        """Record progress (cumulative bytes); prints if due."""
        with self._lock:
            if bytes_done > self._bytes:
                self._bytes = bytes_done
        self._emit(force=False)

    def finish(self, bytes_done: int | None = None) -> None:
        """Stop the heartbeat and print the final line (after the minimum gap)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if bytes_done is not None:
            with self._lock:
                self._bytes = max(self._bytes, bytes_done)
        with self._lock:
            wait = self._min_gap - (self._clock() - self._printed_at) if self.lines else 0.0
        if wait > 0:
            self._sleep(wait)
        self._emit(force=True, final=True)

    def note(self, text: str) -> None:
        """A diagnostic line on the same stdout (:func:`diagnostic_line`); not throttled."""
        self._write(diagnostic_line(text))

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._interval / 4):
            self.tick()

    def tick(self) -> None:
        """One heartbeat check: a line if ``interval`` passed since the last one."""
        with self._lock:
            due = self._clock() - self._printed_at >= self._interval
        if due:
            self._emit(force=True)

    def _emit(self, *, force: bool, final: bool = False) -> None:
        with self._lock:
            now = self._clock()
            since = now - self._printed_at
            if self.lines and since < self._min_gap and not final:
                return  # never two lines within the gap, forced or not (finish waited for it)
            if not force and self._bytes <= self._printed_bytes:
                return
            elapsed = now - self._start
            avg = self._bytes / elapsed if elapsed > 0 else 0.0
            inst = (self._bytes - self._printed_bytes) / since if since > 0 else 0.0
            line = monitor_line(self._src, self._dst, avg, inst, self._bytes, elapsed)
            self._printed_bytes, self._printed_at = self._bytes, now
            self._write_locked(line)
            self.lines += 1

    def _write(self, line: str) -> None:
        with self._lock:
            self._write_locked(line)

    def _write_locked(self, line: str) -> None:
        try:
            self._out.write(line + "\n")
            self._out.flush()
        except (OSError, ValueError):  # Dynafed went away: the copy itself goes on
            pass
