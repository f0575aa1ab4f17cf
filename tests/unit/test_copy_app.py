"""The copy function through its WSGI interface (Flask test client) with moto
as S3 and a recording CloudEvents sink: the request flows, idempotency,
slices, ndjson, events and cleanup. (moto ignores If-Match pins; pinning and
faults are tested against SeaweedFS in tests/integration.)"""
from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent
from flask import Flask

from dynafed_contract import events as types
from dynafed_runtime.config import Config
from functions.copy.app import create_app
from tests.unit.moto_s3 import moto_s3
from tests.unit.sink_fakes import RecordingSink

MiB = 1024 * 1024
PART = 5 * MiB
A = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "AKIDA", "secret_access_key": "a-secret"}
B = {**A, "access_key_id": "AKIDB"}  # other credentials: another backend for same_backend()
STORES = json.dumps({"stores": {"default": A, "mirror": A, "other": B}})


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="AKIDA", aws_secret_access_key="a-secret",
                                 region_name="us-east-1")


@pytest.fixture
def s3(session: boto3.session.Session) -> Iterator[Any]:
    with moto_s3(session, "src", "dst", max_pool_connections=20) as client:
        yield client


def make_app(s3: Any, sink: RecordingSink, **env: str) -> Flask:
    variables = {"DYNAFED_FN_STORES": STORES, "K_SINK": "http://127.0.0.1:9/",
                 "DYNAFED_FN_COPY_PART_BYTES": str(PART), "DYNAFED_FN_COPY_SERVER_SIDE_THRESHOLD": str(6 * MiB),
                 "DYNAFED_FN_COPY_SERVER_SIDE_PART_BYTES": str(PART), **env}
    config = Config.from_env(variables, function="copy")
    app = create_app(config, s3=lambda store: s3, sink_transport=sink)
    return app


@pytest.fixture
def app(s3: Any, sink: RecordingSink) -> Flask:
    return make_app(s3, sink)


def body(key: str, dest_store: str = "other", **extra: Any) -> dict[str, Any]:
    return {"source": {"store": "default", "bucket": "src", "key": key},
            "destination": {"store": dest_store, "bucket": "dst", "key": key}, **extra}


def flush(app: Flask) -> None:
    assert app.extensions["dynafed_fn"].events.flush(5)


@pytest.mark.parametrize(("size", "dest_store", "strategy"), [
    (0, "other", "put-empty"), (1, "other", "stream"), (2 * PART + 3, "other", "stream"),
    (1000, "mirror", "server-side"), (2 * PART + 3, "mirror", "server-side-multipart"),
])
def test_copy(app, s3, sink, size, dest_store, strategy):
    data = os.urandom(size)
    s3.put_object(Bucket="src", Key="k", Body=data)
    response = app.test_client().post("/", json=body("k", dest_store, job_id="job-1"))
    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    assert result["strategy"] == strategy and result["status"] == "completed"
    assert result["checksums"] == {"adler32": f"{zlib.adler32(data):08x}"}
    assert s3.get_object(Bucket="dst", Key="k")["Body"].read() == data
    metadata = s3.head_object(Bucket="dst", Key="k")["Metadata"]
    assert metadata["adler32"] == result["checksums"]["adler32"] and metadata["dynafed-job-id"] == "job-1"
    assert not s3.list_multipart_uploads(Bucket="dst").get("Uploads")
    flush(app)
    kinds = [e.get_attributes()["type"] for e in sink.events("job-1")]
    assert kinds[0] == types.COPY_STARTED and kinds[-1] == types.COPY_COMPLETED
    assert kinds.count(types.COPY_COMPLETED) == 1


def test_idempotency_and_conflict(app, s3, sink):
    s3.put_object(Bucket="src", Key="k", Body=b"abc" * 1000)
    client = app.test_client()
    assert client.post("/", json=body("k", job_id="j")).get_json()["status"] == "completed"
    assert client.post("/", json=body("k", job_id="j")).get_json()["status"] == "already-present"
    s3.put_object(Bucket="src", Key="k2", Body=b"other")
    conflict = client.post("/", json={**body("k2"), "destination": {"store": "other", "bucket": "dst", "key": "k"}})
    assert conflict.status_code == 409 and conflict.get_json()["code"] == "DESTINATION_EXISTS"
    flush(app)
    completed = [e for e in sink.events("j") if e.get_attributes()["type"] in types.COPY_TERMINAL]
    assert len(completed) == 1  # the re-submission of a finished job emits no second terminal event


def test_missing_source_is_404_with_a_failed_event(app, sink):
    response = app.test_client().post("/", json=body("nothing", job_id="gone"))
    assert response.status_code == 404 and response.get_json()["code"] == "NO_SUCH_OBJECT"
    flush(app)
    (event,) = sink.events("gone")
    assert event.get_attributes()["type"] == types.COPY_FAILED
    assert event.get_data()["code"] == "NO_SUCH_OBJECT"


def test_slices_answer_in_progress_until_done(s3, sink):
    app = make_app(s3, sink, DYNAFED_FN_COPY_SLICE_SECONDS="0")
    data = os.urandom(3 * PART + 1)
    s3.put_object(Bucket="src", Key="k", Body=data)
    client = app.test_client()
    answers = []
    for _ in range(10):
        answers.append(client.post("/", json=body("k", job_id="sl")).get_json())
        if answers[-1]["status"] != "in-progress":
            break
    assert [a["status"] for a in answers] == ["in-progress"] * 3 + ["completed"]
    assert [a["bytes"] for a in answers] == [PART, 2 * PART, 3 * PART, len(data)]
    assert answers[0]["resume"] == {"parts_done": 1, "parts_total": 4, "part_size": PART}
    assert s3.get_object(Bucket="dst", Key="k")["Body"].read() == data


def test_ndjson_answer(app, s3):
    data = os.urandom(2 * PART)
    s3.put_object(Bucket="src", Key="k", Body=data)
    response = app.test_client().post("/", json=body("k"), headers={"Accept": "application/x-ndjson"})
    try:
        assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
        lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    finally:
        response.close()
    assert lines[0]["type"] == "started" and lines[-1]["type"] == "result"
    assert [line["type"] for line in lines[1:-1]] == ["progress"] * (len(lines) - 2)


def test_ndjson_failure_after_the_start_is_an_error_line(app, s3):
    s3.put_object(Bucket="src", Key="k", Body=os.urandom(PART + 1), Metadata={"adler32": "00000002"})
    response = app.test_client().post("/", json=body("k"), headers={"Accept": "application/x-ndjson"})
    try:
        assert response.status_code == 200  # the status was sent before the failure
        last = json.loads(response.get_data(as_text=True).splitlines()[-1])
    finally:
        response.close()
    assert last["type"] == "error" and last["code"] == "CHECKSUM_MISMATCH" and last["status"] == 422


def test_json_is_preferred_on_ties(app, s3):
    s3.put_object(Bucket="src", Key="k", Body=b"x")
    response = app.test_client().post("/", json=body("k"), headers={"Accept": "*/*"})
    assert response.mimetype == "application/json"


def test_structured_cloudevent_request(app, s3):
    s3.put_object(Bucket="src", Key="k", Body=b"payload")
    event = CloudEvent({"type": types.COPY_REQUESTED, "source": "/t", "id": "ev-42", "specversion": "1.0",
                        "datacontenttype": "application/json"}, body("k"))
    message = to_structured_event(event)
    response = app.test_client().post("/", headers=dict(message.headers), data=message.body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["job_id"] == "ev-42"


def test_in_progress_cloudevent_request_answers_with_the_next_event(s3, sink):
    """Through a Broker the reply event is the next delivery: the job drives itself."""
    app = make_app(s3, sink, DYNAFED_FN_COPY_SLICE_SECONDS="0")
    data = os.urandom(2 * PART + 1)
    s3.put_object(Bucket="src", Key="k", Body=data)
    event = CloudEvent({"type": types.COPY_REQUESTED, "source": "/t", "id": "first", "specversion": "1.0",
                        "datacontenttype": "application/json"}, body("k"))
    message = to_structured_event(event)
    headers, payload = dict(message.headers), message.body
    client = app.test_client()
    for _ in range(3):
        response = client.post("/", headers=headers, data=payload)
        assert response.status_code == 200, response.get_data(as_text=True)
        reply = from_http_event(HTTPMessage(dict(response.headers), response.get_data()))
        if reply.get_type() == types.COPY_COMPLETED:  # the job's terminal event is the last reply
            break
        assert reply.get_attributes()["type"] == types.COPY_REQUESTED
        assert reply.get_attributes()["subject"] == "first"
        assert reply.get_data()["job_id"] == "first"  # the job continues under its id
        headers, payload = dict(response.headers), response.get_data()
    assert response.get_json()["status"] == "completed" and response.get_json()["job_id"] == "first"
    assert s3.get_object(Bucket="dst", Key="k")["Body"].read() == data


def test_other_event_types_are_refused(app):
    event = CloudEvent({"type": "com.example.other", "source": "/t", "id": "1", "specversion": "1.0",
                        "datacontenttype": "application/json"}, body("k"))
    message = to_structured_event(event)
    response = app.test_client().post("/", headers=dict(message.headers), data=message.body)
    assert response.status_code == 400


def test_cleanup_endpoint(app, s3):
    upload = s3.create_multipart_upload(Bucket="dst", Key="orphan")["UploadId"]
    client = app.test_client()
    dry = client.post("/cleanup", json={"bucket": "dst", "older_than_s": 0, "dry_run": True}).get_json()
    assert [a["upload_id"] for a in dry["aborted"]] == [upload]
    assert s3.list_multipart_uploads(Bucket="dst").get("Uploads")
    done = client.post("/cleanup", json={"bucket": "dst", "older_than_s": 0}).get_json()
    assert [a["key"] for a in done["aborted"]] == ["orphan"]
    assert not s3.list_multipart_uploads(Bucket="dst").get("Uploads")
    assert client.post("/cleanup", data=b"{", content_type="application/json").status_code == 400
    assert client.post("/cleanup", data=b"{}", content_type="text/plain").status_code == 415


def test_auth_token_is_required_when_configured(s3, sink):
    app = make_app(s3, sink, DYNAFED_FN_AUTH_TOKEN="t0ken")
    client = app.test_client()
    assert client.post("/", json=body("k")).status_code == 401
    assert client.post("/cleanup", json={"bucket": "dst", "older_than_s": 1}).status_code == 401
    s3.put_object(Bucket="src", Key="k", Body=b"x")
    assert client.post("/", json=body("k"), headers={"Authorization": "Bearer t0ken"}).status_code == 200


def test_cleanup_spares_young_uploads(s3):
    import datetime as dt

    from functions.copy.cleanup import abort_older, parse_duration

    s3.create_multipart_upload(Bucket="dst", Key="young")
    (upload,) = s3.list_multipart_uploads(Bucket="dst")["Uploads"]
    initiated = upload["Initiated"]  # moto's clock is fixed: measure from it
    assert abort_older(s3, "dst", older_than_s=3600, now=initiated + dt.timedelta(seconds=60)) == []
    assert len(abort_older(s3, "dst", older_than_s=3600, now=initiated + dt.timedelta(hours=2))) == 1
    assert not s3.list_multipart_uploads(Bucket="dst").get("Uploads")
    assert abort_older(s3, "dst", older_than_s=1e308) == []  # beyond the calendar: nothing is that old
    assert [parse_duration(t) for t in ("90", "90s", "15m", "6h", "2d", "0.5h")] == [90, 90, 900, 21600, 172800, 1800]
