"""The K_SINK side of the function apps in unit tests: a recording
``sink_transport`` (dynafed_runtime.events.Transport) that answers 202.

    sink = RecordingSink()
    app = create_app(config, s3=lambda store: s3, sink_transport=sink)
    ...
    sink.events("job-1")          # parsed with the SDK, one subject's
    sink.events(flush=app)        # after delivering what the app's emitter still queues
"""
from __future__ import annotations

from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_http_event

__all__ = ["RecordingSink"]


class RecordingSink:
    """Records every POST as ``(headers, body)`` in ``sent``; answers 202."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, str], bytes]] = []

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> int:
        self.sent.append((headers, body))
        return 202

    def events(self, subject: str | None = None, *, flush: Any = None) -> list[Any]:
        """The recorded CloudEvents parsed with the SDK (``from_http_event``),
        only ``subject``'s if given; ``flush``: a function app whose emitter
        delivers its queue first."""
        if flush is not None:
            flush.extensions["dynafed_fn"].events.flush()
        parsed = [from_http_event(HTTPMessage(h, b)) for h, b in self.sent]
        return [e for e in parsed if subject is None or e.get_attributes().get("subject") == subject]
