"""The copy function under gunicorn against real SeaweedFS: both strategies at
the part-size boundaries, byte-for-byte and checksum equality, verification,
idempotency, the ndjson answer and the CloudEvents of every job.

Parts are 5 MiB here (the S3 minimum) so boundaries stay cheap: streamed
parts of 5 MiB; server-side copies up to 6 MiB are one CopyObject, larger
ones UploadPartCopy parts of 5 MiB.
"""
from __future__ import annotations

import hashlib
import os
import uuid
import zlib

import google_crc32c
import pytest
import requests

from dynafed_contract import events as ce
from tests.faults.copying import (
    PART,
    PART_SETTINGS,
    MiB,
    adler32,
    check_job_events,
    copy_body,
    exists,
    md5,
    open_uploads,
    post,
    post_ndjson,
    read,
    run_to_end,
)
from tests.faults.worker import FunctionProcess

SETTINGS = {
    **PART_SETTINGS,
    "DYNAFED_FN_COPY_PARTS_IN_FLIGHT": "3",
    "DYNAFED_FN_COPY_PROGRESS_INTERVAL_SECONDS": "0",
}


@pytest.fixture(scope="module")
def copyfn(seaweed, sink, tmp_path_factory):
    with FunctionProcess("copy", stores_file=seaweed.stores_file, state_dir=tmp_path_factory.mktemp("copyfn"),
                         sink=sink.url, env=SETTINGS) as fn:
        yield fn


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def src(key: str) -> dict[str, str]:
    return {"store": "default", "bucket": "demo", "key": key}


#: (destination store, bucket, expected strategy for a non-empty object)
STREAM = ("archive", "archive")
SAME = ("default", "demo-copy")

STREAM_SIZES = [0, 1, PART - 1, PART, PART + 1, 3 * PART + 12345]
SERVER_SIZES = [0, 1, PART, 2 * PART - 1, 2 * PART, 2 * PART + 1, 3 * PART + 12345]


def expected_strategy(dest: tuple[str, str], size: int) -> str:
    if size == 0:
        return "put-empty"
    if dest == STREAM:
        return "stream"
    return "server-side" if size <= 6 * MiB else "server-side-multipart"


@pytest.mark.parametrize(("dest", "size"), [(STREAM, s) for s in STREAM_SIZES] + [(SAME, s) for s in SERVER_SIZES],
                         ids=lambda v: v[0] if isinstance(v, tuple) else str(v))
def test_copy_is_byte_identical_and_verified(copyfn, s3, sink, dest, size):
    data = os.urandom(size)
    key = unique(f"sizes/{size}")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data)
    job_id = f"sizes-{uuid.uuid4().hex}"
    store, bucket = dest
    response = post(copyfn.url, copy_body(src(key), {"store": store, "bucket": bucket, "key": key}, job_id=job_id))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "completed"
    assert result["strategy"] == expected_strategy(dest, size)
    assert result["bytes"] == size and result["total"] == size
    assert result["verified"] is True
    assert result["checksums"] == {"adler32": adler32(data)}
    client = s3[store]
    assert read(client, bucket, key) == data
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["Metadata"]["adler32"] == adler32(data)
    assert head["Metadata"]["dynafed-job-id"] == job_id
    assert open_uploads(client, bucket, key) == []
    events = sink.wait_for(lambda evs: any(e.subject == job_id and e.type in ce.COPY_TERMINAL for e in evs))
    mine = check_job_events(events, job_id, terminal=ce.COPY_COMPLETED)
    assert mine[0].type == ce.COPY_STARTED
    assert mine[0].data["strategy"] == result["strategy"] and mine[0].data["total"] == size
    assert mine[-1].data["bytes"] == size


@pytest.mark.parametrize("dest", [STREAM, SAME], ids=["stream", "server-side"])
@pytest.mark.parametrize("algorithm", ["md5", "crc32c", "sha256"])
def test_other_verify_algorithms(copyfn, s3, dest, algorithm):
    data = os.urandom(2 * PART + 7)
    key = unique(f"algo/{algorithm}")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data)
    store, bucket = dest
    response = post(copyfn.url, copy_body(src(key), {"store": store, "bucket": bucket, "key": key},
                                          verify=algorithm))
    assert response.status_code == 200, response.text
    expected = {"md5": md5(data), "sha256": hashlib.sha256(data).hexdigest(),
                "crc32c": google_crc32c.Checksum(data).digest().hex()}[algorithm]
    assert response.json()["checksums"] == {algorithm: expected}
    assert s3[store].head_object(Bucket=bucket, Key=key)["Metadata"][algorithm] == expected


@pytest.mark.parametrize("dest", [STREAM, SAME], ids=["stream", "server-side"])
def test_stored_source_checksum_is_the_reference(copyfn, s3, dest):
    data = os.urandom(PART + 3)
    key = unique("stored")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data, Metadata={"adler32": adler32(data), "owner": "x"})
    store, bucket = dest
    response = post(copyfn.url, copy_body(src(key), {"store": store, "bucket": bucket, "key": key}))
    assert response.status_code == 200, response.text
    result = response.json()
    if dest == STREAM:
        assert "source-checksum" in result["verified_by"]
    metadata = s3[store].head_object(Bucket=bucket, Key=key)["Metadata"]
    assert metadata["adler32"] == adler32(data) and metadata["owner"] == "x"


def test_stream_mismatch_with_stored_checksum_leaves_nothing(copyfn, s3, sink):
    data = os.urandom(2 * PART + 1)
    key = unique("mismatch")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data, Metadata={"adler32": "deadbeef"})
    job_id = f"mismatch-{uuid.uuid4().hex}"
    response = post(copyfn.url, copy_body(src(key), {"store": "archive", "bucket": "archive", "key": key},
                                          job_id=job_id))
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "CHECKSUM_MISMATCH" and problem["retryable"] is False
    assert not exists(s3["archive"], "archive", key)
    assert open_uploads(s3["archive"], "archive", key) == []
    events = sink.wait_for(lambda evs: any(e.subject == job_id and e.type in ce.COPY_TERMINAL for e in evs))
    failed = check_job_events(events, job_id, terminal=ce.COPY_FAILED)[-1]
    assert failed.data["code"] == "CHECKSUM_MISMATCH" and failed.data["retryable"] is False


def test_mismatch_over_existing_destination_leaves_it_as_it_was(copyfn, s3):
    key = unique("keep")
    old = os.urandom(1000)
    s3["archive"].put_object(Bucket="archive", Key=key, Body=old)
    data = os.urandom(PART + 5)
    s3["default"].put_object(Bucket="demo", Key=key, Body=data, Metadata={"adler32": "00000002"})
    response = post(copyfn.url, copy_body(src(key), {"store": "archive", "bucket": "archive", "key": key},
                                          overwrite=True))
    assert response.status_code == 422
    assert read(s3["archive"], "archive", key) == old
    assert open_uploads(s3["archive"], "archive", key) == []


@pytest.mark.parametrize("dest", [STREAM, SAME], ids=["stream", "server-side"])
def test_full_verification_rereads_the_destination(copyfn, s3, dest):
    data = os.urandom(3 * PART)
    key = unique("full")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data)
    store, bucket = dest
    response = post(copyfn.url, copy_body(src(key), {"store": store, "bucket": bucket, "key": key}, verify="full"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert "reread" in result["verified_by"]
    assert result["checksums"] == {"adler32": adler32(data)}


@pytest.mark.parametrize("dest", [STREAM, SAME], ids=["stream", "server-side"])
def test_resubmission_is_already_present_and_conflicts_are_409(copyfn, s3, dest):
    data = os.urandom(PART + 1)
    key = unique("idem")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data)
    store, bucket = dest
    body = copy_body(src(key), {"store": store, "bucket": bucket, "key": key}, job_id=f"idem-{uuid.uuid4().hex}")
    assert post(copyfn.url, body).json()["status"] == "completed"
    writes = s3[store].head_object(Bucket=bucket, Key=key)["LastModified"]
    again = post(copyfn.url, body)
    assert again.status_code == 200
    assert again.json()["status"] == "already-present"
    assert again.json()["checksums"] == {"adler32": adler32(data)}
    assert s3[store].head_object(Bucket=bucket, Key=key)["LastModified"] == writes
    # another job, same source version: the content is provably there already
    other = post(copyfn.url, {**body, "job_id": f"other-{uuid.uuid4().hex}"})
    assert other.status_code == 200 and other.json()["status"] == "already-present"
    # a different object must not be replaced without overwrite
    s3["default"].put_object(Bucket="demo", Key=key + ".v2", Body=b"different")
    conflict = post(copyfn.url, copy_body(src(key + ".v2"), {"store": store, "bucket": bucket, "key": key}))
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "DESTINATION_EXISTS"
    assert read(s3[store], bucket, key) == data
    replaced = post(copyfn.url, copy_body(src(key + ".v2"), {"store": store, "bucket": bucket, "key": key},
                                          overwrite=True))
    assert replaced.status_code == 200 and replaced.json()["status"] == "completed"
    assert read(s3[store], bucket, key) == b"different"


def test_ndjson_answer_streams_progress_then_the_result(copyfn, s3, sink):
    data = os.urandom(4 * PART + 99)
    key = unique("ndjson")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data)
    job_id = f"nd-{uuid.uuid4().hex}"
    status, lines = post_ndjson(copyfn.url, copy_body(src(key), {"store": "archive", "bucket": "archive",
                                                                 "key": key}, job_id=job_id))
    assert status == 200
    assert lines[0]["type"] == "started" and lines[0]["job_id"] == job_id and lines[0]["total"] == len(data)
    progress = [line["bytes"] for line in lines if line["type"] == "progress"]
    assert progress and progress == sorted(progress)
    assert lines[-1]["type"] == "result" and lines[-1]["status"] == "completed"
    assert lines[-1]["checksums"] == {"adler32": adler32(data)}
    assert all(line["type"] in ("started", "progress") for line in lines[:-1])
    events = sink.wait_for(lambda evs: any(e.subject == job_id and e.type in ce.COPY_TERMINAL for e in evs))
    check_job_events(events, job_id, terminal=ce.COPY_COMPLETED)


def test_ndjson_errors_before_the_stream_keep_their_status(copyfn):
    status, lines = post_ndjson(copyfn.url, copy_body(src("no/such/key"), {"store": "archive", "bucket": "archive",
                                                                           "key": "x"}))
    assert status == 404
    assert lines[0]["code"] == "NO_SUCH_OBJECT"


def test_cloudevent_request_binary_mode(copyfn, s3, sink):
    from cloudevents.core.bindings.http import to_binary_event
    from cloudevents.core.v1.event import CloudEvent

    data = os.urandom(1234)
    key = unique("ce")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data)
    event_id = f"ev-{uuid.uuid4().hex}"
    event = CloudEvent({"type": ce.COPY_REQUESTED, "source": "/tests", "id": event_id, "specversion": "1.0",
                        "datacontenttype": "application/json"},
                       copy_body(src(key), {"store": "archive", "bucket": "archive", "key": key}))
    message = to_binary_event(event)
    response = requests.post(copyfn.url, headers=dict(message.headers), data=message.body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["job_id"] == event_id  # the event id is the idempotency key
    assert read(s3["archive"], "archive", key) == data


def test_invalid_requests_are_rejected(copyfn):
    bad = post(copyfn.url, {"source": {"bucket": "demo"}, "destination": {"bucket": "demo", "key": "k"}})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
    algo = post(copyfn.url, copy_body(src("k"), {"bucket": "archive", "key": "k"}, verify="crc64"))
    assert algo.status_code == 400 and algo.json()["code"] == "UNKNOWN_ALGORITHM"
    store = post(copyfn.url, copy_body(src("k"), {"store": "nowhere", "bucket": "archive", "key": "k"}))
    assert store.status_code == 400 and store.json()["code"] == "UNKNOWN_STORE"
    bucket = post(copyfn.url, copy_body(src("k"), {"store": "archive", "bucket": "no-such-bucket", "key": "k"}))
    assert bucket.status_code == 404


def test_openapi_describes_the_copy_and_cleanup(copyfn):
    document = requests.get(f"{copyfn.url}/openapi.json", timeout=10).json()
    assert "/cleanup" in document["paths"]
    result = document["paths"]["/"]["post"]["responses"]["200"]["content"]
    assert "application/x-ndjson" in result
    assert "in-progress" in result["application/json"]["schema"]["properties"]["status"]["enum"]


def test_checksum_matches_zlib_for_a_large_stream(copyfn, s3):
    data = os.urandom(7 * PART + 1)
    key = unique("large")
    s3["default"].put_object(Bucket="demo", Key=key, Body=data)
    response, requests_made = run_to_end(copyfn.url, copy_body(src(key), {"store": "archive", "bucket": "archive",
                                                                          "key": key}))
    assert requests_made == 1
    assert response.json()["checksums"]["adler32"] == f"{zlib.adler32(data):08x}"
    assert read(s3["archive"], "archive", key) == data
