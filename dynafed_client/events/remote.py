"""Follow the events of a receiver running in another process (e.g. the local
stack's, at ``state.json`` ``events``) through its ``GET /events`` long poll.

Has the same ``subscribe(subject)`` shape as :class:`EventHub`, so the client
takes either as its ``events`` source.
"""
from __future__ import annotations

import queue
import threading

import requests

from dynafed_client.events.model import ReceivedEvent
from dynafed_client.events.queued import QueuedEvents


class RemoteSubscription(QueuedEvents):
    """Polls the receiver in a daemon thread; ``get``/iterate like :class:`Subscription`."""

    def __init__(self, base_url: str, subject: str | None, *, poll_wait: float = 2.0,
                 session: requests.Session | None = None) -> None:
        self.subject = subject
        self._url = base_url.rstrip("/") + "/events"
        self._poll_wait = poll_wait
        self._session = session or requests.Session()
        self._session.trust_env = False
        self._queue: queue.Queue[ReceivedEvent | None] = queue.Queue()
        self._stop = threading.Event()
        self.errors = 0
        # only events after subscription time: ask the receiver where it is now
        self._since = self._current_seq()
        self._thread = threading.Thread(target=self._run, name="event-poll", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def _current_seq(self) -> int:
        try:
            answer = self._session.get(self._url, params={"since": "-1"}, timeout=5)
            return int(answer.json().get("seq", 0))
        except (requests.RequestException, ValueError, AttributeError):
            self.errors += 1
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            params: dict[str, str] = {"since": str(self._since), "wait": str(self._poll_wait)}
            if self.subject is not None:
                params["subject"] = self.subject
            try:
                answer = self._session.get(self._url, params=params, timeout=self._poll_wait + 5)
                body = answer.json()
                for item in body.get("events", []):
                    event = ReceivedEvent.from_json(item)
                    self._since = max(self._since, event.seq)
                    self._queue.put(event)
            except (requests.RequestException, ValueError, KeyError, AttributeError):
                self.errors += 1
                self._stop.wait(0.5)

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._queue.put(None)

    def __enter__(self) -> RemoteSubscription:
        return self


class RemoteEventSource:
    """``subscribe(subject)`` against a receiver at ``base_url``."""

    def __init__(self, base_url: str, *, poll_wait: float = 2.0) -> None:
        self.base_url = base_url
        self.poll_wait = poll_wait

    def subscribe(self, subject: str | None) -> RemoteSubscription:
        return RemoteSubscription(self.base_url, subject, poll_wait=self.poll_wait)
