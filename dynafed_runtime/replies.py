"""The one answer policy for requests that arrived as CloudEvents.

Knative's Broker delivers an event to a Trigger's subscriber and treats the
answer as follows (knative/eventing v1.22, ``pkg/broker/filter/filter_handler.go``,
``Handler.writeResponse``): a 2xx with an empty body is success; a 2xx whose
body is a valid CloudEvent (binary ``ce-*`` headers or structured) is success
*and* that event goes back into the Broker (TTL ``knativebrokerttl`` kept,
decremented by the ingress); any other 2xx body fails the delivery with 502,
which is retried and then dead-lettered. A non-2xx answer is retried or not
by ``SelectiveRetry`` (``pkg/kncloudevents/retries.go``): 5xx, 404, 408, 409
and 429 are retried, every other status is not.

The design chosen here: **a CloudEvent request is answered with exactly one
reply CloudEvent** (binary mode, status 200) carrying the result, whose id is
derived from the incoming event (``caused_id``), and that event is *not* also
emitted to ``$K_SINK``. When there is nothing to report (an S3 notification
of a removal, a duplicate of a delivery already running here) the answer is
an empty 202. Why a reply rather than "empty 202, results to ``$K_SINK``":

* the reply travels the Broker's own at-least-once path: the channel
  dispatcher forwards it to the Broker ingress with the Trigger's retries and
  dead-letter sink, and a failure there fails the delivery. ``$K_SINK``
  emission is fire-and-forget by contract (a slow sink must never stall the
  work), so a result sent only there can be lost while the delivery counts
  as done;
* a caller that posts a CloudEvent directly (no Broker, no ``$K_SINK``) still
  gets its result;
* a redelivered event produces a reply with the same id, which the
  receiver's ``source`` + ``id`` de-duplication drops.

Events that are not *the* result (copy progress, scrub mismatches) still go
to ``$K_SINK``, with derived ids where they have a cause.

Plain JSON requests keep their JSON answers, and their result event goes to
``$K_SINK`` as before (``answer`` does both cases).

Errors of a CloudEvent request keep their problem+json body (same ``code``)
but their status is chosen by ``delivery_status`` so that Eventing retries
exactly the retryable ones: a permanent error goes to the dead-letter sink on
the first attempt instead of after every retry re-read the object.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Response

from dynafed_runtime.errors import FunctionError
from dynafed_runtime.events import build_event, derived_id, to_binary
from dynafed_runtime.incoming import Incoming

if TYPE_CHECKING:
    from dynafed_runtime.app import FunctionContext

#: Statuses Knative eventing retries (``SelectiveRetry``), besides every 5xx.
EVENTING_RETRIED_4XX = frozenset({404, 408, 409, 429})
#: What a permanent error whose usual status Eventing would retry (404, 409)
#: becomes on a CloudEvent delivery: 422, never retried, still an error.
PERMANENT_DELIVERY_STATUS = 422
#: What a retryable error whose usual status Eventing would not retry (412)
#: becomes on a CloudEvent delivery.
RETRYABLE_DELIVERY_STATUS = 503


def eventing_retries(status: int) -> bool:
    """Whether Knative eventing retries a delivery answered with ``status``
    (``SelectiveRetry`` in ``pkg/kncloudevents/retries.go``)."""
    return status >= 500 or status in EVENTING_RETRIED_4XX


def delivery_status(error: FunctionError) -> int:
    """The HTTP status of ``error`` when the request was a CloudEvent: retried
    by Eventing if and only if the error is retryable (the single mapping).

    ============================  =========  ==========================
    error                         JSON       CloudEvent delivery
    ============================  =========  ==========================
    retryable, 429 / 5xx          unchanged  unchanged (retried)
    retryable, other (412)        412        503 (retried)
    permanent, 404 / 409          404 / 409  422 (not retried: DLS at once)
    permanent, other 4xx          unchanged  unchanged (not retried)
    ============================  =========  ==========================
    """
    status = error.status
    if error.retryable:
        return status if eventing_retries(status) else RETRYABLE_DELIVERY_STATUS
    return PERMANENT_DELIVERY_STATUS if eventing_retries(status) else status


def caused_id(incoming: Incoming, emitted_type: str, *qualifiers: str) -> str | None:
    """The id of an event emitted because of ``incoming``: derived from its
    source, id and the emitted type (plus ``qualifiers`` when one incoming
    event causes several events of a type). None for a JSON request (no
    event to derive from: the event gets a random id)."""
    if not incoming.is_cloudevent:
        return None
    assert incoming.event_source is not None and incoming.event_id is not None
    return derived_id(incoming.event_source, incoming.event_id, emitted_type, *qualifiers)


def reply_event(ctx: FunctionContext, event_type: str, subject: str | None, data: Mapping[str, Any], *,
                event_id: str) -> Response:
    """The reply CloudEvent (binary mode, status 200), with ``$K_CE_OVERRIDES``."""
    event = build_event(event_type, source=ctx.events.source, subject=subject, data=data,
                        extensions=ctx.config.ce_extensions, event_id=event_id)
    headers, body = to_binary(event)
    return Response(body, status=200, headers=headers)


def no_reply() -> Response:
    """Success with nothing to report: 202 and an empty body (the filter's
    "empty response" case)."""
    return Response(status=202)


def answer(incoming: Incoming, ctx: FunctionContext, event_type: str, subject: str | None,
           data: Mapping[str, Any], *, event_id: str | None = None) -> Response | dict[str, Any]:
    """Deliver a request's result: the reply event of a CloudEvent request
    (not emitted), or the JSON body of a JSON request (and the event to
    ``$K_SINK``). ``event_id`` overrides the derived id (e.g. one keyed on a
    copy job rather than on one delivery of it)."""
    if incoming.is_cloudevent:
        event_id = event_id or caused_id(incoming, event_type)
        assert event_id is not None
        return reply_event(ctx, event_type, subject, data, event_id=event_id)
    ctx.events.emit(event_type, subject, data, event_id=event_id)
    return dict(data)
