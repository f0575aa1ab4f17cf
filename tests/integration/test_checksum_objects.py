"""The checksum function under real gunicorn against real SeaweedFS (the
local stack): object sizes around the multipart boundaries and one object of
a few hundred MiB, awkward keys, the metadata cache on a real store, 404s.
Every value is compared with hashlib / zlib / google-crc32c computed here."""
from __future__ import annotations

import hashlib
import io
import random
import zlib
from collections.abc import Iterator
from typing import Any

import google_crc32c
import pytest
import requests
from boto3.s3.transfer import TransferConfig

from dynafed_client.stack import Stack
from dynafed_contract.algorithms import ALGORITHMS

MiB = 1024 * 1024
BUCKET = "demo"
TIMEOUT = 120


class LocalDigests:
    """The independent computation: zlib, google-crc32c and hashlib."""

    def __init__(self, algorithms: tuple[str, ...] = ALGORITHMS) -> None:
        self.algorithms = algorithms
        self.adler32, self.crc32 = 1, 0
        self.crc32c = google_crc32c.Checksum()
        self.hashes = {a: hashlib.new(a) for a in algorithms if a not in ("adler32", "crc32", "crc32c")}

    def update(self, data: bytes) -> None:
        if "adler32" in self.algorithms:
            self.adler32 = zlib.adler32(data, self.adler32)
        if "crc32" in self.algorithms:
            self.crc32 = zlib.crc32(data, self.crc32)
        if "crc32c" in self.algorithms:
            self.crc32c.update(data)
        for h in self.hashes.values():
            h.update(data)

    def hexdigests(self) -> dict[str, str]:
        values = {"adler32": f"{self.adler32:08x}", "crc32": f"{self.crc32:08x}",
                  "crc32c": self.crc32c.hexdigest().decode(),
                  **{a: h.hexdigest() for a, h in self.hashes.items()}}
        return {a: values[a] for a in self.algorithms}


def local(data: bytes) -> dict[str, str]:
    digests = LocalDigests()
    digests.update(data)
    return digests.hexdigests()


class GeneratedObject(io.RawIOBase):
    """``size`` deterministic bytes, made on the fly while being read (so a
    few hundred MiB never sit in memory), digested locally as they go out.

    Each MiB is one random MiB with its index written over its first 8 bytes:
    cheap to make, yet a reader that dropped, repeated or reordered blocks
    would get different digests.
    """

    def __init__(self, size: int, seed: int, algorithms: tuple[str, ...]) -> None:
        self.size = size
        self.position = 0
        self.block = bytearray(random.Random(seed).randbytes(MiB))
        self.digests = LocalDigests(algorithms)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = 0
        while n < len(view) and self.position < self.size:
            index, offset = divmod(self.position, MiB)
            self.block[:8] = index.to_bytes(8, "big")
            take = min(len(view) - n, MiB - offset, self.size - self.position)
            piece = bytes(self.block[offset:offset + take])
            view[n:n + take] = piece
            self.digests.update(piece)
            n += take
            self.position += take
        return n


@pytest.fixture(scope="module")
def function(stack: Stack) -> str:
    assert "checksum" in stack.functions, f"checksum function not started: {stack.skipped}"
    return stack.functions["checksum"]


@pytest.fixture(scope="module")
def s3(stack: Stack) -> Any:
    return stack.s3_client("default")


def checksum(function: str, key: str, algorithms: tuple[str, ...] | list[str] = ALGORITHMS,
             **extra: Any) -> requests.Response:
    body = {"bucket": BUCKET, "key": key, "algorithms": list(algorithms), **extra}
    return requests.post(function, json=body, timeout=TIMEOUT)


def ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("size", [0, 1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1],
                         ids=["0", "1", "5MiB-1", "5MiB", "5MiB+1"])
def test_sizes_around_the_boundaries(function: str, s3: Any, size: int) -> None:
    data = random.Random(size).randbytes(size)
    key = f"sizes/{size}"
    if size > 5 * MiB:
        # multipart (5 MiB + 1 byte parts): a "-2" ETag that is no MD5
        s3.upload_fileobj(io.BytesIO(data), BUCKET, key,
                          Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    else:
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    body = ok(checksum(function, key))
    assert body["size"] == size
    assert body["checksums"] == local(data)
    if size > 5 * MiB:
        assert body["etag"].endswith('-2"')


def test_a_few_hundred_mib(function: str, s3: Any, record_property: Any) -> None:
    size = 300 * MiB + 12_345
    # two requests, two read paths: CRC-like digests only (combinable across
    # parallel ranges) and a mix with md5/sha256 (one pinned stream)
    combinable, mixed = ("adler32", "crc32", "crc32c"), ("adler32", "md5", "sha256")
    source = GeneratedObject(size, seed=300, algorithms=("adler32", "crc32", "crc32c", "md5", "sha256"))
    s3.upload_fileobj(source, BUCKET, "big/300MiB.bin",
                      Config=TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB,
                                            max_concurrency=4))
    assert source.position == size
    expected = source.digests.hexdigests()
    for algorithms in (combinable, mixed):
        body = ok(checksum(function, "big/300MiB.bin", algorithms))
        assert body["size"] == size
        assert body["checksums"] == {a: expected[a] for a in algorithms}
        assert body["etag"].endswith('-5"')  # really a multipart object
        record_property(f"elapsed_s[{','.join(algorithms)}]", body["elapsed_s"])


KEYS = [
    "with space.txt",
    "  leading and trailing  ",
    "ünïcødé/ключ/键/🙂.dat",
    "100% done",
    "%41%20not-decoded",
    "a+b+c",
    "plus + and space",
    "q?x=1&y=2#frag",
    "/".join(f"level{i}" for i in range(40)) + "/deep.bin",
    "dir//double//slashes",
    "tilde~and'quote\"",
]


@pytest.mark.parametrize("key", KEYS)
def test_awkward_keys(function: str, s3: Any, key: str) -> None:
    data = key.encode() * 3
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    body = ok(checksum(function, key, ["adler32", "md5", "crc32c"]))
    assert body["key"] == key
    assert body["checksums"] == {a: local(data)[a] for a in ("adler32", "md5", "crc32c")}


def test_cache_write_back_preserves_metadata_and_content_type(function: str, s3: Any) -> None:
    data = b"metadata survives" * 1000
    key = "cache/write back.bin"
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="application/x-hdf5",
                  Metadata={"experiment": "alice", "run": "42"})
    before = s3.head_object(Bucket=BUCKET, Key=key)
    body = ok(checksum(function, key, ["adler32", "md5"], cache="write"))
    assert body["written"] == ["adler32", "md5"] and body["cached"] == []
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/x-hdf5"
    assert head["ContentLength"] == len(data)
    expected = local(data)
    assert {k.lower(): v for k, v in head["Metadata"].items()} == {
        "experiment": "alice", "run": "42", "adler32": expected["adler32"], "md5": expected["md5"]}
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert before["ContentLength"] == head["ContentLength"]
    # now answered from the store's metadata
    cached = ok(checksum(function, key, ["adler32", "md5", "sha1"], cache="use"))
    assert cached["cached"] == ["adler32", "md5"]
    assert cached["checksums"] == {a: expected[a] for a in ("adler32", "md5", "sha1")}
    # and verified when computing
    assert ok(checksum(function, key, ["adler32", "md5"]))["cached"] == []


def test_cache_read_is_case_insensitive_and_mismatch_is_422(function: str, s3: Any) -> None:
    data = b"x" * 1000
    s3.put_object(Bucket=BUCKET, Key="cache/upper", Body=data, Metadata={"ADLER32": local(data)["adler32"].upper()})
    assert ok(checksum(function, "cache/upper", ["adler32"], cache="use"))["cached"] == ["adler32"]
    s3.put_object(Bucket=BUCKET, Key="cache/wrong", Body=data, Metadata={"adler32": "0badc0de"})
    response = checksum(function, "cache/wrong", ["adler32"])
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "CHECKSUM_MISMATCH"
    refreshed = ok(checksum(function, "cache/wrong", ["adler32"], cache="refresh"))
    assert refreshed["written"] == ["adler32"]
    assert s3.head_object(Bucket=BUCKET, Key="cache/wrong")["Metadata"]["adler32"] == local(data)["adler32"]


def test_missing_object_and_bucket(function: str) -> None:
    missing_key = checksum(function, "no/such/key")
    assert missing_key.status_code == 404 and missing_key.json()["code"] == "NO_SUCH_OBJECT"
    missing_bucket = requests.post(function, json={"bucket": "no-such-bucket", "key": "k"}, timeout=TIMEOUT)
    assert missing_bucket.status_code == 404 and missing_bucket.json()["code"] == "NO_SUCH_BUCKET"
    for response in (missing_key, missing_bucket):
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.json()["retryable"] is False


def test_unknown_algorithm(function: str) -> None:
    response = checksum(function, "whatever", ["adler32", "md4"])
    assert response.status_code == 400 and response.json()["code"] == "UNKNOWN_ALGORITHM"


def test_s3_notification_record(function: str, s3: Any) -> None:
    data = b"uploaded and notified"
    s3.put_object(Bucket=BUCKET, Key="incoming/new file+1.txt", Body=data, Metadata={"owner": "me"})
    record = {"eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": BUCKET}, "object": {"key": "incoming/new+file%2B1.txt"}}}
    body = ok(requests.post(function, json={"Records": [record]}, timeout=TIMEOUT))
    [result] = body["results"]
    assert result["key"] == "incoming/new file+1.txt"
    assert result["checksums"] == {"adler32": local(data)["adler32"], "md5": local(data)["md5"]}
    metadata = s3.head_object(Bucket=BUCKET, Key="incoming/new file+1.txt")["Metadata"]
    assert metadata == {"owner": "me", "adler32": local(data)["adler32"], "md5": local(data)["md5"]}


@pytest.fixture(scope="module", autouse=True)
def _clean_bucket(s3: Any) -> Iterator[None]:
    yield
    # the stack is shared by the session: leave no large objects behind
    for key in ("big/300MiB.bin", *(f"sizes/{s}" for s in (5 * MiB - 1, 5 * MiB, 5 * MiB + 1))):
        s3.delete_object(Bucket=BUCKET, Key=key)
