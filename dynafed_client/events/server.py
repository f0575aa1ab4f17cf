"""EventReceiver: the receiver app in this process; :func:`serve_receiver` in the foreground.

In-process (tests, a hook waiting for its job's events)::

    with EventReceiver(port=0) as receiver:        # starts a background thread
        sink = receiver.url                         # give this to the functions as K_SINK
        with receiver.hub.subscribe(job_id) as sub:
            for event in sub: ...

Foreground (``python -m dynafed_client.events serve``, ``dynafed-fn events``):
:func:`serve_receiver`, under gunicorn like the gateway
(:mod:`dynafed_client.serving`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from dynafed_client.events.app import EventCallback, create_app
from dynafed_client.events.hub import EventHub
from dynafed_client.events.log import EventLog
from dynafed_client.serving import READ_TIMEOUT_S, LocalServer, ServeOptions, WsgiApp, serve


def _receiver_app(hub: EventHub, log: EventLog | None, on_event: Iterable[EventCallback]) -> WsgiApp:
    callbacks: list[EventCallback] = [log.append] if log else []
    callbacks.extend(on_event)
    return create_app(hub, on_event=callbacks)


class EventReceiver(LocalServer):
    """A running (or startable) CloudEvents receiver in this process, bound to
    ``host:port`` (port 0 = a free one; loopback by default)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, hub: EventHub | None = None,
                 log_path: str | Path | None = None, on_event: Iterable[EventCallback] = (),
                 read_timeout: float = READ_TIMEOUT_S) -> None:
        self.hub = hub or EventHub()
        self.log = EventLog(log_path) if log_path else None
        super().__init__(_receiver_app(self.hub, self.log, on_event), host=host, port=port,
                         read_timeout=read_timeout, name="event-receiver")

    @property
    def url(self) -> str:
        """Base URL (what a function gets as ``K_SINK``)."""
        return super().url

    def stop(self) -> None:
        """Stop serving and close the log."""
        super().stop()
        if self.log is not None:
            self.log.close()


def serve_receiver(options: ServeOptions, *, log_path: str | Path | None = None,
                   on_event: Iterable[EventCallback] = (),
                   on_ready: Callable[[str], None] | None = None) -> int:
    """Serve a receiver under gunicorn until SIGTERM/SIGINT (its hub and log live in the worker)."""
    opened: list[EventLog] = []

    def build() -> WsgiApp:
        log = EventLog(log_path) if log_path else None
        opened.extend([log] if log else [])
        return _receiver_app(EventHub(), log, on_event)

    def close() -> None:
        for log in opened:
            log.close()

    return serve(build, options, on_ready=on_ready, on_exit=close)
