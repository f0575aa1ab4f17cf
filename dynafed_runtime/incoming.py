"""What arrived on ``POST /``: a JSON body or a CloudEvent (binary or structured).

A CloudEvent must carry its own non-empty ``id``: Knative eventing delivers
at least once and a redelivery is recognised only by ``source`` + ``id``. The
CloudEvents SDK silently invents a random id when there is none, which would
turn every redelivery into new work, so the id is checked on the wire
before the SDK sees the message, and its absence is a 400 (never retried by
eventing: the event goes to the dead-letter sink at once).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dynafed_contract import jsonbody
from dynafed_contract.errors import ContractViolation
from dynafed_runtime.errors import InvalidRequest, UnsupportedMediaType

CLOUDEVENT_STRUCTURED = "application/cloudevents+json"
JSON = "application/json"
#: Longest event id accepted (the spec sets none; ids are keys of de-duplication tables).
MAX_EVENT_ID_CHARS = 256


@dataclasses.dataclass(frozen=True)
class Incoming:
    """A parsed request body. ``event_type`` is set when it came as a CloudEvent
    (then ``event_id`` and ``event_source`` are set too)."""

    data: Any
    event_type: str | None = None
    event_id: str | None = None
    event_source: str | None = None
    event_subject: str | None = None

    @property
    def is_cloudevent(self) -> bool:
        return self.event_type is not None


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """The request is a CloudEvent (binary ``ce-specversion`` or structured content type)."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    return "ce-specversion" in lowered or content_type == CLOUDEVENT_STRUCTURED


def check_content_type(headers: Mapping[str, str]) -> None:
    """``POST /`` takes JSON (``application/json``), a structured CloudEvent
    (``application/cloudevents+json``) or a binary one (``ce-*`` headers; JSON
    data, the content type may be left out): UnsupportedMediaType (415)
    otherwise. ``text/plain``, form and multipart bodies are what a browser
    sends cross-site without a CORS preflight, so they are never read as JSON."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    if content_type in (JSON, CLOUDEVENT_STRUCTURED) or ("ce-specversion" in lowered and not content_type):
        return
    raise UnsupportedMediaType(f"Content-Type must be {JSON} or {CLOUDEVENT_STRUCTURED}, "
                               f"not {content_type[:60] or 'absent'}")


def parse_incoming(headers: Mapping[str, str], body: bytes) -> Incoming:
    """Parse ``POST /`` into JSON data, unwrapping a CloudEvent when present."""
    check_content_type(headers)
    headers = {str(k).lower(): str(v) for k, v in headers.items()}
    if is_cloudevent(headers):
        return _parse_cloudevent(headers, body)
    return Incoming(data=_json(body))


def _json(body: bytes) -> Any:
    if not body:
        raise InvalidRequest("empty request body; expected JSON")
    try:
        return jsonbody.loads(body)
    except ContractViolation as exc:
        raise InvalidRequest(exc.detail) from None


def _wire_id(headers: Mapping[str, str], body: bytes) -> Any:
    """The ``id`` exactly as sent (None when absent), before the SDK can default it."""
    if "ce-specversion" in headers:
        return headers.get("ce-id")
    try:
        document = jsonbody.loads(body, what="structured CloudEvent")
    except ContractViolation as exc:
        raise InvalidRequest(f"malformed CloudEvent: {exc.detail}") from None
    return document.get("id") if isinstance(document, dict) else None


def _parse_cloudevent(headers: Mapping[str, str], body: bytes) -> Incoming:
    from cloudevents.core.bindings.http import HTTPMessage, from_http_event

    event_id = _wire_id(headers, body)
    if not isinstance(event_id, str) or not event_id.strip():
        raise InvalidRequest("CloudEvent without an id: it could not be told apart from a redelivery")
    if len(event_id) > MAX_EVENT_ID_CHARS:
        raise InvalidRequest(f"CloudEvent id longer than {MAX_EVENT_ID_CHARS} characters")
    try:
        event = from_http_event(HTTPMessage(dict(headers), body))
    except Exception:  # the SDK raises several types for malformed events
        raise InvalidRequest("malformed CloudEvent") from None
    attributes = event.get_attributes()
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        data = _json(data.encode() if isinstance(data, str) else data)
    return Incoming(
        data=data,
        event_type=str(attributes.get("type")),
        event_id=str(attributes.get("id")),
        event_source=str(attributes.get("source")),
        event_subject=attributes.get("subject"),
    )
