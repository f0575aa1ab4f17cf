"""CloudEvents emission to ``$K_SINK`` (binary mode), never blocking the work.

Events go through a bounded in-memory queue to one sender thread. When the
sink is slow or dead the queue fills and further events are dropped (counted,
logged as a warning at most every few seconds) instead of stalling the caller.
Each delivery is retried a bounded number of times on connection errors and
on the statuses Knative eventing itself retries (404, 408, 409, 429, 5xx).

Ids of events caused by an incoming event are *derived* from it
(``derived_id``: a name-based UUID of source, id and the emitted type), so a
redelivered event yields the same ids and the receiver's ``source`` + ``id``
de-duplication drops the copy. Only events with no cause to derive from get a
random id.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import http.client
import logging
import queue
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("dynafed_fn.events")

Transport = Callable[[str, dict[str, str], bytes], int]

#: Namespace of every derived event id (a fixed random UUID: ids stay stable
#: across releases, and cannot collide with other producers' name-based ids).
EVENT_ID_NAMESPACE = uuid.UUID("6b1f3c52-8a0e-4f43-9d7e-2c5f0b9a41d7")


def derived_id(*parts: str) -> str:
    """A deterministic event id: UUIDv5 of ``parts`` (e.g. the incoming
    event's source and id and the emitted type). The parts are joined with a
    NUL, which no CloudEvent attribute contains, so different part lists never
    yield the same name."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\0".join(parts)))


def build_event(event_type: str, *, source: str, subject: str | None, data: Mapping[str, Any],
                extensions: Mapping[str, str] | None = None, event_id: str | None = None) -> Any:
    """A CloudEvents 1.0 event (SDK object) with JSON data; a random id unless
    ``event_id`` (see ``derived_id``) is given."""
    from cloudevents.core.v1.event import CloudEvent

    attributes: dict[str, Any] = {
        "type": event_type,
        "source": source,
        "id": event_id or str(uuid.uuid4()),
        "specversion": "1.0",
        "time": datetime.now(UTC),
        "datacontenttype": "application/json",
    }
    if subject:
        attributes["subject"] = subject
    attributes.update(extensions or {})
    return CloudEvent(attributes, dict(data))


def to_binary(event: Any) -> tuple[dict[str, str], bytes]:
    """Headers and body of ``event`` in binary content mode."""
    from cloudevents.core.bindings.http import to_binary_event

    message = to_binary_event(event)
    return dict(message.headers), bytes(message.body or b"")


def http_transport(verify: bool | str = True, *, timeout: float = 2.0) -> Transport:
    """POST over one kept-alive ``http.client`` connection per sink.

    The emitter's one sender thread is the only caller. ``requests`` cost
    ~1.4 CPU ms per event here against ~0.1 ms for this (docs/performance.md,
    the 4 KiB checksum's budget). ``verify``: True (certifi) or the CA bundle
    path of :mod:`dynafed_net.trust`, for an https sink. A kept-alive
    connection the sink closed in between is reopened once; any other failure
    is the caller's (the emitter retries and counts drops).
    """
    connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}
    contexts: list[ssl.SSLContext] = []  # built on the first https connection, reused by every reconnect

    def tls_context() -> ssl.SSLContext:
        if not contexts:
            import certifi

            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else certifi.where())
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            contexts.append(context)
        return contexts[0]

    def connect(parts: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        host = parts.hostname or ""
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=tls_context())
        if parts.scheme != "http":
            raise ValueError(f"sink URL scheme must be http or https, not {parts.scheme!r}")
        return http.client.HTTPConnection(host, parts.port, timeout=timeout)

    def send(url: str, headers: dict[str, str], body: bytes) -> int:
        parts = urllib.parse.urlsplit(url)
        key = (parts.scheme, parts.hostname or "", parts.port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        reused = key in connections
        while True:
            connection = connections.get(key)
            if connection is None:
                connection = connections[key] = connect(parts)
            try:
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (http.client.HTTPException, OSError):
                connections.pop(key, None).close()  # type: ignore[union-attr]
                if not reused:
                    raise
                reused = False  # the sink closed an idle connection: one fresh attempt
                continue
            if response.will_close:
                connections.pop(key).close()
            return response.status

    return send


#: (event type, subject) -> the event's id, or None for a random one.
EventIdRule = Callable[[str, str | None], str | None]


@dataclasses.dataclass
class EmissionScope:
    """Rules for the events one request emits (``EventEmitter.scope``): ids
    from ``event_id``; events of a ``withhold`` type are kept in ``withheld``
    instead of being sent (the request's reply decides what becomes of them)."""

    event_id: EventIdRule
    withhold: frozenset[str] = frozenset()
    withheld: list[Any] = dataclasses.field(default_factory=list)

    def withheld_of(self, event_type: str) -> list[Any]:
        return [e for e in self.withheld if e.get_type() == event_type]


# Per request thread: a context variable is not inherited by threads a request
# starts (part workers), whose events (progress) keep random ids.
_SCOPE: contextvars.ContextVar[EmissionScope | None] = contextvars.ContextVar("dynafed_fn_emission_scope",
                                                                              default=None)


class EventEmitter:
    """Sends events to a sink in the background. ``emit`` never blocks."""

    def __init__(self, sink: str | None, *, source: str, extensions: Mapping[str, str] | None = None,
                 transport: Transport | None = None, max_queue: int = 1000, attempts: int = 3,
                 backoff_s: float = 0.2, on_drop: Callable[[str], None] | None = None) -> None:
        self.sink = sink
        self.source = source
        self.extensions = dict(extensions or {})
        self._transport = transport
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._on_drop = on_drop or (lambda reason: None)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_warning = 0.0
        self.dropped = 0
        self.delivered = 0

    @property
    def enabled(self) -> bool:
        return bool(self.sink)

    def emit(self, event_type: str, subject: str | None, data: Mapping[str, Any], *,
             event_id: str | None = None) -> Any:
        """Queue an event; returns the event (or None when no sink is set).
        ``event_id``: a derived id (``derived_id``) when the event has a cause;
        else the current ``scope``'s rule decides. Within a scope, an event of a
        withheld type is kept there, not sent (even without a sink)."""
        scope = _SCOPE.get()
        if scope is None and not self.sink:
            return None
        if scope is not None and event_id is None:
            event_id = scope.event_id(event_type, subject)
        event = build_event(event_type, source=self.source, subject=subject, data=data,
                            extensions=self.extensions, event_id=event_id)
        if scope is not None and event_type in scope.withhold:
            scope.withheld.append(event)
            return event
        return self.publish(event)

    def publish(self, event: Any) -> Any:
        """Queue an already built event (e.g. one a scope withheld)."""
        if not self.sink:
            return None
        self._ensure_thread()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._drop("queue full")
        return event

    @contextlib.contextmanager
    def scope(self, *, event_id: EventIdRule, withhold: frozenset[str] = frozenset()) -> Iterator[EmissionScope]:
        """Within the block (this thread only), events get ids from
        ``event_id`` and those of a ``withhold`` type are kept, not sent."""
        scope = EmissionScope(event_id=event_id, withhold=withhold)
        token = _SCOPE.set(scope)
        try:
            yield scope
        finally:
            _SCOPE.reset(token)

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait (bounded) until queued events are handled; True if drained."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                if self._transport is None:
                    self._transport = http_transport()
                self._thread = threading.Thread(target=self._run, name="event-sender", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        assert self._transport is not None
        while True:
            event = self._queue.get()
            try:
                self._deliver(event)
            finally:
                self._queue.task_done()

    def _deliver(self, event: Any) -> None:
        assert self._transport is not None and self.sink
        headers, body = to_binary(event)
        for attempt in range(self._attempts):
            try:
                status = self._transport(self.sink, headers, body)
            except Exception:  # connection refused, timeout: the sink is down
                status = 0
            if 200 <= status < 300:
                self.delivered += 1
                return
            if status and status not in (404, 408, 409, 429) and status < 500:
                break  # the sink rejected it; retrying will not help
            if self._queue.qsize() > self._queue.maxsize // 2:
                break  # under pressure: do not let retries hold the queue
            time.sleep(self._backoff_s * (2 ** attempt))
        self._drop(f"delivery failed (last status {status or 'no connection'})")

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        self._on_drop(reason)
        now = time.monotonic()
        if now - self._last_warning > 5.0:
            self._last_warning = now
            log.warning("event not delivered to sink: %s (dropped so far: %d)", reason, self.dropped)
