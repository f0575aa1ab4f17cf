"""HTTP request → CloudEvents, for the three ways they arrive.

- binary mode: attributes in ``ce-*`` headers, data in the body;
- structured mode: ``Content-Type: application/cloudevents+json``;
- batch mode: ``Content-Type: application/cloudevents-batch+json``, a JSON
  array of structured events (the 2.x SDK has no batch reader, so each
  element goes through its structured reader).

The SDK fills in a missing ``id`` (a fresh UUID) and ``time``; a receiver
that de-duplicates cannot accept that, so required attributes are checked on
the wire first.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dynafed_client.events.model import ReceivedEvent
from dynafed_contract import jsonbody
from dynafed_contract.errors import ContractViolation

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "type", "specversion")
MAX_BATCH = 1000


class MalformedEvent(ValueError):
    """The request is not a valid CloudEvent (answered 400, not retried by eventing)."""


def parse_http(headers: Mapping[str, str], body: bytes) -> list[ReceivedEvent]:
    """Every event in one HTTP request; raises MalformedEvent."""
    from cloudevents.core.bindings.http import HTTPMessage, from_binary_event

    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    if any(k.startswith("ce-") for k in lowered):
        missing = [a for a in REQUIRED if not lowered.get(f"ce-{a}")]
        if missing:
            raise MalformedEvent(f"binary event without {', '.join('ce-' + m for m in missing)}")
        if body and (content_type == "application/json" or content_type.endswith("+json")):
            # the SDK falls back to a string when JSON data does not parse: refuse it as the
            # functions do (the same limits: no 4300-digit integers, no NaN)
            _json(body)
        message = HTTPMessage(headers={k: v for k, v in lowered.items() if k.startswith("ce-") or k == "content-type"},
                              body=body)
        event = _sdk(lambda: from_binary_event(message))
        return [_received(event, mode="binary", had_time="ce-time" in lowered)]
    if content_type == STRUCTURED:
        return [_structured(_json(body), mode="structured")]
    if content_type == BATCH:
        items = _json(body)
        if not isinstance(items, list):
            raise MalformedEvent("a batch must be a JSON array of events")
        if len(items) > MAX_BATCH:
            raise MalformedEvent(f"a batch holds at most {MAX_BATCH} events")
        return [_structured(item, mode="batch") for item in items]
    raise MalformedEvent("not a CloudEvent: no ce-* headers and Content-Type is neither "
                         f"{STRUCTURED} nor {BATCH}")


def _json(body: bytes) -> Any:
    try:
        return jsonbody.loads(body)  # the functions' JSON limits (no 4300-digit integers, no NaN)
    except ContractViolation as exc:
        raise MalformedEvent(exc.detail) from None


def _structured(item: Any, *, mode: str) -> ReceivedEvent:
    from cloudevents.core.formats.json import JSONFormat

    if not isinstance(item, dict):
        raise MalformedEvent("a structured event must be a JSON object")
    missing = [a for a in REQUIRED if not item.get(a)]
    if missing:
        raise MalformedEvent(f"structured event without {', '.join(missing)}")
    event = _sdk(lambda: JSONFormat().read(None, json.dumps(item)))
    return _received(event, mode=mode, had_time="time" in item)


def _sdk(read: Any) -> Any:
    try:
        return read()
    except MalformedEvent:
        raise
    except Exception as exc:  # the SDK raises ValueError/TypeError/KeyError/its own tree
        raise MalformedEvent(f"invalid CloudEvent: {type(exc).__name__}: {str(exc)[:200]}") from None


def _received(event: Any, *, mode: str, had_time: bool) -> ReceivedEvent:
    received = ReceivedEvent.from_sdk(event, mode=mode)
    if not had_time:  # do not report the SDK's fill-in as the producer's time
        received = ReceivedEvent(**{**received.__dict__, "time": None})
    return received
