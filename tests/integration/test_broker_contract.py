"""Every function, every accepted event form, through a Broker that behaves
like Knative's (tests/harness/broker.py, written from knative/eventing
knative-v1.22.0: ``pkg/broker/filter/filter_handler.go`` ``Handler.writeResponse``
for the reply rule, ``pkg/kncloudevents/retries.go`` ``SelectiveRetry`` and
``RetryConfigFromDeliverySpec`` for retries and backoff,
``pkg/kncloudevents/event_dispatcher.go`` ``Dispatcher.send`` for dead
letters and reply forwarding, ``pkg/broker/ttl.go`` ``TTLDefaulter`` for
``knativebrokerttl``).

Real parts: SeaweedFS (the session's ``seaweed``), the checksum, copy and
scrub functions under gunicorn (their ``K_SINK`` is the Broker's ingress, as
the SinkBinding makes it on a cluster), the project's own event receiver
(``python -m dynafed_client.events serve``: the Dynafed side, which
de-duplicates on ``source`` + ``id``) and a recording dead-letter sink. The
Triggers are the project's own ``knative/base/trigger-*.yaml``, their
subscribers mapped to these loopback processes and their backoff delays
scaled down 1000x.

Shown for each form, in binary and structured delivery: the reply passes the
filter's rules, a redelivered duplicate leaves exactly one result at the
receiver, a permanent error is dead-lettered on the first attempt, a
retryable one is retried ``retry`` times and then dead-lettered.
"""
from __future__ import annotations

import base64
import json
import os
import sys
import uuid
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
import requests
from cloudevents.core.v1.event import CloudEvent

from dynafed_client.stack import ports, processes, services
from dynafed_contract import events as types
from tests.faults.processes import FunctionProcess, write_stores
from tests.faults.receiver import EventRecorder
from tests.harness.broker import Broker
from tests.harness.filters import load_triggers

REPO = Path(__file__).resolve().parents[2]
DYNAFED_RECEIVER_URI = "https://dynafed.example.org/events"
MiB = 1024 * 1024
TIME_SCALE = 0.001  # PT2S -> 2 ms: the policy's shape, not its minutes


# --- the world ---------------------------------------------------------------------

class Receiver:
    """The project's event receiver as its own process (loopback)."""

    def __init__(self, workdir: Path) -> None:
        self.port = ports.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "receiver.log"
        self.proc = processes.spawn([sys.executable, "-m", "dynafed_client.events", "serve", "--port",
                                     str(self.port)], log_path=self.log, env=services.base_env(),
                                    cwd=services.repo_root())
        processes.wait_until(lambda: True if requests.get(f"{self.url}/healthz", timeout=2).ok else None,
                             what="event receiver", timeout=30, pid=self.proc.pid, log_path=self.log,
                             retry_on=(requests.RequestException,))

    def events(self, **query: str) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.url}/events", params={"since": "0", "limit": "10000", **query},
                                 timeout=10).json()["events"])

    def of(self, event_type: str, subject: str) -> list[dict[str, Any]]:
        return [e for e in self.events(type=event_type) if e.get("subject") == subject]

    def stop(self) -> None:
        processes.stop_processes({"receiver": (self.proc.pid, None)}, timeout=10)


class Subscriber:
    """A foreign subscriber answering every delivery with a fixed response."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        outer = self
        self.calls = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.calls += 1
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class World:
    def __init__(self, broker: Broker, receiver: Receiver, dead_letters: EventRecorder, s3: Any, archive: Any,
                 urls: dict[str, str]) -> None:
        self.broker, self.receiver, self.dead_letters, self.urls = broker, receiver, dead_letters, urls
        self.s3, self.archive = s3, archive

    def route(self, delivery_format: str) -> None:
        """Load the project's Triggers, subscribers mapped here, in ``delivery_format``."""
        self.broker.triggers = load_triggers(
            REPO / "knative" / "base",
            subscribers={"checksum": self.urls["checksum"], "copy": self.urls["copy"],
                         "scrub": self.urls["scrub"], DYNAFED_RECEIVER_URI: self.receiver.url},
            dead_letter_sink=self.dead_letters.url, time_scale=TIME_SCALE, delivery_format=delivery_format)

    def send(self, event: CloudEvent, *, copies: int = 1) -> None:
        assert self.broker.publish(event, copies=copies) == 202
        self.broker.wait_idle()
        assert self.broker.lost == [], self.broker.lost

    def dead_lettered(self, event_id: str) -> list[Any]:
        return [e for e in self.dead_letters.events() if e.id == event_id]


@pytest.fixture(scope="module")
def world(seaweed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("broker")
    stores = dict(seaweed.stores)
    # a store whose endpoint answers nothing: UPSTREAM_UNAVAILABLE, retryable
    stores["unreachable"] = {**stores["default"], "endpoint_url": f"http://127.0.0.1:{ports.free_port()}"}
    stores_file = write_stores(workdir / "stores.json", stores)
    common = {"DYNAFED_FN_S3_MAX_ATTEMPTS": "1"}
    copy_env = {**common, "DYNAFED_FN_COPY_EVENT_SLICE_SECONDS": "0", "DYNAFED_FN_COPY_PART_BYTES": str(5 * MiB),
                "DYNAFED_FN_COPY_PROGRESS_INTERVAL_SECONDS": "0"}
    with Broker() as broker, EventRecorder() as dead_letters:
        receiver = Receiver(workdir)
        functions = []
        try:
            for name, env in (("checksum", common), ("copy", copy_env), ("scrub", common)):
                functions.append(FunctionProcess(name, stores_file, workdir, env=env, sink=broker.ingress_url))
                functions[-1].start()
            urls = {fn.name: fn.url for fn in functions}
            yield World(broker, receiver, dead_letters, seaweed.s3_client("default"), seaweed.s3_client("archive"),
                        urls)
        finally:
            for fn in functions:
                fn.stop()
            receiver.stop()


@pytest.fixture(params=["binary", "json"])
def routed(world: World, request: pytest.FixtureRequest) -> World:
    world.route(request.param)
    world.broker.clear()
    return world


def request_event(event_type: str, data: Any, *, source: str = "/tests/broker") -> CloudEvent:
    return CloudEvent({"type": event_type, "source": source, "id": f"ev-{uuid.uuid4().hex}",
                       "specversion": "1.0", "datacontenttype": "application/json"}, data)


def put(world: World, key: str, data: bytes, **extra: Any) -> None:
    world.s3.put_object(Bucket="demo", Key=key, Body=data, **extra)


def stored_adler32(world: World, key: str) -> str | None:
    return world.s3.head_object(Bucket="demo", Key=key)["Metadata"].get("adler32")


def replies_pass_the_filter(world: World, event_id: str) -> list[str]:
    """Every attempt for ``event_id`` ended as the filter's success cases."""
    attempts = world.broker.attempts_for(event_id)
    assert attempts, "the event reached no Trigger"
    return [a.outcome for a in attempts]


# --- checksum -----------------------------------------------------------------------

def test_checksum_requested_replies_once_and_a_duplicate_leaves_one_result(routed: World) -> None:
    key = f"broker/{uuid.uuid4().hex}"
    data = os.urandom(100_000)
    put(routed, key, data)
    event = request_event(types.CHECKSUM_REQUESTED, {"bucket": "demo", "key": key, "algorithms": ["adler32"],
                                                     "cache": "write"})
    routed.send(event, copies=2)  # delivered, then redelivered (same source + id)
    assert replies_pass_the_filter(routed, event.get_id()) == ["reply", "reply"]
    [reply, again] = routed.broker.replies
    assert reply.get_id() == again.get_id() and reply.get_type() == types.CHECKSUM_COMPUTED
    computed = routed.receiver.of(types.CHECKSUM_COMPUTED, f"default/demo/{key}")
    assert len(computed) == 1  # the receiver dropped the duplicate
    assert computed[0]["data"]["checksums"] == {"adler32": f"{zlib.adler32(data):08x}"}
    assert stored_adler32(routed, key) == f"{zlib.adler32(data):08x}"
    assert routed.broker.dead_letters == []


@pytest.mark.parametrize("form", ["ceph-rgw", "minio"])
def test_s3_object_created_notifications_checksum_on_upload(routed: World, form: str) -> None:
    key = f"broker/notified {uuid.uuid4().hex}.bin"
    data = os.urandom(50_000)
    put(routed, key, data)
    record = {"eventVersion": "2.2", "eventSource": "ceph:s3", "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": "demo"}, "object": {"key": key.replace(" ", "+"), "size": len(data)}}}
    if form == "ceph-rgw":  # push endpoint with cloudevents=true: one record as data
        event = request_event("com.amazonaws.ObjectCreated:Put", record, source="ceph:s3.demo-zone.demo")
    else:
        event = request_event("com.amazonaws.s3.s3:ObjectCreated:Put", {"Records": [record]},
                              source="minio:s3..demo")
    routed.send(event, copies=2)
    assert replies_pass_the_filter(routed, event.get_id()) == ["reply", "reply"]
    computed = routed.receiver.of(types.CHECKSUM_COMPUTED, f"default/demo/{key}")
    assert len(computed) == 1
    assert stored_adler32(routed, key) == f"{zlib.adler32(data):08x}"  # written: the notification's cache mode


def test_permanent_checksum_error_is_dead_lettered_on_the_first_attempt(routed: World) -> None:
    event = request_event(types.CHECKSUM_REQUESTED, {"bucket": "demo", "key": f"absent/{uuid.uuid4().hex}"})
    routed.send(event)
    [attempt] = routed.broker.attempts_for(event.get_id())
    assert attempt.status == 422 and "NO_SUCH_OBJECT" in attempt.detail
    [letter] = routed.dead_lettered(event.get_id())
    assert letter.headers["ce-knativeerrorcode"] == "422"
    problem = json.loads(base64.b64decode(letter.headers["ce-knativeerrordata"]))
    assert problem["code"] == "NO_SUCH_OBJECT" and problem["retryable"] is False


def test_invalid_checksum_request_is_dead_lettered_on_the_first_attempt(routed: World) -> None:
    event = request_event(types.CHECKSUM_REQUESTED, {"bucket": "demo", "key": "k", "algorithms": ["crc64"]})
    routed.send(event)
    [attempt] = routed.broker.attempts_for(event.get_id())
    assert attempt.status == 400
    assert routed.dead_lettered(event.get_id())[0].headers["ce-knativeerrorcode"] == "400"


def test_unavailable_store_is_retried_then_dead_lettered(routed: World) -> None:
    event = request_event(types.CHECKSUM_REQUESTED, {"store": "unreachable", "bucket": "demo", "key": "k"})
    routed.send(event)
    trigger = next(t for t in routed.broker.triggers if t.name == "checksum-requested")
    attempts = routed.broker.attempts_for(event.get_id())
    assert [a.status for a in attempts] == [503] * (trigger.delivery.retry + 1)
    assert [a.number for a in attempts] == list(range(1, trigger.delivery.retry + 2))
    [letter] = routed.dead_lettered(event.get_id())
    assert letter.headers["ce-knativeerrorcode"] == "503"


# --- copy -----------------------------------------------------------------------------

def copy_data(key: str, destination: str) -> dict[str, Any]:
    return {"source": {"store": "default", "bucket": "demo", "key": key},
            "destination": {"store": "archive", "bucket": "archive", "key": destination}}


def test_copy_chain_drives_itself_and_a_duplicate_leaves_one_outcome(routed: World) -> None:
    key = f"broker/chain-{uuid.uuid4().hex}"
    data = os.urandom(10 * MiB + 7)  # three streamed parts; zero-second slices: one part per delivery
    put(routed, key, data)
    event = request_event(types.COPY_REQUESTED, copy_data(key, key))
    routed.send(event, copies=2)
    chain = [r for r in routed.broker.replies if r.get_type() == types.COPY_REQUESTED]
    assert chain, "the job needed more than one slice"
    assert all(r.get_data()["job_id"] == event.get_id() for r in chain)
    terminal = [r for r in routed.broker.replies if r.get_type() == types.COPY_COMPLETED]
    assert terminal and len({r.get_id() for r in terminal}) == 1  # however many chains ended, one id
    completed = routed.receiver.of(types.COPY_COMPLETED, event.get_id())
    started = routed.receiver.of(types.COPY_STARTED, event.get_id())
    assert len(completed) == 1 and len(started) == 1
    assert routed.receiver.of(types.COPY_FAILED, event.get_id()) == []
    assert completed[0]["data"]["bytes"] == len(data)
    assert routed.archive.get_object(Bucket="archive", Key=key)["Body"].read() == data
    # every delivery ended as the filter's success: a reply event, or empty for a duplicate in flight
    outcomes = {a.outcome for a in routed.broker.attempts if a.trigger == "copy-requested"}
    assert outcomes <= {"reply", "ok"}
    ttls = [int(r.get_attributes()["knativebrokerttl"]) for r in routed.broker.received
            if r.get_type() == types.COPY_REQUESTED]
    assert ttls[0] == 255 and min(ttls) == 255 - len({r.get_id() for r in chain})
    assert routed.broker.dead_letters == []


def test_permanent_copy_error_dead_letters_at_once_with_one_failed_event(routed: World) -> None:
    event = request_event(types.COPY_REQUESTED, copy_data(f"absent/{uuid.uuid4().hex}", "never"))
    routed.send(event, copies=2)
    assert [a.status for a in routed.broker.attempts_for(event.get_id())] == [422, 422]
    assert len(routed.dead_lettered(event.get_id())) == 2  # each delivery, once: no retries
    failed = routed.receiver.of(types.COPY_FAILED, event.get_id())
    assert len(failed) == 1 and failed[0]["data"]["code"] == "NO_SUCH_OBJECT"


def test_retryable_copy_error_is_retried_without_a_failed_event(routed: World) -> None:
    data = copy_data("k", "never")
    data["source"]["store"] = "unreachable"
    event = request_event(types.COPY_REQUESTED, data)
    routed.send(event)
    trigger = next(t for t in routed.broker.triggers if t.name == "copy-requested")
    assert [a.status for a in routed.broker.attempts_for(event.get_id())] == [503] * (trigger.delivery.retry + 1)
    assert routed.dead_lettered(event.get_id())[0].headers["ce-knativeerrorcode"] == "503"
    # not final while Eventing still retries: no copy.failed (the dead-letter sink holds the event)
    assert routed.receiver.of(types.COPY_FAILED, event.get_id()) == []


def test_a_spent_ttl_dead_letters_the_chain_and_a_replay_finishes_the_job(world: World) -> None:
    """knativebrokerttl bounds the chain: each reply passes the ingress, which
    decrements it and refuses the event at 0 (400): the event whose reply was
    refused goes to the dead-letter sink. Replayed (fresh TTL), the job goes on
    from its multipart upload and ends."""
    world.route("binary")
    world.broker.clear()
    key = f"broker/ttl-{uuid.uuid4().hex}"
    data = os.urandom(15 * MiB + 1)  # four parts: more hops than the TTL allows
    put(world, key, data)
    event = request_event(types.COPY_REQUESTED, copy_data(key, key))
    world.broker.max_ttl = 2
    try:
        world.send(event)
    finally:
        world.broker.max_ttl = 255
    [letter] = [e for e in world.broker.dead_letters if e.trigger == "copy-requested"]
    assert letter.code == "400" and letter.destination == world.broker.ingress_url
    assert letter.event.get_type() == types.COPY_REQUESTED
    assert world.receiver.of(types.COPY_COMPLETED, event.get_id()) == []
    replay = {k: v for k, v in letter.event.get_attributes().items()
              if k not in ("knativebrokerttl", "knativeerrorcode", "knativeerrordest", "knativeerrordata")}
    world.send(CloudEvent(replay, letter.event.get_data()))
    [completed] = world.receiver.of(types.COPY_COMPLETED, event.get_id())
    assert completed["data"]["bytes"] == len(data)
    assert world.archive.get_object(Bucket="archive", Key=key)["Body"].read() == data


# --- scrub ----------------------------------------------------------------------------

def test_scheduled_scrub_replies_with_its_summary(routed: World) -> None:
    prefix = f"broker/scrub-{uuid.uuid4().hex}/"
    put(routed, prefix + "good", b"good", Metadata={"adler32": f"{zlib.adler32(b'good'):08x}"})
    put(routed, prefix + "bad", b"rotten", Metadata={"adler32": "00000001"})
    # what a PingSource sends (sources/v1 PingSourceSource): the schedule's data as JSON
    tick = request_event(types.PING, {"bucket": "demo", "prefix": prefix},
                         source="/apis/v1/namespaces/dynafed-fn/pingsources/scrub-nightly")
    routed.send(tick, copies=2)
    assert replies_pass_the_filter(routed, tick.get_id()) == ["reply", "reply"]
    subject = f"default/demo/{prefix}"
    [summary] = routed.receiver.of(types.SCRUB_COMPLETED, subject)
    assert summary["data"]["mismatched"] == 1 and summary["data"]["verified"] == 1
    assert len(routed.receiver.of(types.SCRUB_MISMATCH, f"default/demo/{prefix}bad")) == 1


def test_invalid_scrub_request_is_dead_lettered_on_the_first_attempt(routed: World) -> None:
    event = request_event(types.SCRUB_REQUESTED, {"bucket": "demo", "max_objects": 0})
    routed.send(event)
    assert [a.status for a in routed.broker.attempts_for(event.get_id())] == [400]
    assert routed.dead_lettered(event.get_id())[0].headers["ce-knativeerrorcode"] == "400"


def test_scrub_requested_event_and_a_foreign_ping(routed: World) -> None:
    prefix = f"broker/scrub-{uuid.uuid4().hex}/"
    put(routed, prefix + "x", b"x", Metadata={"adler32": f"{zlib.adler32(b'x'):08x}"})
    event = request_event(types.SCRUB_REQUESTED, {"bucket": "demo", "prefix": prefix})
    routed.send(event)
    assert replies_pass_the_filter(routed, event.get_id()) == ["reply"]
    assert len(routed.receiver.of(types.SCRUB_COMPLETED, f"default/demo/{prefix}")) == 1
    foreign = request_event(types.PING, {"bucket": "demo"}, source="/apis/v1/namespaces/x/pingsources/other")
    routed.send(foreign)
    assert routed.broker.attempts_for(foreign.get_id()) == []  # not the scrub schedule: not routed


# --- the harness itself, against the failure the issue reports ------------------------

def test_a_plain_json_reply_fails_the_delivery_as_the_filter_rules(world: World) -> None:
    """What the functions did before: a 200 with a JSON body. The filter makes
    it a 502, the dispatcher retries it, the event is dead-lettered."""
    subscriber = Subscriber(200, b'{"checksums": {}}', "application/json")
    try:
        world.route("binary")
        trigger = next(t for t in world.broker.triggers if t.name == "checksum-requested")
        world.broker.triggers = [type(trigger)(name=trigger.name, subscriber=subscriber.url,
                                               filters=trigger.filters, delivery=trigger.delivery)]
        world.broker.clear()
        event = request_event(types.CHECKSUM_REQUESTED, {"bucket": "demo", "key": "k"})
        world.send(event)
        attempts = world.broker.attempts_for(event.get_id())
        assert [a.status for a in attempts] == [502] * (trigger.delivery.retry + 1)
        assert subscriber.calls == trigger.delivery.retry + 1
        assert world.dead_lettered(event.get_id())[0].headers["ce-knativeerrorcode"] == "502"
    finally:
        subscriber.stop()


def test_an_event_whose_ttl_is_spent_is_dropped_by_the_ingress(world: World) -> None:
    world.route("binary")
    spent = CloudEvent({**request_event(types.CHECKSUM_REQUESTED, {}).get_attributes(), "knativebrokerttl": 1},
                       {"bucket": "demo", "key": "k"})
    assert world.broker.publish(spent) == 400
