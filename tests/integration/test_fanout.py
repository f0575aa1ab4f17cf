"""The fast read paths on the real thing: the checksum function under
gunicorn reading SeaweedFS over HTTP (in-place readinto from the response,
pipelined digests, parallel pinned ranges combined), and the client's
ranged fan-out combining the function's per-range answers. Every result is
compared with hashlib / zlib / google-crc32c on the uploaded bytes."""
from __future__ import annotations

import random
from typing import Any

import pytest
import requests

from dynafed_client import Client
from dynafed_client.fanout import fanout_checksum
from dynafed_contract.algorithms import ALGORITHMS
from dynafed_contract.checksum import ObjectRef
from tests.reference_checksums import reference

MiB = 1024 * 1024
# above the engine's parallel threshold (64 MiB ranges): two ranges, uneven
LARGE = 100 * MiB + 12_345


@pytest.fixture(scope="module")
def large(stack: Any) -> bytes:
    data = random.Random(42).randbytes(LARGE)
    s3 = stack.s3_client("default")
    # multipart, as large objects are: the ETag is not an MD5
    upload = s3.create_multipart_upload(Bucket="demo", Key="fanout/large.bin")["UploadId"]
    parts = []
    for number, offset in enumerate(range(0, LARGE, 32 * MiB), start=1):
        etag = s3.upload_part(Bucket="demo", Key="fanout/large.bin", UploadId=upload, PartNumber=number,
                              Body=data[offset:offset + 32 * MiB])["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket="demo", Key="fanout/large.bin", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    return data


def checksum(stack: Any, key: str, algorithms: list[str], **extra: Any) -> dict[str, Any]:
    response = requests.post(f"{stack.functions['checksum']}/", timeout=300,
                             json={"store": "default", "bucket": "demo", "key": key, "algorithms": algorithms,
                                   **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_every_algorithm_over_one_pipelined_stream(stack: Any, large: bytes) -> None:
    body = checksum(stack, "fanout/large.bin", list(ALGORITHMS))
    assert body["size"] == LARGE
    assert body["checksums"] == {a: reference(a, large) for a in ALGORITHMS}


def test_combinable_digests_over_parallel_ranges(stack: Any, large: bytes) -> None:
    body = checksum(stack, "fanout/large.bin", ["adler32", "crc32", "crc32c"])
    assert body["checksums"] == {a: reference(a, large) for a in ("adler32", "crc32", "crc32c")}


def test_ranged_requests_answer_their_range(stack: Any, large: bytes) -> None:
    view = memoryview(large)
    for start, end in [(0, 0), (0, 1), (5, 70 * MiB + 3), (LARGE - 10, LARGE), (LARGE - 10, LARGE + 100)]:
        body = checksum(stack, "fanout/large.bin", ["adler32", "crc32c"], range=[start, end])
        assert body["range"] == [start, min(end, LARGE)]
        assert body["checksums"] == {a: reference(a, view[start:end]) for a in ("adler32", "crc32c")}, (start, end)


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_client_fan_out_equals_the_whole_object_checksum(stack: Any, large: bytes, parts: int) -> None:
    with Client.from_stack(stack.state_dir) as client:
        result = fanout_checksum(client, ObjectRef("default", "demo", "fanout/large.bin"),
                                 ["adler32", "crc32", "crc32c"], parts=parts, min_part=MiB)
    assert result.size == LARGE
    assert dict(result.checksums) == {a: reference(a, large) for a in ("adler32", "crc32", "crc32c")}
    assert result.raw["fan_out"] == parts


def test_small_and_empty_objects(stack: Any) -> None:
    s3 = stack.s3_client("default")
    for key, data in {"fanout/empty": b"", "fanout/one": b"\x01", "fanout/4k": random.Random(1).randbytes(4096),
                      "fanout/just-over-1m": random.Random(2).randbytes(MiB + 1)}.items():
        s3.put_object(Bucket="demo", Key=key, Body=data)
        body = checksum(stack, key, list(ALGORITHMS))
        assert body["size"] == len(data)
        assert body["checksums"] == {a: reference(a, data) for a in ALGORITHMS}, key


def test_the_function_keeps_serving_after_many_requests(stack: Any) -> None:
    # connections handed back to the pool after in-place reads must be clean:
    # a reused connection with unread bytes would garble the next answer
    s3 = stack.s3_client("default")
    data = {f"fanout/reuse-{i}": random.Random(i).randbytes(1000 + 4097 * i) for i in range(6)}
    for key, value in data.items():
        s3.put_object(Bucket="demo", Key=key, Body=value)
    for _ in range(5):
        for key, value in data.items():
            assert checksum(stack, key, ["md5"])["checksums"]["md5"] == reference("md5", value)
            ranged = checksum(stack, key, ["adler32"], range=[7, 900])
            assert ranged["checksums"]["adler32"] == reference("adler32", value[7:900])


@pytest.mark.parametrize(("size", "end"), [(0, None), (5000, None), (3 * MiB, None), (3 * MiB, 1000)],
                         ids=["empty", "small", "several-buffers", "partial"])
def test_connections_are_reused_only_when_clean(stack: Any, size: int, end: int | None) -> None:
    # in-place reads bypass urllib3's bookkeeping: a connection handed back
    # with an unfinished response fails its next request (botocore then
    # retries it, which hides the bug but costs a round trip)
    from dynafed_runtime.objects import BufferPool, open_object, read_buffers

    s3 = stack.s3_client("default", max_pool_connections=1)
    key = f"fanout/reuse-size-{size}"
    data = random.Random(size).randbytes(size)
    s3.put_object(Bucket="demo", Key=key, Body=data)
    info, body = open_object(s3, "demo", key)
    pool = BufferPool(2, MiB, mapped=True)
    got = bytearray()
    for view in read_buffers(s3, info, pool, end=end, body=body):
        got += view
        pool.put(view.obj)
    assert bytes(got) == data[:end]
    after = s3.head_object(Bucket="demo", Key=key)
    assert after["ResponseMetadata"]["RetryAttempts"] == 0
