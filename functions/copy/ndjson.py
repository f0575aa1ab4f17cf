"""The ``application/x-ndjson`` answer: one JSON object per line, flushed as
produced.

The copy runs on its own thread; the response generator (the request's
thread) writes a ``started`` line at once, then every progress update, a
heartbeat (the last line repeated with a fresh ``elapsed_s``) whenever
``heartbeat_s`` passes without one — so proxies with an idle timeout
(Knative's ``idleTimeoutSeconds``) see bytes — and finally one ``result``
line, or one ``error`` line: by then the status line (200) is long sent, so
a failure cannot change it; clients must read the last line.

If the client goes away, the generator is closed: the copy is told to stop
at its next part boundary (its upload stays open, the job resumes on
re-post).
"""
from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, stream_with_context

from dynafed_contract.copy import error_line
from dynafed_runtime import errors

NDJSON = "application/x-ndjson"
Work = Callable[[Callable[[dict[str, Any]], None], threading.Event], dict[str, Any]]

_RESULT = object()
_ERROR = object()


def _dump(line: dict[str, Any]) -> bytes:
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def ndjson_response(job_id: str, work: Work, *, first_line: dict[str, Any], heartbeat_s: float,
                    on_error: Callable[[errors.FunctionError], None] | None = None) -> Response:
    """A streamed response running ``work(publish, cancel)`` on its own thread."""
    lines: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()

    def target() -> None:
        try:
            result = work(lines.put, cancel)
        except BaseException as exc:  # rendered as the error line
            lines.put((_ERROR, exc))
        else:
            lines.put((_RESULT, result))

    thread = threading.Thread(target=target, name=f"copy-{job_id[:24]}", daemon=True)

    def generate() -> Iterator[bytes]:
        thread.start()
        last = first_line
        started = time.monotonic()
        try:
            yield _dump(first_line)
            while True:
                try:
                    item = lines.get(timeout=heartbeat_s)
                except queue.Empty:
                    yield _dump({**last, "elapsed_s": round(time.monotonic() - started, 3)})
                    continue
                if isinstance(item, tuple) and item and item[0] is _RESULT:
                    yield _dump(item[1])
                    return
                if isinstance(item, tuple) and item and item[0] is _ERROR:
                    error = errors.translate(item[1])
                    if on_error is not None:
                        on_error(error)
                    yield _dump(error_line(job_id, errors.problem(error)))
                    return
                last = item
                yield _dump(item)
        finally:
            if thread.is_alive():
                cancel.set()  # the client left, or the server is closing the response

    response = Response(stream_with_context(generate()), mimetype=NDJSON)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx-style proxies: do not buffer
    return response

