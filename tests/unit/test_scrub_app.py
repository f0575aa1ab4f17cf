"""The scrub function (built through the `new-function` recipe): walks a
prefix, recomputes stored checksums, reports mismatches as events."""
from __future__ import annotations

import json
import zlib

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from dynafed_contract import events
from functions.scrub.app import create_app
from tests.unit.sink_fakes import RecordingSink

STORES = json.dumps({"stores": {"default": {"endpoint_url": None, "access_key_id": "k", "secret_access_key": "s"}}})


@pytest.fixture()
def world():
    with mock_aws():
        # when_required: no S3 full-object CRC is stored, so "plain" really has
        # no stored checksum.
        s3 = boto3.client("s3", region_name="us-east-1", config=Config(request_checksum_calculation="when_required"))
        s3.create_bucket(Bucket="bucket")
        good, bad = b"good bytes", b"bytes that rotted"
        s3.put_object(Bucket="bucket", Key="data/good", Body=good,
                      Metadata={"adler32": f"{zlib.adler32(good):08x}"})
        s3.put_object(Bucket="bucket", Key="data/bad", Body=bad, Metadata={"adler32": "00000001"})
        s3.put_object(Bucket="bucket", Key="data/plain", Body=b"no stored checksum")
        s3.put_object(Bucket="bucket", Key="other/x", Body=b"outside the prefix", Metadata={"adler32": "00000001"})
        sink = RecordingSink()
        app = create_app(env={"DYNAFED_FN_STORES": STORES, "K_SINK": "http://127.0.0.1:9/"}, sink_transport=sink)
        yield app.test_client(), sink, app


def _events(app, sink, type_):
    return [e for e in sink.events(flush=app) if e.get_type() == type_]


def test_scrub_reports_the_rotten_object_only(world) -> None:
    client, sink, app = world
    response = client.post("/", json={"bucket": "bucket", "prefix": "data/"})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["scanned"], body["verified"], body["mismatched"], body["unverifiable"]) == (3, 1, 1, 1)
    assert body["complete"] is True and body["next_start_after"] is None
    (mismatch,) = body["mismatches"]
    assert mismatch["key"] == "data/bad" and mismatch["stored"] == "00000001"
    assert mismatch["computed"] == f"{zlib.adler32(b'bytes that rotted'):08x}"
    (event,) = _events(app, sink, events.SCRUB_MISMATCH)
    assert event.get_subject() == "default/bucket/data/bad"
    (summary,) = _events(app, sink, events.SCRUB_COMPLETED)
    assert summary.get_data()["mismatched"] == 1


def test_scrub_resumes_with_start_after(world) -> None:
    client, _, _ = world
    first = client.post("/", json={"bucket": "bucket", "prefix": "data/", "max_objects": 2}).json
    assert first["complete"] is False and first["scanned"] == 2
    rest = client.post("/", json={"bucket": "bucket", "prefix": "data/",
                                  "start_after": first["next_start_after"]}).json
    assert rest["complete"] is True and first["scanned"] + rest["scanned"] == 3


def test_scheduled_ping_event_runs_a_scrub(world) -> None:
    client, _, _ = world
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/apis/v1/namespaces/x/pingsources/scrub",
               "ce-type": events.PING, "Content-Type": "application/json"}
    response = client.post("/", data=json.dumps({"bucket": "bucket", "prefix": "data/"}), headers=headers)
    assert response.status_code == 200 and response.json["mismatched"] == 1


@pytest.mark.parametrize("body, code", [
    ({"prefix": "data/"}, "INVALID_REQUEST"),
    ({"bucket": "bucket", "max_objects": 0}, "INVALID_REQUEST"),
    ({"bucket": "bucket", "algorithms": ["nope"]}, "UNKNOWN_ALGORITHM"),
    ({"bucket": "missing-bucket"}, "NO_SUCH_BUCKET"),
])
def test_bad_requests_are_problems(world, body, code) -> None:
    client, _, _ = world
    response = client.post("/", json=body)
    assert response.status_code in (400, 404) and response.json["code"] == code


def test_health_and_openapi(world) -> None:
    client, _, _ = world
    assert client.get("/healthz").json["function"] == "scrub"
    assert "/" in client.get("/openapi.json").json["paths"]
