"""The one serving layer of the gateway and the event receiver.

Foreground (``dynafed-fn gateway``, ``dynafed-fn events``, what the local
stack runs): :func:`serve` runs the WSGI app under gunicorn's gthread worker
- one worker (the gateway's running COPYs and the receiver's event hub are
in-process state), ``threads`` threads, HTTP/1.1 keep-alive, chunked
responses as they are produced, ``Expect: 100-continue`` answered by gunicorn
(gunicorn/http/wsgi.py ``create``: ``HTTP/1.1 100 Continue`` before the app
reads the body); gunicorn comes with the client's ``serve`` extra and is
imported (dynafed_client/foreground.py) only here. SIGTERM drains: the worker stops accepting and lets the
requests in flight finish for up to ``graceful_timeout`` seconds
(gunicorn/workers/gthread.py ``ThreadWorker.run``), then the arbiter exits.

Slow clients: every connection's socket has a ``read_timeout`` on each
blocking read and write (``foreground.TimedThreadWorker``), so a stalled client
holds one thread for at most that long and is then disconnected. A COPY
client that hangs up makes gunicorn's write fail; gunicorn then closes the
response iterator (``handle_request``'s ``finally: respiter.close()``), which
is what cancels the copy (gateway/transfers.py).

In-process (tests, embedding): :class:`LocalServer`, the same app on a
threaded Werkzeug server with the same read timeout, started and stopped
from a thread; ``stop()`` of a server never started returns at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from dynafed_client.errors import ConfigError

WsgiApp = Callable[..., Any]

#: seconds one socket read or write may block before the connection is closed
READ_TIMEOUT_S = 60.0
#: threads of the one worker: a slow client holds one until READ_TIMEOUT_S
DEFAULT_THREADS = 64
#: seconds requests in flight may take to finish after SIGTERM
GRACEFUL_TIMEOUT_S = 30


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """Where and how a face is served (parsed once, from its CLI options)."""

    host: str = "127.0.0.1"
    port: int = 0
    threads: int = DEFAULT_THREADS
    read_timeout: float = READ_TIMEOUT_S
    graceful_timeout: int = GRACEFUL_TIMEOUT_S
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError("--threads must be at least 1")
        if self.read_timeout <= 0:
            raise ValueError("--read-timeout must be positive")
        if self.graceful_timeout < 0:
            raise ValueError("--graceful-timeout must be >= 0")

    @property
    def bind(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def add_serving_arguments(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    """``--host --port --threads --read-timeout --graceful-timeout`` (both faces)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port,
                        help=f"port to bind (0 = any free port; default {default_port})")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"request threads (default {DEFAULT_THREADS})")
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT_S, metavar="S",
                        help=f"close a connection whose read or write blocks S seconds (default {READ_TIMEOUT_S:g})")
    parser.add_argument("--graceful-timeout", type=int, default=GRACEFUL_TIMEOUT_S, metavar="S",
                        help=f"after SIGTERM, let requests in flight finish for S seconds "
                             f"(default {GRACEFUL_TIMEOUT_S})")


def options_from_args(args: argparse.Namespace, *, log_level: str = "warning") -> ServeOptions:
    """The :class:`ServeOptions` of parsed :func:`add_serving_arguments` options."""
    return ServeOptions(host=args.host, port=args.port, threads=args.threads, read_timeout=args.read_timeout,
                        graceful_timeout=args.graceful_timeout, log_level=log_level)


# -- foreground (gunicorn: dynafed_client/foreground.py) ---------------------------

#: what installs gunicorn for :func:`serve`
SERVE_EXTRA = "dynafed-client[serve]"


def serve(factory: Callable[[], WsgiApp], options: ServeOptions, *,
          on_ready: Callable[[str], None] | None = None, on_exit: Callable[[], None] | None = None) -> int:
    """Serve ``factory()`` under gunicorn until SIGTERM/SIGINT; returns the exit status.

    ``factory`` runs in the worker; ``on_ready(url)`` once the socket is bound
    (port 0: the chosen one); ``on_exit()`` in the worker as it exits.
    Without gunicorn (the client installed without its ``serve`` extra): a
    :class:`~dynafed_client.errors.ConfigError` saying what to install.
    """
    try:
        from dynafed_client import foreground
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "gunicorn":
            raise
        raise ConfigError(f"serving in the foreground needs gunicorn: pip install '{SERVE_EXTRA}'") from None
    return foreground.run(factory, options, on_ready=on_ready, on_exit=on_exit)


# -- in-process -------------------------------------------------------------------

class _QuietHandler(WSGIRequestHandler):
    # the apps log their own lines; werkzeug's access log would print raw request lines
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LocalServer:
    """An app on a threaded Werkzeug server in this process (tests, embedding).

    Same read timeout as :func:`serve` (socketserver applies ``timeout`` with
    ``settimeout``; http.server closes the connection on it).
    """

    def __init__(self, app: WsgiApp, *, host: str = "127.0.0.1", port: int = 0,
                 read_timeout: float = READ_TIMEOUT_S, name: str = "server") -> None:
        handler = type("_TimedHandler", (_QuietHandler,), {"timeout": read_timeout})
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=handler)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._name = name
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def host(self) -> str:
        return str(self._server.host)

    @property
    def port(self) -> int:
        return int(self._server.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalServer:
        """Serve from a daemon thread."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=self._name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (at once if never started; twice is harmless)."""
        if self._thread is not None:
            self._server.shutdown()  # only a running serve_forever answers shutdown(): else it waits for ever
            self._thread.join(timeout=5)
            self._thread = None
        if not self._closed:
            self._closed = True
            self._server.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
