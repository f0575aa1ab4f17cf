"""The fault proxy itself, against moto's S3 server: every action does what it
says, counters count, and a proxy without rules is transparent."""
from __future__ import annotations

import hashlib
import threading
from typing import Any

import botocore.exceptions as bce
import pytest

from tests.faults.conftest import s3_client
from tests.faults.proxy import (
    CutAfter,
    Delay,
    ErrorReply,
    FaultProxy,
    FlipByte,
    Hold,
    Request,
    Reset,
    Rule,
    Throttle,
    s3_operation,
)

DATA = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def s3(proxy: FaultProxy) -> Any:
    client = s3_client(proxy.url)
    client.create_bucket(Bucket="bkt")
    client.put_object(Bucket="bkt", Key="k", Body=DATA)
    return client


def test_transparent_without_rules(proxy: FaultProxy, s3: Any) -> None:
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == DATA
    assert s3.head_object(Bucket="bkt", Key="k")["ContentLength"] == len(DATA)
    upload = s3.create_multipart_upload(Bucket="bkt", Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket="bkt", Key="mp", UploadId=upload, PartNumber=1, Body=b"x" * 10)["ETag"]
    s3.complete_multipart_upload(Bucket="bkt", Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert proxy.requests("CreateMultipartUpload") == proxy.requests("UploadPart") == 1
    assert proxy.requests("CompleteMultipartUpload") == 1 and proxy.requests("PutObject") == 1
    assert proxy.injected() == 0


@pytest.mark.parametrize(("reply", "code"), [
    (ErrorReply.slow_down(), "SlowDown"), (ErrorReply.internal_error(), "InternalError"),
    (ErrorReply.request_timeout(), "RequestTimeout"), (ErrorReply(412, "PreconditionFailed"), "PreconditionFailed"),
])
def test_error_replies(proxy: FaultProxy, s3: Any, reply: ErrorReply, code: str) -> None:
    rule = proxy.add(Rule(op="GetObject", action=reply, times=1))
    with pytest.raises(bce.ClientError) as info:
        s3.get_object(Bucket="bkt", Key="k")
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == reply.status
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == DATA  # times=1: the next one passes
    assert (rule.matched, rule.applied) == (2, 1) and proxy.injected("error") == 1


def test_error_reply_to_head_has_no_body(proxy: FaultProxy, s3: Any) -> None:
    proxy.add(Rule(op="HeadObject", action=ErrorReply.slow_down(), times=1))
    with pytest.raises(bce.ClientError) as info:
        s3.head_object(Bucket="bkt", Key="k")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.head_object(Bucket="bkt", Key="k")["ContentLength"] == len(DATA)  # connection still usable


def test_botocore_retries_through_transient_errors(proxy: FaultProxy) -> None:
    client = s3_client(proxy.url, max_attempts=4)
    client.create_bucket(Bucket="bkt")
    client.put_object(Bucket="bkt", Key="k", Body=DATA)
    rule = proxy.add(Rule(op="GetObject", action=ErrorReply.internal_error(), times=3))
    assert client.get_object(Bucket="bkt", Key="k")["Body"].read() == DATA
    assert rule.applied == 3


def test_skip_then_fire(proxy: FaultProxy, s3: Any) -> None:
    rule = proxy.add(Rule(op="HeadObject", action=ErrorReply.internal_error(), skip=2, times=1))
    s3.head_object(Bucket="bkt", Key="k")
    s3.head_object(Bucket="bkt", Key="k")
    with pytest.raises(bce.ClientError):
        s3.head_object(Bucket="bkt", Key="k")
    s3.head_object(Bucket="bkt", Key="k")
    assert (rule.matched, rule.applied) == (4, 1)


def test_cut_after_n_bytes(proxy: FaultProxy, s3: Any) -> None:
    proxy.add(Rule(op="GetObject", action=CutAfter(100_000), times=1))
    body = s3.get_object(Bucket="bkt", Key="k")["Body"]
    got = b""
    with pytest.raises((bce.ResponseStreamingError, bce.IncompleteReadError, ConnectionError)):
        while chunk := body.read(65536):
            got += chunk
    assert got == DATA[: len(got)] and len(got) <= 100_000


def test_flip_byte(proxy: FaultProxy, s3: Any) -> None:
    proxy.add(Rule(op="GetObject", action=FlipByte(offset=500_000), times=1))
    flipped = s3.get_object(Bucket="bkt", Key="k")["Body"].read()
    assert len(flipped) == len(DATA) and flipped != DATA
    assert [i for i in range(len(DATA)) if flipped[i] != DATA[i]] == [500_000]
    assert flipped[500_000] == DATA[500_000] ^ 1


def test_reset_drops_the_connection(proxy: FaultProxy, s3: Any) -> None:
    proxy.add(Rule(op="HeadObject", action=Reset(), times=1))
    with pytest.raises((bce.ConnectionClosedError, bce.EndpointConnectionError)):
        s3.head_object(Bucket="bkt", Key="k")


def test_delay_and_throttle_pass_the_bytes(proxy: FaultProxy, s3: Any) -> None:
    proxy.add(Rule(op="GetObject", action=Delay(0.05), times=1))
    proxy.add(Rule(op="GetObject", action=Throttle(8 * 1024 * 1024), times=1))
    assert hashlib.sha256(s3.get_object(Bucket="bkt", Key="k")["Body"].read()).digest() == hashlib.sha256(DATA).digest()
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == DATA
    assert proxy.injected("delay") == proxy.injected("throttle") == 1


def test_hold_parks_requests_until_released(proxy: FaultProxy, s3: Any) -> None:
    hold = Hold()
    proxy.add(Rule(op="HeadObject", action=hold))
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(s3.head_object(Bucket="bkt", Key="k")["ContentLength"]))
               for _ in range(2)]
    for t in threads:
        t.start()
    assert hold.wait_for(2, timeout=10)
    assert results == []
    hold.release()
    for t in threads:
        t.join(10)
    assert results == [len(DATA)] * 2


@pytest.mark.parametrize(("method", "target", "headers", "op"), [
    ("GET", "/", {}, "ListBuckets"), ("HEAD", "/b", {}, "HeadBucket"), ("GET", "/b?list-type=2", {}, "ListObjectsV2"),
    ("GET", "/b?uploads", {}, "ListMultipartUploads"), ("GET", "/b/k", {}, "GetObject"),
    ("HEAD", "/b/k/x", {}, "HeadObject"), ("PUT", "/b/k", {}, "PutObject"),
    ("PUT", "/b/k", {"x-amz-copy-source": "/b/j"}, "CopyObject"),
    ("PUT", "/b/k?partNumber=1&uploadId=u", {}, "UploadPart"),
    ("PUT", "/b/k?partNumber=1&uploadId=u", {"X-Amz-Copy-Source": "/b/j"}, "UploadPartCopy"),
    ("POST", "/b/k?uploads", {}, "CreateMultipartUpload"), ("POST", "/b/k?uploadId=u", {}, "CompleteMultipartUpload"),
    ("DELETE", "/b/k?uploadId=u", {}, "AbortMultipartUpload"), ("GET", "/b/k?uploadId=u", {}, "ListParts"),
    ("DELETE", "/b/k", {}, "DeleteObject"), ("POST", "/b?delete", {}, "DeleteObjects"),
])
def test_s3_operation(method: str, target: str, headers: dict[str, str], op: str) -> None:
    assert s3_operation(Request(method, target, list(headers.items()), b"")) == op


def test_only_loopback_upstreams() -> None:
    with pytest.raises(ValueError):
        FaultProxy("http://10.0.0.1:8333")
