"""A loopback CloudEvents sink that records every delivery and parses it with
the cloudevents SDK (``from_http_event``), the way a real receiver would.

    with EventRecorder() as sink:           # sink.url is a K_SINK
        ...
        events = sink.wait_for(lambda evs: any(e.type.endswith("completed") for e in evs))
        sink.for_subject(job_id)

``status`` sets the HTTP status it answers (e.g. 503 to play a failing sink).
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass(frozen=True)
class Received:
    """One delivered event: parsed attributes and data, plus the raw request."""

    type: str
    id: str
    source: str
    subject: str | None
    data: Any
    headers: dict[str, str]
    body: bytes


def parse_event(headers: dict[str, str], body: bytes) -> Received:
    """Parse an HTTP CloudEvent (binary or structured) with the SDK."""
    from cloudevents.core.bindings.http import HTTPMessage, from_http_event

    event = from_http_event(HTTPMessage(headers, body))
    attributes = event.get_attributes()
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        data = json.loads(data)
    return Received(type=str(attributes["type"]), id=str(attributes["id"]), source=str(attributes["source"]),
                    subject=attributes.get("subject"), data=data, headers=headers, body=body)


class EventRecorder:
    def __init__(self, *, status: int = 202) -> None:
        self.status = status
        self.received: list[Received] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # the sender died mid-request (a killed worker): like the real
                    # receiver (Werkzeug raises ClientDisconnected), record nothing
                    self.close_connection = True
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = parse_event(headers, body)
                except Exception as exc:  # recorded: a test fails on any unparsable event
                    with recorder._cond:
                        recorder.errors.append(f"{type(exc).__name__}: {exc}")
                else:
                    with recorder._cond:
                        recorder.received.append(event)
                        recorder._cond.notify_all()
                self.send_response(recorder.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="event-recorder", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> EventRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EventRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def events(self) -> list[Received]:
        with self._cond:
            return list(self.received)

    def for_subject(self, subject: str) -> list[Received]:
        return [e for e in self.events() if e.subject == subject]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0) -> list[Received]:
        """Block until ``predicate(events)`` holds; the events (raises on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.received)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"events not as expected after {timeout}s: "
                                       f"{[(e.type, e.subject) for e in self.received][-20:]}")
                self._cond.wait(left)
            return list(self.received)
