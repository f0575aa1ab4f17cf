"""A receive low-water mark while a large response body streams in.

Next to a fast store the reader drains the socket faster than the server
fills it, so each ``recv`` wakes for whatever few segments arrived: ~5 800
wake-ups and ~0.20 CPU-s per GiB on the loopback stack. With ``SO_RCVLOWAT``
at 256 KiB the kernel wakes the reader once that much is queued (``tcp_poll``
and ``tcp_data_ready`` in the kernel's ``net/ipv4/tcp.c`` / ``tcp_input.c``
compare the queue with ``sk_rcvlowat``): ~3 300 wake-ups, ~0.12 CPU-s per GiB;
at 1 MiB ~950 wake-ups, and in the function 0.17 instead of 0.24 worker
CPU-s per GiB for adler32 (docs/performance.md).

The mark must never ask for bytes that will not come: it is raised only
while more than ``level`` + ``MARGIN`` bytes of the body are still to come
(``http.client`` counts them in ``HTTPResponse.length``; the margin covers
what its buffered reader already holds), a read under it asks for no more
than would leave ``level`` + ``MARGIN`` to come (``http.client`` loops on
the socket until it has all it asked for), and it is back at 1 before the
connection can serve another response. Plain TCP only: a TLS socket's queue
holds records, not the body's bytes, and that path is not measured here.
A store that sends slower than ``level`` bytes per read timeout times out
(and is resumed) where without the mark it would trickle on.
"""
from __future__ import annotations

import http.client
import socket

#: bytes queued before the kernel wakes the reader
DEFAULT_LEVEL = 1024 * 1024
#: body bytes beyond the mark that must still be to come (more than any buffered reader holds)
MARGIN = 1024 * 1024


class LowWater:
    """``readinto`` of one ``http.client`` response with the mark managed around it."""

    def __init__(self, response: http.client.HTTPResponse, level: int = DEFAULT_LEVEL) -> None:
        self._response = response
        self._level = level
        self._socket = _plain_socket(response) if level > 1 else None
        self._current = 1

    def readinto(self, view: memoryview) -> int:
        if self._socket is not None:
            left = self._response.length
            under = 0 if self._response.chunked or left is None else left - self._level - MARGIN
            wanted = self._level if under > 0 else 1
            if wanted != self._current:
                self._apply(wanted)
            if self._current != 1:
                view = view[:under]  # the last recv of this read still has `level` bytes to come
        return self._response.readinto(view)

    def close(self) -> None:
        """Put the mark back at 1 (the connection may go back to the pool)."""
        if self._socket is not None and self._current != 1:
            self._apply(1)

    def _apply(self, value: int) -> None:
        assert self._socket is not None
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, value)
            self._current = value
        except OSError:  # the connection is gone: nothing left to wake or to reset
            self._socket = None


def _plain_socket(response: http.client.HTTPResponse) -> socket.socket | None:
    """The plain TCP socket under ``response`` (None for TLS, or if it cannot be found)."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    if type(sock) is socket.socket and sock.type == socket.SOCK_STREAM:
        return sock
    return None
