"""CloudEvents receiver: de-duplication, routing by subject, an ndjson log.

``python -m dynafed_client.events serve --port P [--host 127.0.0.1] [--log FILE]``
runs it (the local stack's ``$K_SINK``; in Knative, a Trigger's subscriber).
In-process: :class:`EventHub` (``subscribe(job_id)``) and :class:`EventReceiver`
(a threaded HTTP server feeding a hub).
"""
from __future__ import annotations

from dynafed_client.events.hub import EventHub, Subscription
from dynafed_client.events.model import ReceivedEvent
from dynafed_client.events.remote import RemoteEventSource, RemoteSubscription

__all__ = ["EventHub", "ReceivedEvent", "RemoteEventSource", "RemoteSubscription", "Subscription"]
