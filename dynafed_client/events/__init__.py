"""CloudEvents receiver: de-duplication, routing by subject, an ndjson log.

``python -m dynafed_client.events serve --port P [--host 127.0.0.1] [--log FILE]``
runs it (the local stack's ``$K_SINK``; in Knative, a Trigger's subscriber).
In-process: :class:`EventHub` (``subscribe(job_id)``) and :class:`EventReceiver`
(a threaded HTTP server feeding a hub). :class:`RemoteEventSource` follows a
receiver running in another process through ``GET /events``.
"""
from __future__ import annotations

from dynafed_client.events.hub import EventHub, Subscription
from dynafed_client.events.log import EventLog, read_log
from dynafed_client.events.model import ReceivedEvent
from dynafed_client.events.parse import MalformedEvent, parse_http
from dynafed_client.events.remote import RemoteEventSource, RemoteSubscription
from dynafed_client.events.server import EventReceiver

__all__ = ["EventHub", "EventLog", "EventReceiver", "MalformedEvent", "ReceivedEvent", "RemoteEventSource",
           "RemoteSubscription", "Subscription", "parse_http", "read_log"]
