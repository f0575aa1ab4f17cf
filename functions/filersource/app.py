"""The filer source: ``POST /`` takes one SeaweedFS filer notification (the
filer's webhook) and sends the checksum request it implies to ``$K_SINK``.

Answers (the filer logs anything but 2xx as a dead letter; weed 4.48 does not
retry it, see delivery.py):

* ``200 {"outcome": "ignored", "reason": ...}``: nothing to do (a delete, a
  directory, a path not watched, a multipart part, a metadata-only update).
* ``202 {"outcome": "forwarded", "id": ..., "subject": ..., "sink_status": ...}``:
  the sink took the ``ch.cern.dynafed.checksum.requested`` event.
* ``503 UPSTREAM_UNAVAILABLE``: the sink did not take it after the bounded
  attempts.
* ``502 UPSTREAM_ERROR``: the sink refused the event (a permanent 4xx).
* ``400 INVALID_REQUEST``: not a filer notification.

Every outcome is logged and counted (``dynafed_fn_source_notifications``).
Runs on the shared runtime (auth: the webhook's ``bearer_token`` is
``DYNAFED_FN_AUTH_TOKEN``; request ids, JSON logs, problem+json, probes).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify
from prometheus_client import CollectorRegistry, Counter

from dynafed_contract.filersource import EVENT_TYPE, Forward, Ignored, decide, openapi_document, parse_notification
from dynafed_runtime import errors
from dynafed_runtime.app import FunctionContext, FunctionSpec, create_function_app
from dynafed_runtime.config import Config
from dynafed_runtime.events import to_binary
from dynafed_runtime.incoming import Incoming
from functions.filersource.delivery import Delivery, Transport, requests_transport
from functions.filersource.settings import SourceSettings

NAME = "filersource"
#: This deployable never calls S3: it runs without a stores file.
USES_STORES = False
#: A notification lists every chunk of the object (about 200 bytes each):
#: far more than the runtime's 64 KiB request limit for large objects.
MAX_NOTIFICATION_BYTES = 8 * 1024**2

log = logging.getLogger("dynafed_fn.filersource")


class SourceMetrics:
    """Counters on the app's own registry (served by ``/metrics``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "dynafed_fn_source_notifications", "Filer notifications by outcome (forwarded, ignored, "
            "failed: sink unavailable, rejected: sink refused) and reason", ["outcome", "reason"],
            registry=registry)
        self.replies = Counter("dynafed_fn_source_replies", "CloudEvent replies of the sink, by what became "
                               "of them", ["outcome"], registry=registry)


class FilerSource:
    """The ``POST /`` handler with its collaborators."""

    def __init__(self, settings: SourceSettings, delivery: Delivery, source: str,
                 extensions: Mapping[str, str]) -> None:
        self.settings = settings
        self.delivery = delivery
        self.source = source
        self.extensions = dict(extensions)
        self.metrics: SourceMetrics | None = None

    def handle(self, incoming: Incoming, ctx: FunctionContext) -> Response:
        assert self.metrics is not None
        if incoming.event_type is not None:
            raise errors.InvalidRequest("expected the filer's webhook JSON, not a CloudEvent")
        notification = parse_notification(incoming.data)
        s = self.settings
        decision = decide(notification, s.watches, store=s.store, algorithms=s.algorithms, write=s.write,
                          buckets_folder=s.buckets_folder)
        if isinstance(decision, Ignored):
            self.metrics.notifications.labels("ignored", decision.reason).inc()
            # a watched object whose name the checksum contract refuses is never
            # checksummed: say so; everything else ignored is routine
            level = logging.WARNING if decision.reason == "invalid-name" else logging.DEBUG
            log.log(level, "notification ignored", extra={"path": notification.path[:256], "reason": decision.reason})
            return jsonify({"outcome": "ignored", "reason": decision.reason})
        return self._forward(decision)

    def _forward(self, decision: Forward) -> Response:
        assert self.metrics is not None
        headers, body = to_binary(self._event(decision))
        what = f"event {decision.id} ({decision.subject[:200]})"
        try:
            answer = self.delivery.send(headers, body, what=what)
        except errors.FunctionError as exc:
            outcome = "failed" if exc.retryable else "rejected"
            self.metrics.notifications.labels(outcome, "sink").inc()
            log.error("checksum request not delivered: %s", exc.detail,
                      extra={"event_id": decision.id, "outcome": outcome})
            raise
        self.metrics.notifications.labels("forwarded", "").inc()
        self.metrics.replies.labels(self.delivery.pass_reply(answer)).inc()
        log.info("checksum request forwarded", extra={"event_id": decision.id, "subject": decision.subject[:256],
                                                      "sink_status": answer.status})
        response = jsonify({"outcome": "forwarded", "id": decision.id, "subject": decision.subject,
                            "sink_status": answer.status})
        response.status_code = 202
        return response

    def _event(self, decision: Forward) -> Any:
        from cloudevents.core.v1.event import CloudEvent

        attributes: dict[str, Any] = {**self.extensions, "type": EVENT_TYPE, "source": self.source,
                                      "id": decision.id, "specversion": "1.0", "subject": decision.subject,
                                      "datacontenttype": "application/json"}
        if decision.time is not None:
            attributes["time"] = decision.time
        return CloudEvent(attributes, dict(decision.data))


def create_app(config: Config | None = None, *, env: Mapping[str, str] | None = None,
               transport: Transport | None = None) -> Flask:
    """App factory. Tests inject ``transport`` (a recording or failing sink)."""
    config = config or Config.from_env(os.environ if env is None else env, function=NAME,
                                       stores_required=USES_STORES)
    settings = SourceSettings.from_config(config)
    assert config.sink is not None  # SourceSettings refuses a config without one
    delivery = Delivery(config.sink, transport or requests_transport(), attempts=settings.attempts,
                        backoff_s=settings.backoff_s, timeout_s=settings.sink_timeout_s,
                        reply_sink=settings.reply_sink)
    source = FilerSource(settings, delivery, source=f"/dynafed-fn/{config.service}",
                         extensions=config.ce_extensions)
    spec = FunctionSpec(name=NAME, handler=source.handle, openapi=openapi_document,
                        max_body_bytes=MAX_NOTIFICATION_BYTES)
    app = create_function_app(spec, config)
    source.metrics = SourceMetrics(app.extensions["dynafed_fn"].metrics.registry)
    log.info("watching %s; sink %s", ", ".join(map(str, settings.watches)), config.sink)
    return app
