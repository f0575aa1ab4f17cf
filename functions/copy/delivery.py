"""The copy function's CloudEvent path: one Broker delivery = one slice.

The runtime's reply policy (``dynafed_runtime.replies``) applied to a copy:

* the job ends (``completed`` / ``already-present``) → the reply is the job's
  ``ch.cern.dynafed.copy.completed`` event, not also emitted to ``$K_SINK``;
* the slice ends ``in-progress`` → the reply is the next
  ``ch.cern.dynafed.copy.requested`` (same data, ``job_id`` set). The Broker
  takes a subscriber's reply as a new event, and the ``copy-requested``
  Trigger (knative/base/trigger-copy-requested.yaml) routes it back here: the
  copy drives itself, one slice per delivery, until it ends;
* another request of the same job is already running on this worker (a
  redelivered duplicate) → empty 202: the running one continues the chain, a
  second chain would only duplicate it;
* a push to an http(s) destination (one unsliceable PUT) → 400;
* a permanent failure → its problem status (not retried by Eventing: the
  event goes to the dead-letter sink) and the job's one ``copy.failed`` event
  to ``$K_SINK``; a retryable failure → a retried status and *no*
  ``copy.failed`` (Eventing delivers again; when its retries run out the
  dead-letter sink holds the event).

Ids: the job's own events (started, completed, failed) are keyed on the job id
(``job_event_id``), which a redelivery of the same event maps to the same job
(``service._job_id_from_event``), so every duplicate carries the same ids;
a continuation's id is derived from the delivery it continues.

A CloudEvent slice is at most ``DYNAFED_FN_COPY_EVENT_SLICE_SECONDS`` (20 s):
the answer is written only when the slice ends, and the Service's
``responseStartTimeoutSeconds`` (30 s) bounds the time to the first byte.
Each reply passes the Broker ingress, which decrements ``knativebrokerttl``
(default 255) and drops the event at 0 with a 400, so one chain runs at most
~254 slices (~85 min at 20 s) before the continuation goes to the dead-letter
sink, from where it can be replayed with a fresh TTL.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

from flask import Response

from dynafed_contract import events
from dynafed_contract.copy import IN_PROGRESS
from dynafed_runtime import errors, replies
from dynafed_runtime.app import FunctionContext
from dynafed_runtime.events import derived_id
from dynafed_runtime.incoming import Incoming
from functions.copy.service import CopyService

#: Default of ``DYNAFED_FN_COPY_EVENT_SLICE_SECONDS``: below the copy Service's
#: ``responseStartTimeoutSeconds`` (30 s), since the reply is written at the end.
DEFAULT_EVENT_SLICE_SECONDS = 20.0
#: The events that belong to a job (once each per job), keyed on its id.
JOB_EVENTS = frozenset({events.COPY_STARTED, events.COPY_COMPLETED, events.COPY_FAILED})


def job_event_id(ctx: FunctionContext, event_type: str, job_id: str | None) -> str | None:
    """The id of a job event: the same for every request of the job, so the
    receiver keeps one of each whatever the number of deliveries."""
    if event_type not in JOB_EVENTS or not job_id:
        return None
    return derived_id(ctx.events.source, "copy-job", job_id, event_type)


def event_service(service: CopyService, slice_seconds: float) -> CopyService:
    """The service as CloudEvent deliveries use it: the same job table,
    bindings and drain flag, a slice short enough for one Broker delivery."""
    shallow = copy.copy(service)
    shallow.settings = dataclasses.replace(service.settings,
                                           slice_seconds=min(service.settings.slice_seconds, slice_seconds))
    return shallow


def handle_event(service: CopyService, incoming: Incoming, ctx: FunctionContext) -> Response:
    """Run one slice of the job ``incoming`` asks for; answer by the reply policy."""
    destination = incoming.data.get("destination") if isinstance(incoming.data, dict) else None
    if isinstance(destination, dict) and "url" in destination:
        # A push is one PUT that cannot be cut into slices: it would outlive the
        # time to first byte a delivery has. Refused (400: dead-lettered, not retried).
        raise errors.InvalidRequest("a copy to an http(s) destination cannot run as a CloudEvent delivery; "
                                    "post it as JSON")
    with ctx.events.scope(event_id=lambda event_type, subject: job_event_id(ctx, event_type, subject),
                          withhold=frozenset({events.COPY_COMPLETED, events.COPY_FAILED})) as scope:
        try:
            prepared = service.prepare(incoming)
            result = service.execute(prepared)
        except Exception as exc:
            error = errors.translate(exc)
            if not replies.eventing_retries(replies.delivery_status(error)):
                for failed in scope.withheld_of(events.COPY_FAILED):
                    ctx.events.publish(failed)  # final: this event will not come again
            raise error from None
    job_id = prepared.job_id
    if result["status"] == IN_PROGRESS:
        if "resume" not in result:
            return replies.no_reply()  # a request of this job is running here and continues it
        return continuation(incoming, job_id, ctx)
    completed = job_event_id(ctx, events.COPY_COMPLETED, job_id)
    assert completed is not None
    return replies.reply_event(ctx, events.COPY_COMPLETED, job_id,
                               {k: v for k, v in result.items() if k != "type"}, event_id=completed)


def continuation(incoming: Incoming, job_id: str, ctx: FunctionContext) -> Response:
    """The reply to a slice that ended ``in-progress``: the next
    ``copy.requested`` (the same request, ``job_id`` set), its id derived from
    the delivery it continues."""
    data: dict[str, Any] = dict(incoming.data) if isinstance(incoming.data, dict) else {}
    data["job_id"] = job_id
    event_id = replies.caused_id(incoming, events.COPY_REQUESTED)
    assert event_id is not None
    return replies.reply_event(ctx, events.COPY_REQUESTED, job_id, data, event_id=event_id)
