"""What both subscriptions (:class:`~dynafed_client.events.hub.Subscription`,
in-process, and :class:`~dynafed_client.events.remote.RemoteSubscription`,
polling another process) share: a queue of events read by ``get`` or by
iteration until closed. A subclass fills ``_queue``, says ``closed`` and puts
``None`` on close to end a blocked reader."""
from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

from dynafed_client.events.model import ReceivedEvent


class QueuedEvents:
    """The reading side of a subscription's queue."""

    closed: Any  # an attribute in one subclass, a property in the other
    _queue: queue.Queue[ReceivedEvent | None]

    def get(self, timeout: float | None = None) -> ReceivedEvent | None:
        """The next event, or None after ``timeout`` seconds or once closed."""
        if self.closed and self._queue.empty():
            return None
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[ReceivedEvent]:
        while True:
            event = self.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        self.close()
