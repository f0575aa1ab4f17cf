"""Deliver one CloudEvent to ``$K_SINK`` (binary mode), synchronously, with
bounded retries; pass a CloudEvent reply on to the reply sink.

Synchronous on purpose: the webhook request that brought the notification is
answered only after the sink took the event, so nothing is acknowledged that
was not delivered, and a failure reaches the filer as a 503. The filer does not
retry it (weed 4.48: in seaweedfs weed/notification/webhook/webhook_queue.go,
``Queue.setupWatermillQueue``, the PoisonQueue middleware takes the handler's
error before the Retry middleware sees it), it logs it as a dead letter
("received dead letter message" with the path): the retries here are the only
ones, and a notification still undelivered after them is logged and counted
on both sides, never dropped silently.

Retried here: connection errors, timeouts, and the statuses Knative eventing
retries (404, 408, 409, 429, 5xx; PROTOCOLS.md section 4). Any other status is a
permanent refusal of this event.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping

from dynafed_runtime import errors

log = logging.getLogger("dynafed_fn.filersource")

RETRIED_STATUSES = frozenset({404, 408, 409, 429})
MAX_RETRY_AFTER_S = 5.0
CLOUDEVENT_STRUCTURED = "application/cloudevents+json"


@dataclasses.dataclass(frozen=True)
class SinkAnswer:
    """What a sink answered (status 0: no answer, ``error`` says why)."""

    status: int
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in RETRIED_STATUSES or self.status >= 500

    def reply_event(self) -> tuple[dict[str, str], bytes] | None:
        """Headers and body of the CloudEvent in this answer, if it is one
        (binary: ``ce-*`` headers; structured: its content type)."""
        lowered = {k.lower(): v for k, v in self.headers.items()}
        content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
        if "ce-id" in lowered and "ce-specversion" in lowered:
            keep = {k: v for k, v in lowered.items() if k.startswith("ce-") or k == "content-type"}
            return keep, self.body
        if content_type == CLOUDEVENT_STRUCTURED and self.body:
            return {"content-type": lowered["content-type"]}, self.body
        return None


#: (url, headers, body, timeout_s) -> SinkAnswer; never raises.
Transport = Callable[[str, dict[str, str], bytes, float], SinkAnswer]


def requests_transport() -> Transport:
    """The real transport: one pooled requests session."""
    import requests

    session = requests.Session()

    def send(url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> SinkAnswer:
        try:
            response = session.post(url, headers=headers, data=body, timeout=(2.0, timeout_s),
                                    allow_redirects=False)
        except requests.RequestException as exc:
            return SinkAnswer(0, error=type(exc).__name__)
        return SinkAnswer(response.status_code, dict(response.headers), response.content)

    return send


@dataclasses.dataclass
class Delivery:
    """Sends events to ``sink`` (and replies to ``reply_sink``)."""

    sink: str
    transport: Transport
    attempts: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 30.0
    reply_sink: str | None = None
    sleep: Callable[[float], None] = time.sleep

    def send(self, headers: dict[str, str], body: bytes, *, what: str) -> SinkAnswer:
        """Deliver to the sink; raises UpstreamUnavailable (retryable: the
        webhook should redeliver) or UpstreamError (the sink refused it)."""
        answer = self._post(self.sink, headers, body)
        if answer.ok:
            return answer
        if answer.retryable:
            raise errors.UpstreamUnavailable(
                f"sink did not take {what} after {self.attempts} attempt(s) ({_describe(answer)})",
                headers={"Retry-After": "1"})
        raise errors.UpstreamError(f"sink refused {what} ({_describe(answer)})", retryable=False)

    def pass_reply(self, answer: SinkAnswer) -> str:
        """Send a CloudEvent reply on to the reply sink: ``none``, ``dropped``
        (no reply sink), ``delivered`` or ``failed``."""
        reply = answer.reply_event()
        if reply is None:
            return "none"
        if not self.reply_sink:
            return "dropped"
        headers, body = reply
        result = self._post(self.reply_sink, headers, body)
        if result.ok:
            return "delivered"
        log.error("reply event %s not delivered to the reply sink (%s)", headers.get("ce-id", "?"),
                  _describe(result))
        return "failed"

    def _post(self, url: str, headers: dict[str, str], body: bytes) -> SinkAnswer:
        answer = SinkAnswer(0, error="not sent")
        for attempt in range(self.attempts):
            answer = self.transport(url, headers, body, self.timeout_s)
            if answer.ok or not answer.retryable:
                return answer
            if attempt + 1 < self.attempts:
                log.warning("sink attempt %d/%d failed (%s); retrying", attempt + 1, self.attempts,
                            _describe(answer))
                self.sleep(self._pause(attempt, answer))
        return answer

    def _pause(self, attempt: int, answer: SinkAnswer) -> float:
        retry_after = {k.lower(): v for k, v in answer.headers.items()}.get("retry-after", "")
        if retry_after.isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER_S)
        return min(self.backoff_s * (2 ** attempt), MAX_RETRY_AFTER_S)


def _describe(answer: SinkAnswer) -> str:
    return f"status {answer.status}" if answer.status else f"no answer: {answer.error}"

