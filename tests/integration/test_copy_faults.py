"""Copies under injected faults, against real SeaweedFS behind a FaultProxy
(tests/faults/proxy.py): the source overwritten mid-copy, a connection cut in
a GET body, 503 SlowDown below and above the retry budget, a byte flipped on
the wire, a dead event sink.

Stores ``p-default`` / ``p-archive`` are the stack's identities reached
through the proxy: ``p-default`` -> ``archive`` streams, ``p-default`` ->
``p-default`` copies server-side (same endpoint and credentials).
"""
from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from dynafed_contract import events as ce
from tests.faults.copying import (
    PART,
    PART_SETTINGS,
    MiB,
    adler32,
    check_job_events,
    copy_body,
    exists,
    open_uploads,
    post,
    read,
)
from tests.faults.proxy import CutAfter, ErrorReply, FaultProxy, FlipByte, Hold, Rule
from tests.faults.worker import FunctionProcess

SETTINGS = {
    **PART_SETTINGS,
    "DYNAFED_FN_COPY_PARTS_IN_FLIGHT": "2",
    "DYNAFED_FN_COPY_SERVER_SIDE_CONCURRENCY": "2",
    # the retry budget of every S3 call: 3 attempts
    "DYNAFED_FN_S3_MAX_ATTEMPTS": "3",
}


@pytest.fixture(scope="module")
def copyfn(proxied_stores_file, sink, tmp_path_factory):
    with FunctionProcess("copy", stores_file=proxied_stores_file, state_dir=tmp_path_factory.mktemp("copyfn-faults"),
                         sink=sink.url, env=SETTINGS) as fn:
        yield fn


def new_source(s3, size: int, **put) -> tuple[str, bytes]:
    key = f"faults/{uuid.uuid4().hex[:12]}"
    data = os.urandom(size)
    s3["default"].put_object(Bucket="demo", Key=key, Body=data, **put)
    return key, data


def not_witness(request) -> bool:
    return request.query.get("partNumber") != ["10000"]


def terminal_of(sink, job_id):
    events = sink.wait_for(lambda evs: any(e.subject == job_id and e.type in ce.COPY_TERMINAL for e in evs))
    return check_job_events(events, job_id)[-1]


# --- the source changes mid-copy ----------------------------------------------------------

@pytest.mark.parametrize("strategy", ["stream", "server-side-multipart"])
def test_source_overwritten_mid_copy_fails_cleanly(copyfn, proxy, s3, sink, strategy):
    key, data = new_source(s3, 6 * PART)
    if strategy == "stream":
        hold = Hold(timeout=60)
        proxy.add(Rule(op="UploadPart", where=not_witness, action=hold))
        dest = {"store": "p-archive", "bucket": "archive", "key": key}
        source = {"store": "p-default", "bucket": "demo", "key": key}
        dest_client, bucket = s3["archive"], "archive"
    else:
        hold = Hold(timeout=60)
        proxy.add(Rule(op="UploadPartCopy", action=hold))
        dest = {"store": "p-default", "bucket": "demo-copy", "key": key}
        source = {"store": "p-default", "bucket": "demo", "key": key}
        dest_client, bucket = s3["default"], "demo-copy"
    job_id = f"overwrite-{uuid.uuid4().hex}"
    answer: dict = {}
    thread = threading.Thread(target=lambda: answer.update(r=post(copyfn.url, copy_body(source, dest,
                                                                                         job_id=job_id))))
    thread.start()
    try:
        # both parts in flight are parked in the proxy: nothing more is read until release
        assert hold.wait_for(2, timeout=30), "the copy did not reach its part uploads"
        s3["default"].put_object(Bucket="demo", Key=key, Body=os.urandom(6 * PART))
    finally:
        hold.release()
        thread.join(90)
    response = answer["r"]
    assert response.status_code == 412, response.text
    problem = response.json()
    assert problem["code"] == "SOURCE_CHANGED" and problem["retryable"] is True
    assert not exists(dest_client, bucket, key)  # never a mixed object
    assert open_uploads(dest_client, bucket, key) == []
    failed = terminal_of(sink, job_id)
    assert failed.type == ce.COPY_FAILED and failed.data["code"] == "SOURCE_CHANGED"


# --- a connection cut in the middle of a GET body -----------------------------------------

def test_cut_get_body_is_resumed(copyfn, proxy, s3):
    key, data = new_source(s3, 3 * PART + 17)
    rule = proxy.add(Rule(op="GetObject", action=CutAfter(1 * MiB + 3), times=2))
    response = post(copyfn.url, copy_body({"store": "p-default", "bucket": "demo", "key": key},
                                          {"store": "archive", "bucket": "archive", "key": key}))
    assert response.status_code == 200, response.text
    assert rule.applied == 2
    assert read(s3["archive"], "archive", key) == data
    assert response.json()["checksums"] == {"adler32": adler32(data)}


def test_cut_http_source_body_is_resumed_with_if_match(copyfn, proxy, s3):
    from tests.faults.httpsource import StaticHttpSource

    data = os.urandom(2 * PART + 5)
    with StaticHttpSource() as site, FaultProxy(site.url) as front:
        site.put("/files/a.bin", data)
        rule = front.add(Rule(method="GET", action=CutAfter(PART + 11), times=1))
        key = f"faults/http-{uuid.uuid4().hex[:8]}"
        response = post(copyfn.url, copy_body({"url": f"{front.url}/files/a.bin?X-Amz-Signature=s3cr3t"},
                                              {"store": "archive", "bucket": "archive", "key": key}))
        assert response.status_code == 200, response.text
        assert rule.applied == 1
        resumed = [h for m, p, h in site.requests if "range" in h]
        assert resumed and all(h.get("if-match") for h in resumed)
    assert read(s3["archive"], "archive", key) == data
    assert "s3cr3t" not in response.text


def test_get_cut_every_time_fails_without_a_short_object(copyfn, proxy, s3, sink):
    key, data = new_source(s3, 2 * PART)
    proxy.add(Rule(op="GetObject", action=CutAfter(64 * 1024)))
    job_id = f"cut-{uuid.uuid4().hex}"
    response = post(copyfn.url, copy_body({"store": "p-default", "bucket": "demo", "key": key},
                                          {"store": "archive", "bucket": "archive", "key": key}, job_id=job_id))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "UPSTREAM_UNAVAILABLE" and response.json()["retryable"] is True
    assert not exists(s3["archive"], "archive", key)
    assert open_uploads(s3["archive"], "archive", key) == []
    assert terminal_of(sink, job_id).data["retryable"] is True


# --- 503 SlowDown ---------------------------------------------------------------------------

def test_slowdown_within_the_retry_budget_is_absorbed(copyfn, proxy, s3):
    key, data = new_source(s3, 2 * PART + 1)
    rule = proxy.add(Rule(op="UploadPart", where=not_witness, action=ErrorReply.slow_down(), times=2))
    response = post(copyfn.url, copy_body({"store": "default", "bucket": "demo", "key": key},
                                          {"store": "p-archive", "bucket": "archive", "key": key}))
    assert response.status_code == 200, response.text
    assert rule.applied == 2
    assert read(s3["archive"], "archive", key) == data


def test_slowdown_beyond_the_retry_budget_fails_retryable_and_aborts(copyfn, proxy, s3, sink):
    key, data = new_source(s3, 2 * PART + 1)
    rule = proxy.add(Rule(op="UploadPart", where=not_witness, action=ErrorReply.slow_down()))
    job_id = f"slow-{uuid.uuid4().hex}"
    response = post(copyfn.url, copy_body({"store": "default", "bucket": "demo", "key": key},
                                          {"store": "p-archive", "bucket": "archive", "key": key}, job_id=job_id))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "UPSTREAM_UNAVAILABLE" and response.json()["retryable"] is True
    assert rule.applied >= 3  # one part: its 3 attempts
    assert not exists(s3["archive"], "archive", key)
    assert open_uploads(s3["archive"], "archive", key) == []
    assert terminal_of(sink, job_id).type == ce.COPY_FAILED


def test_slowdown_on_server_side_copy_parts(copyfn, proxy, s3):
    key, data = new_source(s3, 3 * PART)
    rule = proxy.add(Rule(op="UploadPartCopy", action=ErrorReply.slow_down(), times=2))
    response = post(copyfn.url, copy_body({"store": "p-default", "bucket": "demo", "key": key},
                                          {"store": "p-default", "bucket": "demo-copy", "key": key}))
    assert response.status_code == 200, response.text
    assert response.json()["strategy"] == "server-side-multipart"
    assert rule.applied == 2
    assert read(s3["default"], "demo-copy", key) == data


# --- a byte flipped on the wire ---------------------------------------------------------------

def test_flipped_byte_is_caught_by_the_stored_checksum(copyfn, proxy, s3):
    data = os.urandom(2 * PART)
    key, _ = f"faults/{uuid.uuid4().hex[:12]}", None
    s3["default"].put_object(Bucket="demo", Key=key, Body=data, Metadata={"adler32": adler32(data)})
    proxy.add(Rule(op="GetObject", action=FlipByte(offset=4321), times=1))
    response = post(copyfn.url, copy_body({"store": "p-default", "bucket": "demo", "key": key},
                                          {"store": "archive", "bucket": "archive", "key": key}))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "CHECKSUM_MISMATCH"
    assert not exists(s3["archive"], "archive", key)
    assert open_uploads(s3["archive"], "archive", key) == []


# --- the event sink is down ---------------------------------------------------------------------

def test_copy_succeeds_with_the_sink_down(seaweed, s3, tmp_path_factory):
    from dynafed_client.stack import ports

    dead = f"http://127.0.0.1:{ports.free_port()}"  # nothing listens there
    key, data = new_source(s3, 3 * PART + 1)
    with FunctionProcess("copy", stores_file=seaweed.stores_file, state_dir=tmp_path_factory.mktemp("deadsink"),
                         sink=dead, env=SETTINGS) as fn:
        response = post(fn.url, copy_body({"store": "default", "bucket": "demo", "key": key},
                                          {"store": "archive", "bucket": "archive", "key": key}))
        assert response.status_code == 200, response.text
        assert read(s3["archive"], "archive", key) == data
        # the drops are noticed (and logged) in the background, never fatal
        deadline = time.monotonic() + 20
        while "event not delivered" not in fn.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "event not delivered" in fn.log_text()


# --- the upload is aborted under a running copy (cleanup too eager) --------------------------

def test_upload_aborted_mid_copy_is_retryable_and_a_repost_completes(copyfn, proxy, s3, sink):
    key, data = new_source(s3, 4 * PART)
    hold = Hold(timeout=60)
    proxy.add(Rule(op="UploadPart", where=not_witness, action=hold, times=2))
    job_id = f"aborted-{uuid.uuid4().hex}"
    body = copy_body({"store": "default", "bucket": "demo", "key": key},
                     {"store": "p-archive", "bucket": "archive", "key": key}, job_id=job_id)
    answer: dict = {}
    thread = threading.Thread(target=lambda: answer.update(r=post(copyfn.url, body)))
    thread.start()
    try:
        assert hold.wait_for(2, timeout=30)
        aborted = post(f"{copyfn.url}/cleanup", {"store": "archive", "bucket": "archive", "older_than_s": 0,
                                                 "prefix": key}).json()["aborted"]
        assert len(aborted) == 1
    finally:
        hold.release()
        thread.join(90)
    first = answer["r"]
    assert first.status_code == 503, first.text
    assert first.json()["retryable"] is True and "disappeared" in first.json()["detail"]
    again = post(copyfn.url, body)
    assert again.status_code == 200 and again.json()["status"] == "completed", again.text
    assert read(s3["archive"], "archive", key) == data
    assert open_uploads(s3["archive"], "archive", key) == []
