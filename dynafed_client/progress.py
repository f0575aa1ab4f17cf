"""Copy progress: the update type, callbacks, and a terminal progress bar.

A progress callback is any ``Callable[[CopyProgress], None]``. The library
calls it from the thread reading the ndjson stream and/or from the thread
pumping received CloudEvents; :class:`MonotonicProgress` merges both so the
callback sees byte counts that never decrease, whichever source is ahead.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any

from dynafed_contract import events as ce_types


@dataclasses.dataclass(frozen=True)
class CopyProgress:
    """One progress update of a copy job."""

    job_id: str
    bytes: int
    total: int | None = None
    rate_bps: float | None = None
    elapsed_s: float | None = None
    #: ``stream`` (ndjson line), ``event`` (CloudEvent) or ``result`` (final answer)
    origin: str = "stream"

    @property
    def fraction(self) -> float | None:
        """Done fraction in [0, 1], None when the total is unknown."""
        if not self.total:
            return None if self.total is None else 1.0
        return min(1.0, self.bytes / self.total)


ProgressCallback = Callable[[CopyProgress], None]

_BYTES_KEYS = ("bytes", "bytes_done", "bytes_transferred", "bytes_copied")
_TOTAL_KEYS = ("total", "size", "total_bytes")


def _first_int(data: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


def progress_from_line(line: Mapping[str, Any], job_id: str) -> CopyProgress | None:
    """A progress update from an ndjson ``{"type": "progress", ...}`` line."""
    done = _first_int(line, _BYTES_KEYS)
    if done is None:
        return None
    rate = line.get("rate_bps")
    elapsed = line.get("elapsed_s")
    return CopyProgress(job_id=str(line.get("job_id") or job_id), bytes=done,
                        total=_first_int(line, _TOTAL_KEYS),
                        rate_bps=float(rate) if isinstance(rate, int | float) else None,
                        elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else None,
                        origin="stream")


def progress_from_event(event_type: str, subject: str | None, data: Any) -> CopyProgress | None:
    """A progress update from a copy CloudEvent (started, progress, completed), else None."""
    if event_type not in (ce_types.COPY_STARTED, ce_types.COPY_PROGRESS, ce_types.COPY_COMPLETED):
        return None
    if not isinstance(data, Mapping):
        return None
    total = _first_int(data, _TOTAL_KEYS)
    done = _first_int(data, _BYTES_KEYS)
    if event_type == ce_types.COPY_STARTED:
        done = 0
    elif event_type == ce_types.COPY_COMPLETED and done is None:
        done = total
    if done is None:
        return None
    rate = data.get("rate_bps")
    elapsed = data.get("elapsed_s")
    return CopyProgress(job_id=str(subject or data.get("job_id") or ""), bytes=done, total=total,
                        rate_bps=float(rate) if isinstance(rate, int | float) else None,
                        elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else None,
                        origin="event")


class MonotonicProgress:
    """Forwards updates to ``callback`` only when bytes grow (or the total
    first becomes known); thread-safe. Exceptions from the callback are not
    allowed to break the copy: they are swallowed and counted."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.last: CopyProgress | None = None
        self.callback_errors = 0

    def __call__(self, update: CopyProgress) -> None:
        with self._lock:
            last = self.last
            if last is not None:
                grew = update.bytes > last.bytes
                learnt_total = update.total is not None and last.total is None
                if not grew and not learnt_total:
                    return
                if not grew:
                    update = dataclasses.replace(update, bytes=last.bytes)
                if update.total is None and last.total is not None:
                    update = dataclasses.replace(update, total=last.total)
            self.last = update
            if self._callback is None:
                return
            try:
                self._callback(update)
            except Exception:  # a broken progress display must not fail a copy
                self.callback_errors += 1


class TerminalProgressBar:
    """A progress callback drawing bytes, rate and ETA on a terminal (tqdm).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, description: str = "copy", *, file: IO[str] | None = None,
                 disable: bool | None = None, mininterval: float = 0.2) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=None, unit="B", unit_scale=True, unit_divisor=1024, desc=description,
                         file=file or sys.stderr, disable=disable, mininterval=mininterval,
                         dynamic_ncols=True, leave=True)
        self._lock = threading.Lock()
        self._shown = 0

    def __call__(self, update: CopyProgress) -> None:
        with self._lock:
            if update.total is not None and self._bar.total != update.total:
                self._bar.total = update.total
                self._bar.refresh()
            delta = update.bytes - self._shown
            if delta > 0:
                self._bar.update(delta)
                self._shown = update.bytes

    def close(self) -> None:
        with self._lock:
            self._bar.close()

    def __enter__(self) -> TerminalProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingProgress:
    """A callback that keeps every update (tests, scripts)."""

    def __init__(self) -> None:
        self.updates: list[CopyProgress] = []
        self._lock = threading.Lock()

    def __call__(self, update: CopyProgress) -> None:
        with self._lock:
            self.updates.append(update)

    @property
    def bytes_seen(self) -> list[int]:
        return [u.bytes for u in self.updates]


def format_rate(bps: float | None) -> str:
    """``123.4 MiB/s`` style rate."""
    if bps is None:
        return "-"
    return f"{format_bytes(bps)}/s"


def format_bytes(n: float) -> str:
    """``1.5 GiB`` style size."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
