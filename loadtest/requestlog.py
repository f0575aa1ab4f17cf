"""One CSV row per request (``requests.csv``), next to Locust's aggregates.

Locust's CSVs aggregate by name and by second; cold starts (the first
request after zero replicas), bytes/s of large objects, error codes and
"did validation run?" need each request. A listener on Locust's
``request`` event writes the row; the users put the extra fields in the
request's ``context``.
"""
from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

COLUMNS = ("start", "name", "function", "mode", "ok", "code", "response_ms", "ttfb_ms", "bytes", "validated")


class RequestLog:
    """Appends request rows to a CSV file; ``close()`` flushes."""

    def __init__(self, path: Path | str, *, mode: str) -> None:
        self.path = Path(path)
        self.mode = mode
        self._file: IO[str] = self.path.open("w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(COLUMNS)
        self.rows = 0
        self.validated = 0

    def on_request(self, request_type: str = "", name: str = "", response_time: float = 0.0,
                   response_length: int = 0, response: Any = None, context: Mapping[str, Any] | None = None,
                   exception: BaseException | None = None, start_time: float | None = None,
                   **_: Any) -> None:
        """Locust ``request`` event listener."""
        if self._file.closed:  # a request finishing while Locust shuts down
            return
        context = context or {}
        code = context.get("code") or ""
        if exception is not None and not code:
            status = getattr(response, "status_code", 0) or 0
            code = f"HTTP {status}" if status else type(exception).__name__
        ttfb = ""
        elapsed = getattr(response, "elapsed", None)
        status_code: int = getattr(response, "status_code", None) or 0
        if elapsed is not None and status_code:
            ttfb = f"{elapsed.total_seconds() * 1000:.3f}"
        if context.get("ttfb_ms") is not None:
            ttfb = f"{float(context['ttfb_ms']):.3f}"
        validated = 1 if context.get("validated") else 0
        self.validated += validated
        self._writer.writerow((f"{start_time or 0:.6f}", name, context.get("function", ""),
                               context.get("mode", self.mode), 0 if exception is not None else 1, code,
                               f"{response_time:.3f}", ttfb, context.get("bytes", ""), validated))
        self.rows += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_rows(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a requests.csv, typed (floats, ints, bools)."""
    out: list[dict[str, Any]] = []
    with Path(path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            out.append({
                "start": float(row["start"]),
                "name": row["name"],
                "function": row["function"],
                "mode": row["mode"],
                "ok": row["ok"] == "1",
                "code": row["code"],
                "response_ms": float(row["response_ms"]),
                "ttfb_ms": float(row["ttfb_ms"]) if row["ttfb_ms"] else None,
                "bytes": int(row["bytes"]) if row["bytes"] else 0,
                "validated": row["validated"] == "1",
            })
    return out
