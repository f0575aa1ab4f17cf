"""The foreground half of the serving layer: gunicorn (``serving.serve`` imports
this module only when it is called, so the client library does not need
gunicorn; ``pip install 'dynafed-client[serve]'`` brings it).

What it does is described in ``dynafed_client/serving.py``.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from dynafed_client.serving import READ_TIMEOUT_S, ServeOptions, WsgiApp
from dynafed_contract.problem import http_message, refusal_code, render


class _TimedSocket(socket.socket):
    """A connection whose "blocking" mode blocks at most ``read_timeout`` per call.

    gthread switches a connection between non-blocking (in its poller) and
    blocking (in a thread) with ``setblocking``; blocking here means a
    timeout, so no read or write in a thread waits for ever.
    """

    read_timeout: float

    @classmethod
    def adopt(cls, sock: socket.socket, read_timeout: float) -> _TimedSocket:
        timed = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        timed.read_timeout = read_timeout
        timed.settimeout(read_timeout)
        return timed

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.read_timeout)
        else:
            super().setblocking(False)


class _QuietTimeouts(logging.Filter):
    """One line, not a traceback, when a slow client's connection times out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TimeoutError):
            record.msg, record.args, record.exc_info, record.levelno, record.levelname = (
                "closed a connection idle for longer than the read timeout", (), None, logging.INFO, "INFO")
        return True


#: gunicorn quotes the offending request line in its message: never echo much of it
_MAX_REFUSAL_DETAIL = 200


def write_refusal(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own refusals (400 bad request line, 414, 417, 431, 501) as the
    contract's problem+json, as the functions answer them; drop-in for
    ``gunicorn.util.write_error`` (installed in each worker)."""
    status = int(status_int)
    code = refusal_code(status)
    detail = str(mesg)[:_MAX_REFUSAL_DETAIL] if status < 500 else "unexpected internal error"
    util.write_nonblock(sock, http_message(render(code, detail or str(reason), status=status), str(reason)))


class TimedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with a read/write timeout on every connection."""

    read_timeout: float = READ_TIMEOUT_S

    def init_process(self) -> None:
        self.read_timeout = float(getattr(self.app, "read_timeout", READ_TIMEOUT_S))
        self.log.error_log.addFilter(_QuietTimeouts())
        util.write_error = write_refusal  # this worker process only
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        # the first time a connection goes to a thread (just accepted): give it the timeout
        if not isinstance(conn.sock, _TimedSocket):
            conn.sock = _TimedSocket.adopt(conn.sock, self.read_timeout)
        super().enqueue_req(conn)


class _Application(BaseApplication):  # type: ignore[misc]
    """gunicorn running one app built in the worker (nothing forked holds threads or open files)."""

    def __init__(self, factory: Callable[[], WsgiApp], options: ServeOptions, *,
                 on_ready: Callable[[str], None] | None, on_exit: Callable[[], None] | None) -> None:
        self._factory = factory
        self._options = options
        self._on_ready = on_ready
        self._on_exit = on_exit
        self.read_timeout = options.read_timeout
        super().__init__()

    def load_config(self) -> None:
        options = self._options
        settings: dict[str, Any] = {
            "bind": [options.bind],
            "workers": 1,
            "worker_class": f"{__name__}.TimedThreadWorker",
            "threads": options.threads,
            "graceful_timeout": options.graceful_timeout,
            "keepalive": int(max(1, options.read_timeout)),  # idle keep-alive sits in the poller, not a thread
            "accesslog": None,  # the apps log their own lines (without query strings)
            "errorlog": "-",
            "loglevel": options.log_level.lower(),
            # gunicorn >= 23 opens one control socket per user that every gunicorn would share
            "control_socket_disable": True,
            "when_ready": self._ready,
            "worker_exit": self._worker_exit,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> WsgiApp:
        return self._factory()

    def _ready(self, arbiter: Any) -> None:
        if self._on_ready is not None:
            host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
            self._on_ready(f"http://{f'[{host}]' if ':' in host else host}:{port}")

    def _worker_exit(self, arbiter: Any, worker: Any) -> None:
        if self._on_exit is not None:
            self._on_exit()


def run(factory: Callable[[], WsgiApp], options: ServeOptions, *,
        on_ready: Callable[[str], None] | None = None, on_exit: Callable[[], None] | None = None) -> int:
    """``serving.serve`` under gunicorn (see there)."""
    try:
        _Application(factory, options, on_ready=on_ready, on_exit=on_exit).run()
    except SystemExit as done:  # the arbiter ends with sys.exit
        return int(done.code or 0) if not isinstance(done.code, str) else 1
    return 0
