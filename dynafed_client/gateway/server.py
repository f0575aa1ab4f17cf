"""GatewayServer: the app on a threaded werkzeug server (HTTP/1.1, chunked).

Threaded so a long COPY (one thread streaming markers) never blocks HEADs;
HTTP/1.1 so responses without Content-Length go out chunked as they are
produced, and connections are kept alive for gfal2/davix.
"""
from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

#: seconds a socket read or write may block before the connection is closed:
#: a slow or stalled client keeps only its own thread (one per connection), and
#: not for ever (socketserver applies it with settimeout; http.server closes the
#: connection on the timeout)
READ_TIMEOUT_S = 60.0


class _Handler(WSGIRequestHandler):
    # the app logs one line per request without the query string; werkzeug's
    # access log would print the raw request line
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class GatewayServer:
    """A gateway app bound to ``host:port`` (port 0 = a free one)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0,
                 read_timeout: float = READ_TIMEOUT_S) -> None:
        handler = type("_TimedHandler", (_Handler,), {"timeout": read_timeout})
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=handler)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.port)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self.port}"

    def start(self) -> GatewayServer:
        """Serve from a daemon thread (tests, embedding)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or KeyboardInterrupt)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
            self._server.server_close()

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
