"""The client socket of the function worker (worker.py): it first hands out
what the event loop already read, and its blocking reads end at the
request's deadline. Kept apart from worker.py so the app can lift the
deadline without importing gunicorn."""
from __future__ import annotations

import socket
import time
from typing import Any

#: the largest request head buffered by the loop (gunicorn's own limits then apply)
MAX_BUFFERED_HEAD = 64 * 1024
#: the largest body buffered by the loop; the functions' bodies are small
#: (64 KiB limit), larger ones are read by the thread under the deadline
MAX_BUFFERED_BODY = 256 * 1024
_READ_SIZE = 64 * 1024


class DeadlineSocket(socket.socket):
    """A client socket that first hands out what the event loop already read
    (``prebuffer``), and whose blocking reads end at ``deadline``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prebuffer = bytearray()
        self.deadline: float | None = None

    @classmethod
    def adopt(cls, sock: socket.socket) -> DeadlineSocket:
        """The same connection (file descriptor) as ``sock``, as a DeadlineSocket."""
        return cls(sock.family, sock.type, sock.proto, fileno=sock.detach())

    def fill(self) -> bool:
        """Read what has arrived (non-blocking) into ``prebuffer``; False once the peer closed."""
        while len(self.prebuffer) <= MAX_BUFFERED_HEAD + MAX_BUFFERED_BODY:
            try:
                data = super().recv(_READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return True
            if not data:
                return False
            self.prebuffer.extend(data)
        return True

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.prebuffer:
            data = bytes(self.prebuffer[:bufsize])
            del self.prebuffer[:bufsize]
            return data
        if self.deadline is not None and self.gettimeout() != 0.0:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request did not arrive within DYNAFED_FN_REQUEST_READ_TIMEOUT")
            super().settimeout(remaining)
        return super().recv(bufsize, flags)

    def release_deadline(self) -> None:
        """The request has been read: later reads and writes may block (a long answer streams)."""
        self.deadline = None
        super().settimeout(None)


def release_read_deadline(environ: Any) -> None:
    """Called by the app once the body is read (a no-op outside this worker)."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, DeadlineSocket):
        sock.release_deadline()


