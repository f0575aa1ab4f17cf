"""The receiver's WSGI app (plain Werkzeug: a handful of routes, no Flask needed).

::

    POST <any path>            CloudEvent(s) → 202 (duplicates too: eventing must not retry them)
                               malformed → 400 problem+json (eventing does not retry 400)
    GET  /events?since=N       recorded events after seq N: {"seq": last, "events": [...]}
                               optional subject=, type= (prefix), limit=, wait= (long poll, s);
                               since=-1 answers only the current seq
    GET  /healthz              {"status": "ok", "events": n, "duplicates": d}
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from dynafed_client.events.hub import EventHub
from dynafed_client.events.model import ReceivedEvent
from dynafed_client.events.parse import MalformedEvent, parse_http
from dynafed_contract.errors import ErrorCode
from dynafed_contract.problem import MEDIA_TYPE, render

MAX_BODY = 4 * 1024 * 1024
MAX_WAIT = 30.0

EventCallback = Callable[[ReceivedEvent], None]


def _json(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(json.dumps(body, default=str), status=status, mimetype=mimetype)


def _problem(code: ErrorCode, detail: str) -> Response:
    problem = render(code, detail)
    return Response(problem.payload(), status=problem.status, mimetype=MEDIA_TYPE)


def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY (declared or, chunked, as read)."""
    if request.content_length is not None:
        return None if request.content_length > MAX_BODY else request.get_data(cache=False)
    stream = request.environ["wsgi.input"] if request.environ.get("wsgi.input_terminated") else None
    if stream is None:
        return b""
    out = bytearray()
    while len(out) <= MAX_BODY:
        data = stream.read(min(64 * 1024, MAX_BODY + 1 - len(out)))
        if not data:
            return bytes(out)
        out.extend(data)
    return None


def create_app(hub: EventHub, *, on_event: Iterable[EventCallback] = ()) -> Callable[..., Any]:
    """WSGI app publishing into ``hub``; ``on_event`` callbacks see each new
    (non-duplicate) event, e.g. an :class:`EventLog`'s ``append`` or a printer."""
    callbacks = list(on_event)

    def receive(request: Request) -> Response:
        body = _read_body(request)
        if body is None:
            # the rest of the body is still on the connection: close it, or the
            # server would read those bytes as the next request
            response = _problem(ErrorCode.PAYLOAD_TOO_LARGE, "event body too large")
            response.headers["Connection"] = "close"
            return response
        try:
            events = parse_http(dict(request.headers), body)
        except MalformedEvent as exc:
            return _problem(ErrorCode.INVALID_REQUEST, str(exc))
        accepted = duplicates = 0
        for event in events:
            recorded = hub.publish(event)
            if recorded is None:
                duplicates += 1
                continue
            accepted += 1
            for callback in callbacks:
                callback(recorded)
        # no body: a Trigger subscriber's reply body would be taken for a reply event
        response = Response(status=202)
        response.headers["X-Events-Accepted"] = str(accepted)
        response.headers["X-Events-Duplicates"] = str(duplicates)
        return response

    def list_events(request: Request) -> Response:
        try:
            since = int(request.args.get("since", "0"))
            limit = max(1, min(10_000, int(request.args.get("limit", "1000"))))
            wait = max(0.0, min(MAX_WAIT, float(request.args.get("wait", "0"))))
        except ValueError:
            return _problem(ErrorCode.INVALID_REQUEST, "since/limit must be integers, wait a number")
        if since < 0:
            return _json({"seq": hub.seq, "events": []})
        found = hub.since(since, subject=request.args.get("subject"), type_prefix=request.args.get("type"),
                          limit=limit, wait=wait)
        return _json({"seq": hub.seq, "events": [e.to_json() for e in found]})

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        if request.method == "POST":
            return receive(request)
        if request.method in ("GET", "HEAD"):
            if request.path == "/events":
                return list_events(request)
            if request.path in ("/healthz", "/readyz", "/"):
                return _json({"status": "ok", "events": hub.seq, "duplicates": hub.duplicates})
            return _problem(ErrorCode.NOT_FOUND, "no such endpoint")
        return _problem(ErrorCode.METHOD_NOT_ALLOWED, "use POST to deliver events, GET /events to read them")

    return app
