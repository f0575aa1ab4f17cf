"""CloudEvents emission: what EventEmitter sends is a valid binary-mode
CloudEvent (parsed back with the SDK's from_http_event), delivery retries
only what Knative retries, and a slow or dead sink never blocks the caller."""
from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from dynafed_contract import events as types
from dynafed_runtime.events import EventEmitter, build_event, to_binary

SINK = "http://127.0.0.1:9/sink"


class RecordingTransport:
    """A sink that records every POST and answers with scripted statuses
    (an int, or an exception instance to raise); the last one repeats."""

    def __init__(self, *statuses: int | BaseException) -> None:
        self.statuses = list(statuses) or [202]
        self.sent: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.sent.append((url, dict(headers), bytes(body)))
            outcome = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def events(self) -> list:
        return [from_http_event(HTTPMessage(h, b)) for _, h, b in self.sent]


class BlockingTransport:
    """A sink that hangs until released (a dead-but-accepting endpoint)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> int:
        self.calls += 1
        self.entered.set()
        self.release.wait(30)
        return 202


def emitter(transport, **kwargs) -> EventEmitter:  # type: ignore[no-untyped-def]
    kwargs.setdefault("backoff_s", 0.0)
    return EventEmitter(SINK, source="/dynafed-fn/checksum", transport=transport, **kwargs)


def test_event_shape_parsed_with_the_sdk() -> None:
    transport = RecordingTransport()
    em = emitter(transport, extensions={"cluster": "lhc", "tier0": "yes"})
    before = datetime.now(UTC)
    returned = em.emit(types.CHECKSUM_COMPUTED, "default/bucket/a key é", {"size": 9, "checksums": {"md5": "x"}})
    assert em.flush(5)
    [(url, headers, body)] = transport.sent
    assert url == SINK
    # binary content mode: attributes in ce-* headers, data as the body
    assert headers["ce-specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert not any(k.lower() == "content-type" and "cloudevents" in v for k, v in headers.items())
    [event] = transport.events()
    attrs = event.get_attributes()
    assert attrs["type"] == "ch.cern.dynafed.checksum.computed"
    assert attrs["source"] == "/dynafed-fn/checksum"
    assert attrs["subject"] == "default/bucket/a key é"  # percent-encoded on the wire, decoded here
    assert attrs["datacontenttype"] == "application/json"
    assert attrs["specversion"] == "1.0"
    uuid.UUID(attrs["id"])
    assert before <= attrs["time"] <= datetime.now(UTC)
    assert attrs["cluster"] == "lhc" and attrs["tier0"] == "yes"  # K_CE_OVERRIDES extensions
    assert event.get_data() == {"size": 9, "checksums": {"md5": "x"}}
    assert returned.get_attributes()["id"] == attrs["id"]
    assert em.delivered == 1 and em.dropped == 0


def test_ids_are_unique_and_subject_is_optional() -> None:
    transport = RecordingTransport()
    em = emitter(transport)
    for _ in range(20):
        em.emit(types.COPY_PROGRESS, None, {"bytes": 1})
    assert em.flush(5)
    parsed = transport.events()
    assert len({e.get_attributes()["id"] for e in parsed}) == 20
    assert all("subject" not in e.get_attributes() for e in parsed)
    assert all("ce-subject" not in h for _, h, _ in transport.sent)


def test_to_binary_of_build_event() -> None:
    event = build_event(types.COPY_STARTED, source="/dynafed-fn/copy", subject="job-1", data={"a": 1},
                        extensions={"k": "v"})
    headers, body = to_binary(event)
    parsed = from_http_event(HTTPMessage(headers, body))
    assert parsed.get_attributes()["subject"] == "job-1" and parsed.get_attributes()["k"] == "v"
    assert parsed.get_data() == {"a": 1}


def test_no_sink_means_no_events() -> None:
    transport = RecordingTransport()
    em = EventEmitter(None, source="/dynafed-fn/checksum", transport=transport)
    assert em.enabled is False
    assert em.emit(types.CHECKSUM_COMPUTED, "s", {}) is None
    assert em.flush(0.1)
    assert transport.sent == []


@pytest.mark.parametrize("status", [404, 408, 409, 429, 500, 502, 503, 504])
def test_retries_what_knative_retries(status: int) -> None:
    transport = RecordingTransport(status, 202)
    em = emitter(transport, attempts=3)
    em.emit(types.CHECKSUM_COMPUTED, "s", {})
    assert em.flush(5)
    assert len(transport.sent) == 2 and em.delivered == 1 and em.dropped == 0
    ids = {h["ce-id"] for _, h, _ in transport.sent}
    assert len(ids) == 1  # a retry is the same event: receivers de-duplicate on source + id


@pytest.mark.parametrize("status", [400, 401, 403, 413, 415])
def test_does_not_retry_other_client_errors(status: int) -> None:
    drops: list[str] = []
    transport = RecordingTransport(status)
    em = emitter(transport, attempts=3, on_drop=drops.append)
    em.emit(types.CHECKSUM_COMPUTED, "s", {})
    assert em.flush(5)
    assert len(transport.sent) == 1 and em.delivered == 0 and em.dropped == 1
    assert str(status) in drops[0]


def test_connection_errors_are_retried_then_dropped() -> None:
    drops: list[str] = []
    transport = RecordingTransport(ConnectionRefusedError(111, "refused"))
    em = emitter(transport, attempts=3, on_drop=drops.append)
    em.emit(types.CHECKSUM_COMPUTED, "s", {})
    assert em.flush(5)
    assert len(transport.sent) == 3 and em.dropped == 1 and em.delivered == 0
    assert "no connection" in drops[0]


def test_dead_sink_never_blocks_emit_and_drops_beyond_the_queue() -> None:
    transport = BlockingTransport()
    drops: list[str] = []
    em = emitter(transport, max_queue=5, on_drop=drops.append)
    try:
        em.emit(types.COPY_PROGRESS, "job", {"bytes": 0})
        assert transport.entered.wait(5)  # the sender thread is now stuck in the sink
        # if emit blocked on the stuck sink, this loop would hang (and the
        # test time out) instead of returning
        results = [em.emit(types.COPY_PROGRESS, "job", {"bytes": i}) for i in range(50)]
        assert all(r is not None for r in results)
        assert em.dropped == 50 - 5 and len(drops) == 45 and "queue full" in drops[0]
        assert transport.calls == 1
        assert em.flush(0.05) is False  # bounded wait, reports not drained
    finally:
        transport.release.set()
    assert em.flush(10)
    assert em.delivered == 1 + 5


def test_real_default_transport_to_a_closed_port_drops_quietly() -> None:
    import socket

    with socket.socket() as sock:  # bound, never listening: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        em = EventEmitter(f"http://127.0.0.1:{port}/", source="/dynafed-fn/checksum", backoff_s=0.0)
        assert em.emit(types.CHECKSUM_COMPUTED, "s", {"a": 1}) is not None
        assert em.flush(20)
    assert em.dropped == 1 and em.delivered == 0
