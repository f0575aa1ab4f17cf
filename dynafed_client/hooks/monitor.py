"""``monitor:`` progress lines on stdout, the way Dynafed reads them.

Dynafed scans the hook's stdout with ``"monitor: %s %s %f %ld %ld %ld"``
(src, dst, average rate, instant rate, bytes transferred, elapsed seconds;
``gfal-copy -v`` prints the same line with rates in bytes/s). So: URLs
without spaces, integers for everything after the average, one line at
least every ``interval`` seconds while the copy runs, bytes never decreasing.
"""
from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

_QUERY = re.compile(r"[?#].*$")


def printable_url(url: str) -> str:
    """The URL for a ``monitor:`` line: no query (presigned signatures), no whitespace."""
    return re.sub(r"\s", lambda m: f"%{ord(m.group()):02X}", _QUERY.sub("", url)) or "-"


def monitor_line(src: str, dst: str, avg_bps: float, inst_bps: float, bytes_done: int, elapsed_s: float) -> str:
    """One ``monitor:`` line (no newline)."""
    return (f"monitor: {printable_url(src)} {printable_url(dst)} {int(max(avg_bps, 0))} "
            f"{int(max(inst_bps, 0))} {int(max(bytes_done, 0))} {int(max(elapsed_s, 0))}")


class MonitorPrinter:
    """Prints ``monitor:`` lines as progress arrives, throttled to one per
    ``min_gap`` seconds, plus a heartbeat every ``interval`` seconds."""

    def __init__(self, src: str, dst: str, *, out: IO[str] | None = None, interval: float = 2.0,
                 min_gap: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self._src, self._dst = src, dst
        self._out = out or sys.stdout
        self._interval, self._min_gap = interval, min_gap
        self._clock = clock
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
        """Stop the heartbeat and print the final line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if bytes_done is not None:
            with self._lock:
                self._bytes = max(self._bytes, bytes_done)
        self._emit(force=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._interval / 4):
            with self._lock:
                due = self._clock() - self._printed_at >= self._interval
            if due:
                self._emit(force=True)

    def _emit(self, *, force: bool) -> None:
        with self._lock:
            now = self._clock()
            since = now - self._printed_at
            if not force and (self._bytes <= self._printed_bytes or since < self._min_gap):
                return
            elapsed = now - self._start
            avg = self._bytes / elapsed if elapsed > 0 else 0.0
            inst = (self._bytes - self._printed_bytes) / since if since > 0 else 0.0
            line = monitor_line(self._src, self._dst, avg, inst, self._bytes, elapsed)
            self._printed_bytes, self._printed_at = self._bytes, now
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except (OSError, ValueError):  # Dynafed went away: the copy itself goes on
                pass
            self.lines += 1
