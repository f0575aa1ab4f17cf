"""EventReceiver: the receiver app on a small threaded HTTP server.

In-process (tests, the CLI, a hook waiting for its job's events)::

    with EventReceiver(port=0) as receiver:        # starts a background thread
        sink = receiver.url                         # give this to the functions as K_SINK
        with receiver.hub.subscribe(job_id) as sub:
            for event in sub: ...

Foreground (``python -m dynafed_client.events serve``): :meth:`serve_forever`.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from dynafed_client.events.app import EventCallback, create_app
from dynafed_client.events.hub import EventHub
from dynafed_client.events.log import EventLog

#: seconds a socket read or write may block before the connection is closed
#: (a stalled sender keeps only its own thread, and not for ever)
READ_TIMEOUT_S = 60.0


class _QuietHandler(WSGIRequestHandler):
    # one access-log line per progress event would drown the receiver's log
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class EventReceiver:
    """A running (or startable) CloudEvents receiver bound to ``host:port``
    (port 0 = a free one; loopback by default)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, hub: EventHub | None = None,
                 log_path: str | Path | None = None, on_event: Iterable[EventCallback] = (),
                 read_timeout: float = READ_TIMEOUT_S) -> None:
        self.hub = hub or EventHub()
        self.log = EventLog(log_path) if log_path else None
        callbacks: list[Callable[..., None]] = [self.log.append] if self.log else []
        callbacks.extend(on_event)
        handler = type("_TimedHandler", (_QuietHandler,), {"timeout": read_timeout})
        self._server: BaseWSGIServer = make_server(host, port, create_app(self.hub, on_event=callbacks),
                                                   threaded=True, request_handler=handler)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.host)

    @property
    def port(self) -> int:
        return int(self._server.port)

    @property
    def url(self) -> str:
        """Base URL (what a function gets as ``K_SINK``)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> EventReceiver:
        """Serve in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="event-receiver", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted or :meth:`stop`."""
        try:
            self._server.serve_forever()
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving and close the log."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def _close(self) -> None:
        self._server.server_close()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> EventReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
