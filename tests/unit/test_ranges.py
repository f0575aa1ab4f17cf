"""The fast read paths of the checksum engine: in-place reads into recycled
buffers, parallel pinned ranges (combined or handed over in order), and the
choice among them in ``digest_object``. Every path must give exactly the
digests of the bytes, pin every GET to the ETag, resume after a cut
connection, and leave no thread behind, whatever the outcome."""
from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from dynafed_contract.algorithms import ALGORITHMS
from dynafed_runtime import errors
from dynafed_runtime.hashing import ReadTuning, digest_object
from dynafed_runtime.objects import (
    BufferPool,
    BufferPoolClosed,
    ObjectInfo,
    head_object,
    open_object,
    read_buffers,
)
from dynafed_runtime.ranges import combined_checksums, plan_ranges, read_buffers_parallel
from tests.reference_checksums import reference

ETAG = '"etag-1"'


class CutStream(io.BytesIO):
    """A response body whose connection breaks after ``cut_after`` bytes."""

    def __init__(self, data: bytes, cut_after: int | None) -> None:
        super().__init__(data)
        self.cut_after = cut_after
        self.released = False

    def release_conn(self) -> None:
        """urllib3's: the connection goes back to the pool (only if fully read)."""
        assert self.tell() == len(self.getvalue()), "released with unread bytes"
        self.released = True

    def readinto(self, buffer: Any) -> int:
        if self.cut_after is not None:
            if self.tell() >= self.cut_after:
                raise ConnectionResetError("connection reset by peer")
            view = memoryview(buffer)[:self.cut_after - self.tell()]
            return super().readinto(view)
        return super().readinto(buffer)


class MemoryS3:
    """A recording fake of the S3 client's get_object: Range, IfMatch (412
    when the object changed), and injected connection cuts."""

    def __init__(self, data: bytes, *, etag: str = ETAG) -> None:
        self.data = data
        self.etag = etag
        self.calls: list[dict[str, Any]] = []
        self.cuts: list[int] = []  # cut the next GETs' bodies after so many bytes
        self.changed_after_calls: int | None = None  # the object is overwritten after N GETs
        self.lock = threading.Lock()
        self.streams: list[CutStream] = []

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append(kwargs)
            number = len(self.calls)
            cut = self.cuts.pop(0) if self.cuts else None
        etag = self.etag
        if self.changed_after_calls is not None and number > self.changed_after_calls:
            etag = '"etag-2"'
        if kwargs.get("IfMatch") not in (None, etag):
            raise ClientError({"Error": {"Code": "PreconditionFailed", "Message": "At least one of the "
                               "pre-conditions you specified did not hold"},
                               "ResponseMetadata": {"HTTPStatusCode": 412}}, "GetObject")
        start, end = 0, len(self.data) - 1
        if "Range" in kwargs:
            first, last = kwargs["Range"].removeprefix("bytes=").split("-")
            start, end = int(first), min(int(last), len(self.data) - 1)
        body = self.data[start:end + 1]
        self.streams.append(CutStream(body, cut))
        return {"Body": StreamingBody(self.streams[-1], len(body)), "ContentLength": len(body), "ETag": etag,
                "Metadata": {"adler32": "0000abcd"}}

    def ranges(self) -> list[tuple[int, int]]:
        """[start, end) of every GET."""
        out = []
        for call in self.calls:
            if "Range" in call:
                first, last = call["Range"].removeprefix("bytes=").split("-")
                out.append((int(first), int(last) + 1))
            else:
                out.append((0, len(self.data)))
        return out


def info_for(data: bytes) -> ObjectInfo:
    return ObjectInfo(bucket="bkt", key="obj", size=len(data), etag=ETAG, content_type=None, metadata={},
                      stored={}, preserved={})


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Any:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return
        time.sleep(0.01)
    pytest.fail(f"threads left running: {[t.name for t in left]}")


def collect(views: Any, pool: BufferPool | None = None) -> bytes:
    out = bytearray()
    for item in views:
        view, owner = item if isinstance(item, tuple) else (item, pool)
        out += view
        owner.put(view.obj)
    return bytes(out)


# -- plan_ranges ------------------------------------------------------------

@given(start=st.integers(0, 10_000), length=st.integers(0, 10_000), part=st.integers(1, 3000))
def test_plan_ranges_tile_the_range_exactly(start: int, length: int, part: int) -> None:
    ranges = plan_ranges(start, start + length, part)
    assert [b for _, b in ranges[:-1]] == [a for a, _ in ranges[1:]]
    assert all(0 < b - a <= part for a, b in ranges)
    if length:
        assert ranges[0][0] == start and ranges[-1][1] == start + length
    else:
        assert ranges == []


# -- BufferPool -------------------------------------------------------------

def test_pool_allocates_lazily_and_recycles() -> None:
    pool = BufferPool(2, 16)
    a = pool.get()
    b = pool.get()
    assert len(a) == len(b) == 16 and a is not b
    pool.put(a)
    assert pool.get() is a


def test_pool_get_blocks_until_a_buffer_is_put_back() -> None:
    pool = BufferPool(1, 8)
    held = pool.get()
    got: list[bytearray] = []
    waiter = threading.Thread(target=lambda: got.append(pool.get()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not got
    pool.put(held)
    waiter.join(5)
    assert got == [held]


def test_pool_close_wakes_waiters() -> None:
    pool = BufferPool(1, 8)
    pool.get()
    failures: list[BaseException] = []

    def wait() -> None:
        try:
            pool.get()
        except BufferPoolClosed as exc:
            failures.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    pool.close()
    waiter.join(5)
    assert len(failures) == 1


# -- read_buffers -------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(0, 5000), start=st.integers(0, 5000), length=st.integers(0, 6000),
       chunk=st.integers(1, 700), count=st.integers(1, 3))
def test_read_buffers_yields_exactly_the_range(size: int, start: int, length: int, chunk: int, count: int) -> None:
    data = random.Random(size).randbytes(size)
    start = min(start, size)
    fake = MemoryS3(data)
    pool = BufferPool(count, chunk)
    views = list_and_release(read_buffers(fake, info_for(data), pool, start=start, end=start + length), pool)
    assert b"".join(views) == data[start:start + length]
    assert all(len(v) == chunk for v in views[:-1])
    assert all(call["IfMatch"] == ETAG for call in fake.calls)
    assert len(fake.calls) == (1 if data[start:start + length] else 0)  # one GET, none for nothing


def list_and_release(views: Any, pool: BufferPool) -> list[bytes]:
    out = []
    for view in views:
        out.append(bytes(view))
        pool.put(view.obj)
    return out


def test_read_buffers_fill_buffers_in_place() -> None:
    data = random.Random(1).randbytes(10_000)
    pool = BufferPool(2, 1000)
    seen = set()
    for view in read_buffers(MemoryS3(data), info_for(data), pool):
        seen.add(id(view.obj))
        pool.put(view.obj)
    assert len(seen) <= 2  # recycled, never a fresh buffer per chunk


def test_read_buffers_resume_after_a_cut_connection_still_pinned() -> None:
    data = random.Random(2).randbytes(50_000)
    fake = MemoryS3(data)
    fake.cuts = [12_345, 20_000]  # the first GET dies at 12345, the second 20000 bytes later
    pool = BufferPool(3, 4096)
    assert collect(read_buffers(fake, info_for(data), pool), pool) == data
    assert fake.ranges() == [(0, 50_000), (12_345, 50_000), (32_345, 50_000)]
    assert all(call["IfMatch"] == ETAG for call in fake.calls)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(0, 20_000), chunk=st.integers(1, 5000), step=st.integers(1, 3000),
       cuts=st.lists(st.integers(1, 6000), max_size=3))
def test_read_buffers_on_fill_sees_every_byte_once_in_order_before_its_buffer(
        size: int, chunk: int, step: int, cuts: list[int]) -> None:
    """``on_fill`` gets each slice (at most ``fill_step`` bytes) as it is read,
    resumptions after cut connections included: the slices joined are the
    bytes, and every byte reached ``on_fill`` before its buffer was yielded."""
    data = random.Random(size).randbytes(size)
    fake = MemoryS3(data)
    fake.cuts = list(cuts)
    pool = BufferPool(2, chunk)
    slices: list[bytes] = []
    yielded = 0
    for view in read_buffers(fake, info_for(data), pool, on_fill=lambda s: slices.append(bytes(s)),
                             fill_step=step):
        yielded += len(view)
        assert sum(map(len, slices)) == yielded  # the buffer's bytes went through on_fill first
        assert b"".join(slices)[yielded - len(view):yielded] == bytes(view)
        pool.put(view.obj)
    assert b"".join(slices) == data
    assert all(0 < len(s) <= step for s in slices)


def test_read_buffers_give_up_after_max_resumes() -> None:
    data = bytes(10_000)
    fake = MemoryS3(data)
    fake.cuts = [100, 100, 100, 100]
    pool = BufferPool(1, 4096)
    with pytest.raises(errors.UpstreamUnavailable):
        collect(read_buffers(fake, info_for(data), pool, max_resumes=3), pool)
    assert len(fake.calls) == 4


def test_read_buffers_overwrite_between_resumes_is_source_changed() -> None:
    data = bytes(10_000)
    fake = MemoryS3(data)
    fake.cuts = [5000]
    fake.changed_after_calls = 1
    pool = BufferPool(1, 4096)
    with pytest.raises(errors.SourceChanged):
        collect(read_buffers(fake, info_for(data), pool), pool)


def test_read_buffers_with_moto_objects() -> None:
    data = random.Random(3).randbytes(300_000)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bkt")
        client.put_object(Bucket="bkt", Key="obj", Body=data)
        info = head_object(client, "bkt", "obj")
        pool = BufferPool(2, 65_536)
        assert collect(read_buffers(client, info, pool, start=1000, end=250_000), pool) == data[1000:250_000]


# -- combined_checksums -------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(0, 40_000), part=st.integers(1, 9000), streams=st.integers(1, 5),
       chunk=st.integers(1, 5000), start=st.integers(0, 1000),
       algorithms=st.lists(st.sampled_from(["adler32", "crc32", "crc32c"]), min_size=1, unique=True))
def test_combined_checksums_equal_whole_object_digests(size: int, part: int, streams: int, chunk: int, start: int,
                                                       algorithms: list[str]) -> None:
    data = random.Random(size).randbytes(size)
    start = min(start, size)
    fake = MemoryS3(data)
    result = combined_checksums(fake, info_for(data), algorithms, start=start, end=size, streams=streams,
                                part_size=part, chunk_size=chunk)
    assert result == {a: reference(a, data[start:]) for a in algorithms}
    assert sorted(fake.ranges()) == plan_ranges(start, size, part)  # each byte fetched once
    assert all(call["IfMatch"] == ETAG for call in fake.calls)


def test_combined_checksums_reports_progress_of_every_byte() -> None:
    data = random.Random(4).randbytes(100_000)
    counted: list[int] = []
    lock = threading.Lock()

    def on_bytes(n: int) -> None:
        with lock:
            counted.append(n)

    combined_checksums(MemoryS3(data), info_for(data), ["adler32"], start=0, end=len(data), streams=3,
                       part_size=7000, chunk_size=1000, on_bytes=on_bytes)
    assert sum(counted) == len(data)


def test_combined_checksums_overwrite_mid_read_fails_whole() -> None:
    data = bytes(100_000)
    fake = MemoryS3(data)
    fake.changed_after_calls = 3
    with pytest.raises(errors.SourceChanged):
        combined_checksums(fake, info_for(data), ["crc32c"], start=0, end=len(data), streams=2,
                           part_size=5000, chunk_size=1000)


def test_combined_checksums_resume_cut_ranges() -> None:
    data = random.Random(5).randbytes(60_000)
    fake = MemoryS3(data)
    fake.cuts = [3000, 0, 7]
    result = combined_checksums(fake, info_for(data), ["adler32", "crc32"], start=0, end=len(data), streams=3,
                                part_size=10_000, chunk_size=4096)
    assert result == {a: reference(a, data) for a in ("adler32", "crc32")}


# -- read_buffers_parallel ----------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(0, 40_000), part=st.integers(1, 9000), streams=st.integers(1, 5),
       chunk=st.integers(1, 5000), read_ahead=st.integers(1, 3))
def test_parallel_reads_arrive_in_order(size: int, part: int, streams: int, chunk: int, read_ahead: int) -> None:
    data = random.Random(size).randbytes(size)
    fake = MemoryS3(data)
    got = collect(read_buffers_parallel(fake, info_for(data), start=0, end=size, streams=streams, part_size=part,
                                        chunk_size=chunk, read_ahead=read_ahead))
    assert got == data
    assert sorted(fake.ranges()) == plan_ranges(0, size, part)
    assert all(call["IfMatch"] == ETAG for call in fake.calls)


def test_parallel_reads_propagate_an_overwrite() -> None:
    data = bytes(100_000)
    fake = MemoryS3(data)
    fake.changed_after_calls = 4
    with pytest.raises(errors.SourceChanged):
        collect(read_buffers_parallel(fake, info_for(data), start=0, end=len(data), streams=3, part_size=5000,
                                      chunk_size=1000, read_ahead=2))


def test_parallel_reads_stop_when_the_consumer_stops() -> None:
    data = bytes(200_000)
    reader = read_buffers_parallel(MemoryS3(data), info_for(data), start=0, end=len(data), streams=4,
                                   part_size=5000, chunk_size=1000, read_ahead=2)
    view, pool = next(reader)
    pool.put(view.obj)
    reader.close()  # the fixture checks every worker ended


def test_parallel_reads_hold_at_most_read_ahead_buffers_per_stream() -> None:
    data = random.Random(6).randbytes(200_000)
    pools: set[int] = set()
    buffers: set[int] = set()
    for view, pool in read_buffers_parallel(MemoryS3(data), info_for(data), start=0, end=len(data), streams=3,
                                            part_size=10_000, chunk_size=1000, read_ahead=2):
        pools.add(id(pool))
        buffers.add(id(view.obj))
        pool.put(view.obj)
    assert len(pools) == 3 and len(buffers) <= 3 * 2


# -- digest_object: every path gives the same digests -------------------------

SMALL = ReadTuning(chunk_size=4096, read_ahead=2, streams=3, part_size=10_000, parallel_min=20_000,
                   inline_max=1000)
PATHS = {
    "inline": SMALL,
    "pipelined": ReadTuning(**{**SMALL.__dict__, "parallel_min": 10**9}),
    "parallel": SMALL,
    "ordered-parallel": ReadTuning(**{**SMALL.__dict__, "ordered_streams": 3}),
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("algorithms", [["adler32"], ["crc32", "crc32c"], ["md5"], list(ALGORITHMS)],
                         ids=lambda a: "+".join(a))
def test_digest_object_paths_agree_with_reference(path: str, algorithms: list[str]) -> None:
    size = 800 if path == "inline" else 123_457
    data = random.Random(size).randbytes(size)
    fake = MemoryS3(data)
    progress: list[int] = []
    result = digest_object(fake, info_for(data), algorithms, tuning=PATHS[path], on_bytes=progress.append)
    assert result == {a: reference(a, data) for a in algorithms}
    assert sum(progress) == size
    assert all(call["IfMatch"] == ETAG for call in fake.calls)
    parallel = path in ("parallel", "ordered-parallel") and (path == "ordered-parallel" or len(algorithms) <= 3
                                                            and "md5" not in algorithms)
    assert (len(fake.calls) > 1) == parallel


def test_digest_object_of_a_range_and_of_nothing() -> None:
    data = random.Random(7).randbytes(100_000)
    fake = MemoryS3(data)
    assert digest_object(fake, info_for(data), ["md5", "adler32"], start=10, end=90_000, tuning=SMALL) == {
        "md5": reference("md5", data[10:90_000]), "adler32": reference("adler32", data[10:90_000])}
    empty = MemoryS3(b"")
    assert digest_object(empty, info_for(b""), ["adler32", "md5"]) == {
        "adler32": "00000001", "md5": reference("md5", b"")}
    assert empty.calls == []  # a ranged GET of a 0-byte object is 416: never sent


@pytest.mark.parametrize("path", ["pipelined", "parallel", "ordered-parallel"])
def test_digest_object_failure_leaves_no_threads(path: str) -> None:
    data = bytes(100_000)
    fake = MemoryS3(data)
    fake.changed_after_calls = 2
    fake.cuts = [50, 50]
    with pytest.raises(errors.SourceChanged):
        digest_object(fake, info_for(data), ["adler32", "sha1"] if path != "parallel" else ["adler32"],
                      tuning=PATHS[path])


# -- one GET instead of HEAD + GET ---------------------------------------------

def test_open_object_gives_the_head_information_and_the_body() -> None:
    data = random.Random(8).randbytes(200_000)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bkt")
        client.put_object(Bucket="bkt", Key="obj", Body=data, Metadata={"adler32": "ABCD"}, ContentType="x/y",
                          ChecksumAlgorithm="SHA256")
        head = head_object(client, "bkt", "obj")
        info, body = open_object(client, "bkt", "obj")
        assert info == head
        assert info.stored["sha256"] == hashlib.sha256(data).hexdigest()
        pool = BufferPool(2, 65_536)
        assert collect(read_buffers(client, info, pool, body=body), pool) == data
        with pytest.raises(errors.NoSuchObject):
            open_object(client, "bkt", "missing")
        with pytest.raises(errors.NoSuchBucket):
            open_object(client, "nobucket", "obj")


def test_a_fully_read_body_goes_back_to_the_pool_a_partial_one_is_closed() -> None:
    data = random.Random(9).randbytes(10_000)
    fake = MemoryS3(data)
    info, body = open_object(fake, "bkt", "obj")
    pool = BufferPool(1, 4096)
    assert collect(read_buffers(fake, info, pool, body=body), pool) == data
    assert fake.streams[0].released and len(fake.calls) == 1
    info, body = open_object(fake, "bkt", "obj")
    assert collect(read_buffers(fake, info, pool, end=5000, body=body), pool) == data[:5000]
    assert not fake.streams[1].released and fake.streams[1].closed


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("algorithms", [["adler32", "crc32c"], ["md5", "crc32"]], ids=lambda a: "+".join(a))
def test_digest_object_reads_the_open_body_first(path: str, algorithms: list[str]) -> None:
    size = 800 if path == "inline" else 123_457
    data = random.Random(size).randbytes(size)
    fake = MemoryS3(data)
    fake.cuts = [0, 300]  # the open body breaks at once; the resumed GET too, 300 bytes in
    info, body = open_object(fake, "bkt", "obj")
    assert digest_object(fake, info, algorithms, tuning=PATHS[path], body=body) == {
        a: reference(a, data) for a in algorithms}
    assert "IfMatch" not in fake.calls[0] and all(c["IfMatch"] == ETAG for c in fake.calls[1:])
    assert all(s.closed or s.released for s in fake.streams)


def test_an_untaken_open_body_is_closed() -> None:
    data = bytes(100_000)
    fake = MemoryS3(data)
    fake.changed_after_calls = 1  # every ranged GET fails: maybe before range 0 is taken
    info, body = open_object(fake, "bkt", "obj")
    with pytest.raises(errors.SourceChanged):
        digest_object(fake, info, ["adler32"], tuning=SMALL, body=body)
    assert fake.streams[0].closed or fake.streams[0].released


def test_mapped_pools_hand_out_writable_maps_for_large_buffers() -> None:
    import mmap

    assert isinstance(BufferPool(1, 2 * 1024 * 1024, mapped=True).get(), mmap.mmap)
    assert isinstance(BufferPool(1, 4096, mapped=True).get(), bytearray)  # small: not worth a map
    assert isinstance(BufferPool(1, 2 * 1024 * 1024).get(), bytearray)  # the default
    data = random.Random(10).randbytes(5 * 1024 * 1024 + 3)
    pool = BufferPool(2, 1024 * 1024, mapped=True)
    assert collect(read_buffers(MemoryS3(data), info_for(data), pool), pool) == data
