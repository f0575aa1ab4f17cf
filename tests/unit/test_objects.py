"""Reading objects (dynafed_runtime.objects): HEAD with stored checksums,
and the pinned, resuming streaming read, against moto with a fake that cuts
connections mid-body."""
from __future__ import annotations

import base64
import random
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions as bce
import pytest
import urllib3.exceptions
from moto import mock_aws

from dynafed_runtime import errors
from dynafed_runtime.objects import head_object, iter_object, stored_checksums

BUCKET = "objects"
DATA = random.Random(5).randbytes(100_003)


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    # clients from one warm session are cheap to build (the model is loaded once)
    return boto3.session.Session(aws_access_key_id="AKID", aws_secret_access_key="secret",
                                 region_name="us-east-1")


@pytest.fixture
def s3(session: boto3.session.Session) -> Iterator[Any]:
    with mock_aws():
        client = session.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="obj", Body=DATA)
        client.put_object(Bucket=BUCKET, Key="empty", Body=b"")
        yield client


class BreakingBody:
    """A response body whose connection breaks after ``after`` bytes
    (or that ends early when ``error`` is None)."""

    def __init__(self, body: Any, after: int, error: BaseException | None) -> None:
        self._body, self._left, self._error = body, after, error

    def read(self, amt: int | None = None) -> bytes:
        if self._left <= 0:
            if self._error is None:
                return b""
            raise self._error
        data = self._body.read(min(amt or self._left, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._body.close()


class CuttingClient:
    """Delegates to a real client; the bodies of the first ``cuts`` GETs break.
    Records every GET's parameters."""

    def __init__(self, client: Any, *, cuts: int, after: int, error: BaseException | None) -> None:
        self._client, self.cuts, self.after, self.error = client, cuts, after, error
        self.gets: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.gets.append(kwargs)
        response = self._client.get_object(**kwargs)
        if self.cuts > 0:
            self.cuts -= 1
            response["Body"] = BreakingBody(response["Body"], self.after, self.error)
        return response


# --- HEAD ------------------------------------------------------------------------

def test_head_object(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="h", Body=b"abc", ContentType="text/x-test", CacheControl="no-cache",
                  Metadata={"Owner": "alice", "ADLER32": "24D0127", "md5": "not-hex!"})
    info = head_object(s3, BUCKET, "h")
    assert (info.bucket, info.key, info.size) == (BUCKET, "h", 3)
    assert info.etag.startswith('"') and info.content_type == "text/x-test"
    assert info.metadata["owner"] == "alice"  # keys lower-cased
    # canonical form; the non-hex md5 is ignored; boto3's default client sent a
    # CRC32 with the PUT, which the store now holds as a full-object checksum
    assert info.stored == {"adler32": "024d0127", "crc32": f"{zlib.crc32(b'abc'):08x}"}
    assert info.preserved == {"ContentType": "text/x-test", "CacheControl": "no-cache"}
    assert info.what == f"s3://{BUCKET}/h"


def test_head_missing_object_and_bucket(s3: Any) -> None:
    with pytest.raises(errors.NoSuchObject):
        head_object(s3, BUCKET, "absent")
    with pytest.raises(errors.NoSuchBucket):
        head_object(s3, "absent-bucket", "absent")


def test_s3_full_object_checksums_are_read(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="c", Body=b"123456789", ChecksumAlgorithm="CRC32")
    assert head_object(s3, BUCKET, "c").stored == {"crc32": "cbf43926"}


@pytest.mark.parametrize(("metadata", "head", "expected"), [
    ({}, {"ChecksumCRC32C": base64.b64encode(bytes.fromhex("e3069283")).decode()}, {"crc32c": "e3069283"}),
    ({}, {"ChecksumCRC32": "NSRBwg==-3"}, {}),                                   # per-part composite
    ({}, {"ChecksumCRC32": "NSRBwg==", "ChecksumType": "COMPOSITE"}, {}),
    ({}, {"ChecksumSHA256": "%%%not-base64"}, {}),
    ({"crc32": "CBF43926"}, {"ChecksumCRC32": base64.b64encode(b"\0\0\0\1").decode()}, {"crc32": "cbf43926"}),
    ({"adler32": "1", "sha1": "ABC" * 13 + "D"}, {}, {"adler32": "00000001", "sha1": "abc" * 13 + "d"}),
    # a stored value of the wrong form is no claim: never returned, never trusted
    ({"adler32": "a" * 320, "sha1": "ABC", "md5": "0x" + "0" * 30}, {}, {}),
    ({"crc32c": "123456789", "sha256": "f" * 63 + "g"}, {}, {}),
    ({}, {"ChecksumSHA256": base64.b64encode(b"short").decode()}, {}),
    ({"md4": "abcd", "adler32": " "}, {}, {}),
])
def test_stored_checksums(metadata: dict[str, str], head: dict[str, str], expected: dict[str, str]) -> None:
    assert stored_checksums(metadata, head) == expected


# --- the streaming read -------------------------------------------------------------

@pytest.mark.parametrize("chunk_size", [1000, 65_536, 100_003, 1 << 20])
def test_reads_the_whole_object(s3: Any, chunk_size: int) -> None:
    info = head_object(s3, BUCKET, "obj")
    chunks = list(iter_object(s3, info, chunk_size=chunk_size))
    assert b"".join(chunks) == DATA
    assert all(0 < len(c) <= chunk_size for c in chunks)


@pytest.mark.parametrize(("start", "end"), [(0, 1), (1, 100_003), (50_000, 50_001), (99_999, None),
                                            (10, 200_000)])
def test_reads_a_range(s3: Any, start: int, end: int | None) -> None:
    info = head_object(s3, BUCKET, "obj")
    assert b"".join(iter_object(s3, info, start=start, end=end, chunk_size=4096)) == DATA[start:end]


@pytest.mark.parametrize(("key", "start", "end"), [("empty", 0, None), ("obj", 500, 500), ("obj", 100_003, None)])
def test_empty_reads_make_no_get(s3: Any, key: str, start: int, end: int | None) -> None:
    client = CuttingClient(s3, cuts=0, after=0, error=None)
    info = head_object(client, BUCKET, key)
    assert list(iter_object(client, info, start=start, end=end)) == []
    assert client.gets == []  # a ranged GET of a 0-byte object is a 416


def test_every_get_is_pinned_to_the_etag(s3: Any) -> None:
    client = CuttingClient(s3, cuts=1, after=30_000, error=bce.ResponseStreamingError(error="reset"))
    info = head_object(client, BUCKET, "obj")
    assert b"".join(iter_object(client, info, start=10)) == DATA[10:]
    assert client.gets and all(g["IfMatch"] == info.etag for g in client.gets)


def test_overwrite_during_the_read_is_source_changed(s3: Any) -> None:
    info = head_object(s3, BUCKET, "obj")
    s3.put_object(Bucket=BUCKET, Key="obj", Body=b"a newer version")
    with pytest.raises(errors.SourceChanged):
        list(iter_object(s3, info))


def test_overwrite_between_resumes_is_source_changed(s3: Any) -> None:
    client = CuttingClient(s3, cuts=1, after=20_000, error=urllib3.exceptions.ProtocolError("reset"))
    info = head_object(client, BUCKET, "obj")
    reader = iter_object(client, info, chunk_size=10_000)
    first = next(reader)
    s3.put_object(Bucket=BUCKET, Key="obj", Body=b"a newer version")
    with pytest.raises(errors.SourceChanged):
        list(reader)
    assert len(first) == 10_000


@pytest.mark.parametrize("error", [
    bce.ResponseStreamingError(error="reset"),
    bce.ReadTimeoutError(endpoint_url="http://s3"),
    urllib3.exceptions.ProtocolError("Connection broken"),
    ConnectionResetError(104, "reset"),
    None,  # the body just ends early
], ids=lambda e: type(e).__name__)
def test_resumes_after_a_cut_from_the_last_byte(s3: Any, error: BaseException | None) -> None:
    client = CuttingClient(s3, cuts=2, after=12_345, error=error)
    info = head_object(client, BUCKET, "obj")
    assert b"".join(iter_object(client, info, chunk_size=5000)) == DATA
    assert len(client.gets) == 3
    assert "Range" not in client.gets[0]
    assert client.gets[1]["Range"] == "bytes=12345-100002"
    assert client.gets[2]["Range"] == "bytes=24690-100002"


def test_gives_up_after_repeated_cuts(s3: Any) -> None:
    client = CuttingClient(s3, cuts=100, after=1000, error=bce.ResponseStreamingError(error="reset"))
    info = head_object(client, BUCKET, "obj")
    with pytest.raises(errors.UpstreamUnavailable):
        b"".join(iter_object(client, info, max_resumes=3))
    assert len(client.gets) == 4


def test_non_transient_errors_are_not_resumed(s3: Any) -> None:
    client = CuttingClient(s3, cuts=1, after=1000, error=ValueError("bug"))
    info = head_object(client, BUCKET, "obj")
    with pytest.raises(errors.InternalError):
        list(iter_object(client, info))
    assert len(client.gets) == 1
