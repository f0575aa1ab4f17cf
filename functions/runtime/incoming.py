"""What arrived on ``POST /``: a JSON body or a CloudEvent (binary or structured)."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from functions.runtime.errors import InvalidRequest

CLOUDEVENT_STRUCTURED = "application/cloudevents+json"


@dataclasses.dataclass(frozen=True)
class Incoming:
    """A parsed request body. ``event_type`` is set when it came as a CloudEvent."""

    data: Any
    event_type: str | None = None
    event_id: str | None = None
    event_source: str | None = None
    event_subject: str | None = None


def parse_incoming(headers: Mapping[str, str], body: bytes) -> Incoming:
    """Parse ``POST /`` into JSON data, unwrapping a CloudEvent when present."""
    headers = {str(k).lower(): str(v) for k, v in headers.items()}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    is_binary_event = "ce-specversion" in headers
    if is_binary_event or content_type == CLOUDEVENT_STRUCTURED:
        return _parse_cloudevent(headers, body)
    return Incoming(data=_json(body))


def _json(body: bytes) -> Any:
    if not body:
        raise InvalidRequest("empty request body; expected JSON")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("request body is not valid JSON") from None


def _parse_cloudevent(headers: Mapping[str, str], body: bytes) -> Incoming:
    from cloudevents.core.bindings.http import HTTPMessage, from_http_event

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
