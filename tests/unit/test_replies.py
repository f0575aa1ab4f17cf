"""The CloudEvent reply policy (dynafed_runtime/replies.py) and delivery
semantics, through each function's WSGI app with moto as S3 and a recording
sink: one reply event per CloudEvent (not also emitted), ids derived from the
incoming event, statuses Eventing retries exactly for retryable errors, ids
required on the wire.

The retry set is knative/eventing v1.22 ``pkg/kncloudevents/retries.go``
``SelectiveRetry`` (5xx, 404, 408, 409, 429); the reply rule is
``pkg/broker/filter/filter_handler.go`` ``Handler.writeResponse`` (empty, or a
valid CloudEvent, else 502).
"""
from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent
from flask import Flask
from moto import mock_aws

from dynafed_contract import events as types
from dynafed_contract.errors import ErrorCode
from dynafed_runtime import errors, replies
from dynafed_runtime.config import Config
from functions.checksum.app import create_app as checksum_app
from functions.copy.app import create_app as copy_app
from functions.scrub.app import create_app as scrub_app
from tests.unit.sink_fakes import RecordingSink

STORE = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "AKIDTEST", "secret_access_key": "s"}
STORES = json.dumps({"stores": {"default": STORE}})
MiB = 1024 * 1024


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIDTEST",
                              aws_secret_access_key="s",
                              config=BotoConfig(request_checksum_calculation="when_required",
                                                response_checksum_validation="when_required",
                                                retries={"mode": "standard", "max_attempts": 1}))
        for bucket in ("data", "dst"):
            client.create_bucket(Bucket=bucket)
        yield client


def build(factory: Any, function: str, s3: Any, sink: RecordingSink, **env: str) -> Flask:
    config = Config.from_env({"DYNAFED_FN_STORES": STORES, "K_SINK": "http://127.0.0.1:9/", **env},
                             function=function)
    return factory(config, s3=lambda store: s3, sink_transport=sink)


def event(event_type: str, data: Any, *, event_id: str = "ev-1", source: str = "/tests") -> CloudEvent:
    return CloudEvent({"type": event_type, "source": source, "id": event_id, "specversion": "1.0",
                       "datacontenttype": "application/json"}, data)


def post_event(app: Flask, ev: CloudEvent, *, structured: bool = False) -> Any:
    message = (to_structured_event if structured else to_binary_event)(ev)
    return app.test_client().post("/", headers=dict(message.headers), data=bytes(message.body))


def reply_of(response: Any) -> Any:
    """The reply exactly as the Broker filter reads it: binary mode CloudEvent."""
    assert "ce-specversion" in response.headers, (response.status_code, response.get_data(as_text=True))
    return from_http_event(HTTPMessage(dict(response.headers), response.get_data()))


# --- the mapping ------------------------------------------------------------------

@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.value)
def test_every_error_is_retried_by_eventing_exactly_when_it_is_retryable(code: ErrorCode) -> None:
    error = errors.error_for(code, "x")
    status = replies.delivery_status(error)
    assert replies.eventing_retries(status) is code.retryable
    assert 400 <= status < 600
    if replies.eventing_retries(code.status) is code.retryable:
        assert status == code.status  # only statuses Eventing would misread change


@pytest.mark.parametrize(("status", "retried"), [
    (400, False), (401, False), (403, False), (404, True), (405, False), (408, True), (409, True),
    (410, False), (412, False), (413, False), (415, False), (422, False), (429, True), (500, True),
    (502, True), (503, True), (504, True),
])
def test_retry_set_is_selective_retry(status: int, retried: bool) -> None:
    # SelectiveRetry: statusCode >= 500 || 404 || 429 || 408 || 409
    assert replies.eventing_retries(status) is retried


# --- checksum -------------------------------------------------------------------

def test_checksum_cloudevent_is_answered_by_one_reply_event_not_emitted(s3: Any, sink: RecordingSink) -> None:
    s3.put_object(Bucket="data", Key="k", Body=b"123456789")
    app = build(checksum_app, "checksum", s3, sink)
    request = event(types.CHECKSUM_REQUESTED, {"bucket": "data", "key": "k", "algorithms": ["crc32"]})
    first, again = post_event(app, request), post_event(app, request, structured=True)
    replies_ = [reply_of(first), reply_of(again)]
    assert first.status_code == 200
    assert {r.get_type() for r in replies_} == {types.CHECKSUM_COMPUTED}
    assert replies_[0].get_data()["checksums"] == {"crc32": "cbf43926"}
    assert replies_[0].get_id() == replies_[1].get_id()  # a redelivery repeats the id
    assert replies_[0].get_source().startswith("/dynafed-fn/")
    other = reply_of(post_event(app, event(types.CHECKSUM_REQUESTED, {"bucket": "data", "key": "k"},
                                           event_id="ev-2")))
    assert other.get_id() != replies_[0].get_id()
    assert sink.events(flush=app) == []  # the reply is the result: nothing also went to K_SINK


def test_checksum_json_request_keeps_its_json_answer_and_event(s3: Any, sink: RecordingSink) -> None:
    s3.put_object(Bucket="data", Key="k", Body=b"123456789")
    app = build(checksum_app, "checksum", s3, sink)
    response = app.test_client().post("/", json={"bucket": "data", "key": "k", "algorithms": ["crc32"]})
    assert response.status_code == 200 and "ce-specversion" not in response.headers
    assert response.get_json()["checksums"] == {"crc32": "cbf43926"}
    assert [e.get_type() for e in sink.events(flush=app)] == [types.CHECKSUM_COMPUTED]


def test_missing_object_is_permanent_for_a_delivery_and_404_for_json(s3: Any, sink: RecordingSink) -> None:
    app = build(checksum_app, "checksum", s3, sink)
    delivered = post_event(app, event(types.CHECKSUM_REQUESTED, {"bucket": "data", "key": "absent"}))
    assert delivered.status_code == 422 and not replies.eventing_retries(delivered.status_code)
    assert delivered.get_json()["code"] == "NO_SUCH_OBJECT" and delivered.get_json()["status"] == 422
    plain = app.test_client().post("/", json={"bucket": "data", "key": "absent"})
    assert plain.status_code == 404 and plain.get_json()["code"] == "NO_SUCH_OBJECT"


@pytest.mark.parametrize("structured", [False, True])
def test_cloudevent_without_an_id_is_refused(s3: Any, sink: RecordingSink, structured: bool) -> None:
    app = build(checksum_app, "checksum", s3, sink)
    data = json.dumps({"bucket": "data", "key": "k"}).encode()
    if structured:
        body = json.dumps({"specversion": "1.0", "type": types.CHECKSUM_REQUESTED, "source": "/t",
                           "datacontenttype": "application/json", "data": {"bucket": "data", "key": "k"}})
        response = app.test_client().post("/", data=body, content_type="application/cloudevents+json")
    else:
        response = app.test_client().post("/", data=data, headers={
            "ce-specversion": "1.0", "ce-type": types.CHECKSUM_REQUESTED, "ce-source": "/t", "ce-id": " ",
            "content-type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["code"] == "INVALID_REQUEST" and "id" in response.get_json()["detail"]


def test_s3_notification_events_one_reply_per_object_and_removals_are_empty(s3: Any, sink: RecordingSink) -> None:
    s3.put_object(Bucket="data", Key="in/a b.txt", Body=b"x")
    app = build(checksum_app, "checksum", s3, sink)
    record = {"eventVersion": "2.1", "eventSource": "ceph:s3", "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": "data"}, "object": {"key": "in/a+b.txt", "size": 1}}}
    # Ceph RGW (cloudevents=true): the record itself is the data
    reply = reply_of(post_event(app, event("com.amazonaws.ObjectCreated:Put", record, event_id="rgw-1")))
    assert reply.get_type() == types.CHECKSUM_COMPUTED and reply.get_data()["key"] == "in/a b.txt"
    assert reply.get_subject() == "default/data/in/a b.txt"
    removed = {**record, "eventName": "ObjectRemoved:Delete"}
    empty = post_event(app, event("com.amazonaws.s3.ObjectRemoved", {"Records": [removed]}, event_id="rgw-2"))
    assert empty.status_code == 202 and empty.get_data() == b""  # the filter's "empty response": success
    two = post_event(app, event("com.amazonaws.s3.ObjectCreated", {"Records": [record, record]}, event_id="x"))
    assert two.status_code == 400 and two.get_json()["code"] == "INVALID_REQUEST"


# --- scrub ----------------------------------------------------------------------

def test_scrub_event_replies_with_the_summary_and_derives_mismatch_ids(s3: Any, sink: RecordingSink) -> None:
    s3.put_object(Bucket="data", Key="p/bad", Body=b"rotten", Metadata={"adler32": "00000001"})
    app = build(scrub_app, "scrub", s3, sink)
    ping = event(types.PING, {"bucket": "data", "prefix": "p/"}, event_id="tick-1",
                 source="/apis/v1/namespaces/x/pingsources/scrub")
    first, again = reply_of(post_event(app, ping)), reply_of(post_event(app, ping))
    assert first.get_type() == types.SCRUB_COMPLETED and first.get_data()["mismatched"] == 1
    assert first.get_id() == again.get_id()
    mismatches = [e for e in sink.events(flush=app) if e.get_type() == types.SCRUB_MISMATCH]
    assert len(mismatches) == 2 and mismatches[0].get_id() == mismatches[1].get_id()
    assert all(e.get_type() != types.SCRUB_COMPLETED for e in sink.events(flush=app))
    assert mismatches[0].get_data()["computed"] == f"{zlib.adler32(b'rotten'):08x}"


# --- copy -----------------------------------------------------------------------

def copy_request(key: str, **extra: Any) -> dict[str, Any]:
    return {"source": {"bucket": "data", "key": key}, "destination": {"bucket": "dst", "key": key}, **extra}


def test_copy_event_replies_with_its_completed_event_keyed_on_the_job(s3: Any, sink: RecordingSink) -> None:
    s3.put_object(Bucket="data", Key="k", Body=b"payload")
    app = build(copy_app, "copy", s3, sink)
    request = event(types.COPY_REQUESTED, copy_request("k"), event_id="not a valid job id!")
    first, again = reply_of(post_event(app, request)), reply_of(post_event(app, request))
    assert first.get_type() == again.get_type() == types.COPY_COMPLETED
    assert first.get_data()["status"] == "completed" and again.get_data()["status"] == "already-present"
    assert first.get_id() == again.get_id()  # one terminal event per job, however many deliveries
    job_id = first.get_data()["job_id"]
    assert job_id.startswith("ce-") and job_id == again.get_data()["job_id"]  # a stable hash, not random
    emitted = sink.events(flush=app)
    assert types.COPY_COMPLETED not in {e.get_type() for e in emitted}
    started = [e for e in emitted if e.get_type() == types.COPY_STARTED]
    assert len(started) == 1 and started[0].get_subject() == job_id


def test_copy_permanent_failure_emits_one_failed_event_retryable_none(s3: Any, sink: RecordingSink) -> None:
    app = build(copy_app, "copy", s3, sink)
    missing = event(types.COPY_REQUESTED, copy_request("absent"), event_id="perm-1")
    for _ in range(2):
        response = post_event(app, missing)
        assert response.status_code == 422 and response.get_json()["code"] == "NO_SUCH_OBJECT"
    failed = [e for e in sink.events(flush=app) if e.get_type() == types.COPY_FAILED]
    assert len(failed) == 2 and failed[0].get_id() == failed[1].get_id()  # the receiver keeps one
    sink.sent.clear()
    s3.put_object(Bucket="data", Key="there", Body=b"x")
    s3.put_object(Bucket="dst", Key="there", Body=b"other bytes")  # exists: 409 DESTINATION_EXISTS
    conflict = post_event(app, event(types.COPY_REQUESTED, copy_request("there"), event_id="perm-2"))
    assert conflict.status_code == 422 and conflict.get_json()["code"] == "DESTINATION_EXISTS"
    plain = app.test_client().post("/", json=copy_request("there"))
    assert plain.status_code == 409


def test_copy_slice_in_progress_replies_with_the_next_request(s3: Any, sink: RecordingSink) -> None:
    app = build(copy_app, "copy", s3, sink, DYNAFED_FN_COPY_EVENT_SLICE_SECONDS="0",
                DYNAFED_FN_COPY_SERVER_SIDE_THRESHOLD="0", DYNAFED_FN_COPY_SERVER_SIDE_PART_BYTES=str(5 * MiB))
    data = os.urandom(10 * MiB + 1)  # three parts, one per zero-second slice
    s3.put_object(Bucket="data", Key="big", Body=data)
    request = event(types.COPY_REQUESTED, copy_request("big"), event_id="chain-1")
    step = reply_of(post_event(app, request))
    assert step.get_type() == types.COPY_REQUESTED and step.get_data()["job_id"] == "chain-1"
    assert step.get_subject() == "chain-1"
    redelivered = reply_of(post_event(app, request))
    assert redelivered.get_id() == step.get_id()  # same delivery, same continuation id
    done = reply_of(post_event(app, step))
    assert done.get_type() == types.COPY_COMPLETED and done.get_data()["job_id"] == "chain-1"
    assert s3.get_object(Bucket="dst", Key="big")["Body"].read() == data
