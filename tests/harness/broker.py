"""A Knative Broker for tests: ingress, Trigger filter and dispatcher that
behave as knative/eventing knative-v1.22.0 does (MT channel-based Broker).
Everything below is read from that source; nothing is guessed.

Ingress — ``pkg/broker/ingress/ingress_handler.go`` ``Handler.receive`` with
``pkg/broker/ttl.go`` ``TTLDefaulter`` (``MAX_TTL`` 255, ``cmd/broker/ingress``):
an event without ``knativebrokerttl`` gets 255, one with it gets ttl - 1; an
event whose TTL is then <= 0 is dropped with 400.

Filter — ``pkg/broker/filter/filter_handler.go``:

* ``handleDispatchToSubscriberRequest``: an event without a TTL is refused
  (400); the TTL is *removed* before the event goes to the subscriber;
  ``spec.filters`` / ``spec.filter`` decide (``filters.py``); ``delivery.format``
  forces binary or structured (``kncloudevents.WithEventFormat``), the default
  being binary.
* ``send``: a non-2xx answer of the subscriber is passed on with its status;
  no answer at all (connection refused) becomes 500.
* ``writeResponse``: a 2xx answer whose encoding is unknown (no ``ce-*``
  headers, not a CloudEvents content type) and whose body is non-empty is a
  failed delivery, 502 ("The response MUST be either empty or a valid
  CloudEvent"); an empty one is success; a CloudEvent that does not parse is
  502; a valid one is the reply, its TTL set back to the delivered value.

Dispatcher — ``pkg/kncloudevents/event_dispatcher.go`` ``Dispatcher.send`` /
``executeRequest`` and ``pkg/kncloudevents/retries.go``:

* every request carries ``Prefer: reply``; any status outside 200-299 is a
  failure (``isFailure``);
* retries: ``RetryConfigFromDeliverySpec`` (``retry`` = extra attempts;
  exponential ``delay * 2^n``, linear ``delay * n``, n counted from 0 by
  go-retryablehttp ``Client.Do``) and ``SelectiveRetry`` (retry 5xx, 404,
  408, 409, 429, and no response; never other statuses); ``Retry-After`` is
  ignored, as it is while ``delivery-retryafter`` is disabled (its default in
  ``config/core/configmaps/features.yaml``);
* on final failure the *original* event goes to ``deadLetterSink`` with the
  extensions ``knativeerrordest``, ``knativeerrorcode`` and
  ``knativeerrordata`` (base64 of the answer body, at most 1024 characters;
  ``pkg/kncloudevents/attributes/knative_error.go``), retried the same way;
* a reply is sent on to the Broker ingress with the same retries; if that
  fails, the original event is dead-lettered (``Dispatcher.send``, "failed to
  forward reply").

At-least-once: ``publish(..., copies=2)`` delivers an event twice to every
Trigger it matches, as a channel does after a dispatcher restart.

Backoff pauses are real sleeps of the Trigger's delays times the
``time_scale`` given to ``filters.load_triggers``; no test asserts on time.
"""
from __future__ import annotations

import base64
import dataclasses
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

from tests.harness.filters import Trigger

TTL_ATTRIBUTE = "knativebrokerttl"
MAX_TTL = 255
KNATIVE_ERROR_DATA_MAX = 1024
CLOUDEVENTS_CONTENT_TYPES = ("application/cloudevents+json", "application/cloudevents-batch+json")


def selective_retry(status: int) -> bool:
    """``SelectiveRetry`` (status -1 / no response counts as retryable)."""
    return status < 0 or status >= 500 or status in (404, 408, 409, 429)


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One POST of an event to a Trigger's subscriber."""

    trigger: str
    event_type: str
    event_id: str
    number: int
    status: int
    #: "ok" (empty answer), "reply" (a valid reply event), "failed"
    outcome: str
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    trigger: str
    event: Any
    code: str
    destination: str
    data: bytes


def _set_ttl(event: Any, ttl: int | None) -> Any:
    attributes = dict(event.get_attributes())
    attributes.pop(TTL_ATTRIBUTE, None)
    if ttl is not None:
        attributes[TTL_ATTRIBUTE] = ttl
    return CloudEvent(attributes, event.get_data())


def _ttl(event: Any) -> int | None:
    raw = event.get_attributes().get(TTL_ATTRIBUTE)
    try:
        return None if raw is None else int(raw)
    except (TypeError, ValueError):
        return None


def encode(event: Any, delivery_format: str) -> tuple[dict[str, str], bytes]:
    message = (to_structured_event if delivery_format == "json" else to_binary_event)(event)
    return dict(message.headers), bytes(message.body or b"")


def _encoding_known(headers: Mapping[str, str]) -> bool:
    """``binding.Message.ReadEncoding() != EncodingUnknown`` for an HTTP answer."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    return "ce-specversion" in lowered or content_type in CLOUDEVENTS_CONTENT_TYPES


class Broker:
    """In-process Broker with a loopback HTTP ingress (``ingress_url``, a K_SINK)."""

    def __init__(self, triggers: Iterable[Trigger] = (), *, max_ttl: int = MAX_TTL, workers: int = 8,
                 request_timeout_s: float = 120.0) -> None:
        self.triggers = list(triggers)
        self.max_ttl = max_ttl
        self.request_timeout_s = request_timeout_s
        self.attempts: list[Attempt] = []
        self.dead_letters: list[DeadLetter] = []
        self.replies: list[Any] = []
        self.dropped: list[Any] = []
        self.received: list[Any] = []
        self.lost: list[str] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="broker")
        self._http = requests.Session()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="broker-ingress", daemon=True)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/dynafed-fn/dynafed-fn"

    def __enter__(self) -> Broker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wait_idle(self, timeout: float = 180.0) -> None:
        """Block until no delivery is pending (a bound against a hang, not a timing assertion)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout=timeout):
                raise AssertionError(f"broker still has {self._pending} deliveries pending")

    def clear(self) -> None:
        with self._lock:
            for records in (self.attempts, self.dead_letters, self.replies, self.dropped, self.received, self.lost):
                records.clear()

    # -- ingress -------------------------------------------------------------------

    def publish(self, event: Any, *, copies: int = 1) -> int:
        """What a POST of ``event`` to the ingress does; ``copies`` > 1 delivers
        it that many times to each Trigger (a redelivered duplicate)."""
        ttl = _ttl(event)
        ttl = self.max_ttl if ttl is None else max(ttl - 1, 0)
        if ttl <= 0:
            with self._lock:
                self.dropped.append(event)
            return 400
        event = _set_ttl(event, ttl)
        with self._lock:
            self.received.append(event)
            matched = [t for t in self.triggers if t.matches(event.get_attributes())]
            self._pending += len(matched)
        for trigger in matched:
            self._pool.submit(self._guarded, trigger, event, copies)
        return 202

    def post(self, headers: Mapping[str, str], body: bytes) -> int:
        """The ingress over HTTP: 400 for what the Go SDK cannot read as an event."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if "ce-specversion" in lowered and not lowered.get("ce-id", "").strip():
            return 400  # the Go SDK requires an id; the Python one would invent it
        try:
            event = from_http_event(HTTPMessage(dict(lowered), body))
        except Exception:
            return 400
        return self.publish(event)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        broker = self

        class Ingress(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = broker.post(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Ingress

    # -- filter + dispatcher -------------------------------------------------------

    def _guarded(self, trigger: Trigger, event: Any, copies: int) -> None:
        try:
            for _ in range(copies):
                self._dispatch(trigger, event)
        except Exception as exc:  # a harness bug must surface, not hang wait_idle
            with self._lock:
                self.lost.append(f"{trigger.name}: harness error {exc!r}")
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _dispatch(self, trigger: Trigger, event: Any) -> None:
        """``Dispatcher.send`` for one event and one Trigger."""
        ttl = _ttl(event)
        status, reply, body = self._with_retries(trigger, lambda n: self._deliver_once(trigger, event, n))
        if status >= 0 and 200 <= status < 300:
            if reply is None:
                return
            reply = _set_ttl(reply, ttl)  # writeResponse: the delivered TTL goes back on
            with self._lock:
                self.replies.append(reply)
            reply_status, _, _ = self._with_retries(trigger, lambda n: (self.publish(reply), None, b""))
            if 200 <= reply_status < 300:
                return
            self._dead_letter(trigger, event, reply_status, self.ingress_url, b"")
            return
        self._dead_letter(trigger, event, status, trigger.subscriber, body)

    def _with_retries(self, trigger: Trigger, call: Any) -> tuple[int, Any, bytes]:
        delivery = trigger.delivery
        index = 0
        while True:
            status, reply, body = call(index + 1)
            if 200 <= status < 300 or not selective_retry(status) or index >= delivery.retry:
                return status, reply, body
            threading.Event().wait(delivery.backoff_s(index))
            index += 1

    def _deliver_once(self, trigger: Trigger, event: Any, number: int) -> tuple[int, Any, bytes]:
        outgoing = _set_ttl(event, None)  # DeleteTTL before the subscriber
        headers, body = encode(outgoing, trigger.delivery.format)
        headers["Prefer"] = "reply"
        try:
            response = self._http.post(trigger.subscriber, headers=headers, data=body,
                                       timeout=self.request_timeout_s)
        except requests.RequestException as exc:
            return self._record(trigger, event, number, 500, "failed", f"no response: {type(exc).__name__}")
        if not 200 <= response.status_code < 300:
            return self._record(trigger, event, number, response.status_code, "failed",
                                response.text[:200], response.content)
        if not _encoding_known(response.headers):
            if response.content:
                return self._record(trigger, event, number, 502, "failed",
                                    "non-empty response not recognized as CloudEvent")
            return self._record(trigger, event, number, response.status_code, "ok")
        try:
            reply = from_http_event(HTTPMessage(dict(response.headers), response.content))
        except Exception as exc:
            return self._record(trigger, event, number, 502, "failed", f"malformed reply: {exc}")
        return self._record(trigger, event, number, response.status_code, "reply", reply=reply)

    def _record(self, trigger: Trigger, event: Any, number: int, status: int, outcome: str, detail: str = "",
                body: bytes = b"", reply: Any = None) -> tuple[int, Any, bytes]:
        with self._lock:
            self.attempts.append(Attempt(trigger.name, event.get_type(), event.get_id(), number, status, outcome,
                                         detail))
        return status, reply, body

    def _dead_letter(self, trigger: Trigger, event: Any, status: int, destination: str, body: bytes) -> None:
        sink = trigger.delivery.dead_letter_sink
        if sink is None:
            with self._lock:
                self.lost.append(f"{trigger.name}: {event.get_type()} {event.get_id()} failed ({status}), "
                                 "no dead-letter sink")
            return
        data = base64.b64encode(body).decode()[:KNATIVE_ERROR_DATA_MAX]
        attributes = {**event.get_attributes(), "knativeerrordest": destination,
                      "knativeerrorcode": str(status), "knativeerrordata": data}
        letter = CloudEvent(attributes, event.get_data())
        headers, payload = encode(letter, "binary")

        def send(number: int) -> tuple[int, Any, bytes]:
            try:
                return self._http.post(sink, headers=headers, data=payload, timeout=30).status_code, None, b""
            except requests.RequestException:
                return -1, None, b""

        sent, _, _ = self._with_retries(trigger, send)
        with self._lock:
            if 200 <= sent < 300:
                self.dead_letters.append(DeadLetter(trigger.name, letter, str(status), destination, body))
            else:
                self.lost.append(f"{trigger.name}: dead-letter sink answered {sent}")

    # -- views ---------------------------------------------------------------------

    def attempts_for(self, event_id: str, trigger: str | None = None) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.event_id == event_id and (trigger is None or a.trigger == trigger)]

