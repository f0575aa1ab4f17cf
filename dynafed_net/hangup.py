"""Hang up a connection once a cancel event is set, from a watcher thread.

A reader blocked in ``recv`` (the client following a copy's ndjson stream)
or a writer blocked in ``sendall`` (the copy function's PUT to a stalled
push destination) wakes only when its socket is shut down; a plain close
from another thread would not wake it. ``threading.Event`` cannot wait for
two events at once, so the watcher checks every 0.2 s.
"""
from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

__all__ = ["HangUpOnCancel", "shut_down"]

#: how often the watcher looks whether the call ended on its own
_POLL_S = 0.2


def shut_down(sock: socket.socket | None) -> None:
    """Shut ``sock`` down both ways (wakes a thread blocked on it); an already dead socket is fine."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class HangUpOnCancel:
    """Calls ``hang_up`` once when ``cancel`` is set before :meth:`stop`;
    ``fired`` says whether it did. One daemon thread named ``name``."""

    def __init__(self, cancel: threading.Event, hang_up: Callable[[], None], *, name: str) -> None:
        self._cancel, self._hang_up, self._done = cancel, hang_up, threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._watch, name=name, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            if self._cancel.wait(_POLL_S):
                if not self._done.is_set():
                    self.fired = True
                    self._hang_up()
                return

    def stop(self) -> None:
        """The call ended: no hang-up from here on."""
        self._done.set()
