"""EventHub: de-duplicates received events, keeps a bounded history and routes
each event to whoever waits on its subject (the job id).

Knative eventing retries deliveries (404, 408, 409, 429, 5xx), so the same
event can arrive more than once; ``source`` + ``id`` identify it.
"""
from __future__ import annotations

import collections
import dataclasses
import queue
import threading
import time
from collections.abc import Callable

from dynafed_client.events.model import ReceivedEvent
from dynafed_client.events.queued import QueuedEvents


class Subscription(QueuedEvents):
    """Events for one subject, in arrival order. Iterate (until :meth:`close`)
    or call :meth:`get` with a timeout."""

    def __init__(self, hub: EventHub, subject: str | None) -> None:
        self.subject = subject
        self._hub = hub
        self._queue: queue.Queue[ReceivedEvent | None] = queue.Queue()
        self.closed = False

    def _put(self, event: ReceivedEvent) -> None:
        if not self.closed:
            self._queue.put(event)

    def close(self) -> None:
        """Stop receiving; a blocked iterator ends."""
        if not self.closed:
            self.closed = True
            self._hub._unsubscribe(self)
            self._queue.put(None)

    def __enter__(self) -> Subscription:
        return self


class EventHub:
    """Thread-safe: ``publish`` from the receiver's request threads,
    ``subscribe`` / ``since`` from anywhere."""

    def __init__(self, *, history: int = 10_000, dedupe_window: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Condition()
        self._seen: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._dedupe_window = dedupe_window
        self._history: collections.deque[ReceivedEvent] = collections.deque(maxlen=history)
        self._subs: dict[str | None, list[Subscription]] = {}
        self._clock = clock
        self.seq = 0
        self.duplicates = 0

    def publish(self, event: ReceivedEvent) -> ReceivedEvent | None:
        """Record and route ``event``; returns it with ``seq`` set, or None for a duplicate."""
        with self._lock:
            if event.key in self._seen:
                self.duplicates += 1
                return None
            self._seen[event.key] = None
            if len(self._seen) > self._dedupe_window:
                self._seen.popitem(last=False)
            self.seq += 1
            event = dataclasses.replace(event, seq=self.seq, received_at=event.received_at or self._clock())
            self._history.append(event)
            targets = list(self._subs.get(event.subject, ())) + list(self._subs.get(None, ()))
            self._lock.notify_all()
        for sub in targets:
            sub._put(event)
        return event

    def subscribe(self, subject: str | None) -> Subscription:
        """Events whose subject is ``subject`` (None: every event) from now on."""
        sub = Subscription(self, subject)
        with self._lock:
            self._subs.setdefault(subject, []).append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.subject, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._subs.pop(sub.subject, None)

    def since(self, seq: int = 0, *, subject: str | None = None, type_prefix: str | None = None,
              limit: int = 1000, wait: float = 0.0) -> list[ReceivedEvent]:
        """Recorded events with ``seq`` greater than ``seq`` (optionally filtered);
        waits up to ``wait`` seconds for at least one (long poll)."""
        deadline = time.monotonic() + max(0.0, wait)
        with self._lock:
            while True:
                found = [e for e in self._history if e.seq > seq
                         and (subject is None or e.subject == subject)
                         and (type_prefix is None or e.type.startswith(type_prefix))][:limit]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._lock.wait(remaining)

    def __len__(self) -> int:
        return len(self._history)
