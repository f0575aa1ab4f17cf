"""The gunicorn worker class of every function: gthread, but a thread gets a
request only once all of it has arrived.

gunicorn's gthread worker hands a connection to a thread as soon as its
first byte arrives; the thread then blocks reading the head and the body
for as long as the client takes. Eight clients that send
``Content-Length: 100`` and one byte held all threads of a function - and
its in-flight slots - for minutes: every real request got 429 and the
kubelet's probes went unanswered (issue 13, class 2).

Here the event loop reads each request itself, without blocking, into a
per-connection buffer until ``request_framing.ready_to_dispatch`` says it is
complete (or that waiting cannot help), and only then queues it for a
thread. A request that is not complete within
``DYNAFED_FN_REQUEST_READ_TIMEOUT`` seconds (from its first byte) is
answered ``408 REQUEST_TIMEOUT`` (problem+json) and its connection closed;
a silent new or kept-alive connection is closed quietly. Slow clients
therefore hold buffers, never threads, and ``/healthz`` is answered while
they wait.

What the loop could not buffer (a body over ``MAX_BUFFERED_BODY``, one sent
after ``Expect: 100-continue``) is read by the thread from a socket whose
blocking reads end at the same deadline (``DeadlineSocket``): the app turns
that ``TimeoutError`` into a 408 before it admits the request
(dynafed_runtime/app.py), and then lifts the deadline so a long streamed
answer is not cut.

Written against gunicorn 27's ``gunicorn.workers.gthread.ThreadWorker``
(``enqueue_req``, ``murder_pending``, ``TConn.data_ready``, and
``Unreader.take_buffered`` for pipelined leftovers).
"""
from __future__ import annotations

import json
import os
import selectors
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from dynafed_runtime import errors
from dynafed_runtime.config import request_read_timeout
from dynafed_runtime.read_deadline import MAX_BUFFERED_BODY, MAX_BUFFERED_HEAD, DeadlineSocket
from dynafed_runtime.request_framing import ready_to_dispatch


def _timeout_answer() -> bytes:
    body = json.dumps(errors.problem(errors.RequestTimeout(
        "the request's headers and body did not arrive in time"))).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/problem+json\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class BufferingThreadWorker(ThreadWorker):
    """gthread whose event loop buffers each request completely before a thread handles it."""

    def init_process(self) -> None:
        self.read_timeout = request_read_timeout(os.environ)
        self.buffering: dict[Any, float] = {}  # TConn -> deadline
        self.timeout_answer = _timeout_answer()
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        """Called for every request a connection is about to carry: buffer it first."""
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket.adopt(conn.sock)
        sock = conn.sock
        if conn.parser is not None:
            # bytes of the next (pipelined) request the parser already read ahead
            sock.prebuffer[:0] = conn.parser.unreader.take_buffered()
        sock.deadline = time.monotonic() + self.read_timeout
        sock.setblocking(False)
        # what has arrived already (a kept-alive connection that became readable
        # usually holds its whole request): no extra round through the poller
        try:
            still_open = sock.fill()
        except OSError:
            still_open = False
        if sock.prebuffer and self._ready(sock):
            self._dispatch(conn)
        elif not still_open:
            self._close(conn)
        else:
            self.buffering[conn] = sock.deadline
            self.poller.register(sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _ready(self, sock: DeadlineSocket) -> bool:
        return ready_to_dispatch(bytes(sock.prebuffer), max_head=MAX_BUFFERED_HEAD, max_body=MAX_BUFFERED_BODY)

    def _on_readable(self, conn: Any, _fileobj: Any) -> None:
        sock = conn.sock
        try:
            still_open = sock.fill()
        except OSError:
            still_open = False
        ready = bool(sock.prebuffer) and self._ready(sock)
        if not ready and still_open:
            return
        self._stop_buffering(conn)
        if ready:
            self._dispatch(conn)
        else:  # the peer closed before its request was complete
            self._close(conn)

    def _dispatch(self, conn: Any) -> None:
        conn.data_ready = True  # the bytes are buffered: gthread must not wait for the socket
        super().enqueue_req(conn)

    def _stop_buffering(self, conn: Any) -> None:
        self.buffering.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _close(self, conn: Any, answer: bytes = b"") -> None:
        if answer:
            try:
                conn.sock.send(answer)  # non-blocking, best effort: the client may not read
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also close the connections whose request did not arrive by its deadline."""
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self.buffering.items()):
            if deadline <= now:
                self._stop_buffering(conn)
                # a connection that sent nothing (idle keep-alive, pre-connect) is closed quietly
                partial_request = bool(conn.sock.prebuffer)
                self._close(conn, self.timeout_answer if partial_request else b"")
                if partial_request:
                    self.log.info("request not complete within %.1f s: answered 408", self.read_timeout)
