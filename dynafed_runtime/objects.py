"""Reading objects from S3: HEAD with stored checksums, and a pinned,
resuming streaming read.

Every read after the HEAD is pinned to the ETag seen there (``IfMatch``), so
an object overwritten mid-read fails with SourceChanged instead of yielding
bytes of two versions. A connection cut mid-body resumes with a ranged GET
from the last byte received (still pinned), a bounded number of times.

Two ways to read: ``iter_object`` yields fresh ``bytes`` (simple, one copy
per chunk), ``read_buffers`` fills a ``BufferPool``'s preallocated bytearrays
in place with ``readinto`` straight from the HTTP response (no copy in user
space, a fixed memory footprint) — the checksum engine's path.
"""
from __future__ import annotations

import base64
import dataclasses
import http.client
import logging
import mmap
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dynafed_contract.algorithms import ALGORITHMS, canonical_stored
from dynafed_contract.metadata_copy import preserved_headers
from dynafed_runtime import errors
from dynafed_runtime.low_water import DEFAULT_LEVEL as DEFAULT_LOW_WATER
from dynafed_runtime.low_water import LowWater

log = logging.getLogger("dynafed_fn.objects")

DEFAULT_CHUNK = 8 * 1024 * 1024
_S3_CHECKSUM_FIELDS = {"crc32": "ChecksumCRC32", "crc32c": "ChecksumCRC32C", "sha1": "ChecksumSHA1",
                       "sha256": "ChecksumSHA256"}


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str | None
    metadata: Mapping[str, str]
    #: Checksums the store holds for the object, canonical hex, by algorithm:
    #: ``x-amz-meta-<algo>`` (UVic convention) and S3 full-object checksums.
    stored: Mapping[str, str]
    #: Headers to keep on a metadata-replacing self-copy.
    preserved: Mapping[str, Any]

    @property
    def what(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def head_object(client: Any, bucket: str, key: str) -> ObjectInfo:
    """HEAD with ``ChecksumMode=ENABLED``; errors translated."""
    try:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except Exception as exc:
        raise _not_found_or(client, bucket, key, exc) from None
    return _object_info(bucket, key, head)


def open_object(client: Any, bucket: str, key: str) -> tuple[ObjectInfo, Any]:
    """GET with ``ChecksumMode=ENABLED``: the same ObjectInfo as ``head_object``
    and the open body, positioned at byte 0.

    For a caller that will read every byte anyway this saves the HEAD: one
    S3 request instead of two, which is most of a small object's latency
    (botocore spends milliseconds of CPU per call). No ``IfMatch`` is needed:
    a single response is one version. The caller must read or close the body
    (``read_buffers(..., body=...)`` does either).
    """
    try:
        response = client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except Exception as exc:
        raise _not_found_or(client, bucket, key, exc) from None
    return _object_info(bucket, key, response), response["Body"]


def _not_found_or(client: Any, bucket: str, key: str, exc: Exception) -> errors.FunctionError:
    what = f"s3://{bucket}/{key}"
    error = errors.translate(exc, what=what)
    if isinstance(error, errors.NoSuchObject):
        error = _bucket_or_object(client, bucket, what)
    return error


def _object_info(bucket: str, key: str, head: Mapping[str, Any]) -> ObjectInfo:
    """ObjectInfo from a HEAD or a (whole-object) GET response: same fields."""
    metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=int(head.get("ContentLength", 0)),
        etag=str(head.get("ETag", "")),
        content_type=head.get("ContentType"),
        metadata=metadata,
        stored=stored_checksums(metadata, head),
        preserved=preserved_headers(head),
    )


def _bucket_or_object(client: Any, bucket: str, what: str) -> errors.FunctionError:
    """HEAD answers a bare 404 for both; tell the caller which is missing."""
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        error = errors.translate(exc, what=what)
        if isinstance(error, errors.NoSuchObject):
            return errors.NoSuchBucket(f"no such bucket for {what}")
        return error
    return errors.NoSuchObject(f"no such object for {what}")


def stored_checksums(metadata: Mapping[str, str], head: Mapping[str, Any]) -> dict[str, str]:
    """Stored values by algorithm. Composite (per-part) S3 checksums are not
    whole-object digests and are ignored."""
    out: dict[str, str] = {}
    for algorithm in ALGORITHMS:
        value = metadata.get(algorithm)
        stored = canonical_stored(algorithm, value) if value else None
        if stored is not None:  # a value of the wrong form is no claim at all (never returned)
            out[algorithm] = stored
    if str(head.get("ChecksumType", "FULL_OBJECT")).upper() == "FULL_OBJECT":
        for algorithm, field in _S3_CHECKSUM_FIELDS.items():
            value = head.get(field)
            if value and "-" not in value and algorithm not in out:
                try:
                    decoded = canonical_stored(algorithm, base64.b64decode(value, validate=True).hex())
                except ValueError:
                    continue
                if decoded is not None:
                    out[algorithm] = decoded
    return out


def iter_object(client: Any, info: ObjectInfo, *, start: int = 0, end: int | None = None,
                chunk_size: int = DEFAULT_CHUNK, max_resumes: int = 3) -> Iterator[bytes]:
    """Yield the bytes [start, end) of the object pinned to ``info.etag``.

    Yields nothing for an empty range (no GET: a ranged GET of a 0-byte object
    is 416). Raises SourceChanged on overwrite, UpstreamUnavailable when the
    connection keeps failing, never yields a short read silently.
    """
    end = info.size if end is None else min(end, info.size)
    position = start
    resumes = 0
    while position < end:
        try:
            body = _get(client, info, position, end)
            while position < end:
                data = body.read(min(chunk_size, end - position))
                if not data:
                    break
                position += len(data)
                yield data
            body.close()
        except errors.FunctionError:
            raise
        except Exception as exc:
            error = errors.translate(exc, what=info.what)
            if not isinstance(error, errors.UpstreamUnavailable):
                raise error from None
        if position < end:
            resumes += 1
            if resumes > max_resumes:
                raise errors.UpstreamUnavailable(
                    f"connection to storage kept failing while reading {info.what}")
            log.warning("read interrupted, resuming", extra={"object": info.what, "offset": position})


def _get(client: Any, info: ObjectInfo, position: int, end: int) -> Any:
    kwargs: dict[str, Any] = {"Bucket": info.bucket, "Key": info.key, "IfMatch": info.etag}
    if position > 0 or end < info.size:
        kwargs["Range"] = f"bytes={position}-{end - 1}"
    try:
        return client.get_object(**kwargs)["Body"]
    except Exception as exc:
        raise errors.translate(exc, what=info.what) from None


class SpareMaps:
    """Mapped read buffers kept between requests, at most ``max_bytes`` of them.

    A fresh 8 MiB map costs its first writer 2 048 page faults, each zeroing
    a page: ~8 200 faults per 1 GiB checksum with four read-ahead buffers,
    ~0.01-0.02 CPU-s/GiB (docs/performance.md). Kept maps are reused by the
    next pool asking for the same size; the bound keeps a worker's idle RSS
    from ratcheting up, which is why buffers are maps at all.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._kept: dict[int, list[mmap.mmap]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> mmap.mmap | None:
        with self._lock:
            kept = self._kept.get(size)
            if not kept:
                return None
            self._bytes -= size
            return kept.pop()

    def give(self, buffer: mmap.mmap) -> None:
        """Keep ``buffer`` for a later pool, or unmap it if that would exceed the bound."""
        with self._lock:
            if self._bytes + len(buffer) <= self.max_bytes:
                self._kept.setdefault(len(buffer), []).append(buffer)
                self._bytes += len(buffer)
                return
        try:
            buffer.close()
        except BufferError:  # a view of it is still alive somewhere: the collector unmaps it later
            pass

    @property
    def kept_bytes(self) -> int:
        return self._bytes


#: one request's read-ahead (4 x 8 MiB) kept per worker process
SPARE_MAPS = SpareMaps(32 * 1024 * 1024)


class BufferPool:
    """At most ``count`` buffers of ``size`` bytes, allocated on first need
    and recycled: ``get`` blocks while all are in use, which is what bounds a
    read-ahead pipeline's memory to ``count * size``.

    ``mapped=True``: buffers of 1 MiB and more are anonymous memory maps
    instead of bytearrays. glibc serves freed multi-MiB bytearrays from its
    heap afterwards (its mmap threshold grows with each free, up to 32 MiB)
    and keeps them, so a worker's RSS ratchets up request after request; a
    map goes back to the kernel when the last reference to it goes. Maps are
    file-like (``read``/``seek``), so do not hand one to an API that would
    read it as a stream (botocore's ``Body=``): pass a memoryview or bytes.
    """

    MAP_AT = 1024 * 1024

    def __init__(self, count: int, size: int, *, mapped: bool = False) -> None:
        if count < 1 or size < 1:
            raise ValueError("a buffer pool needs count >= 1 and size >= 1")
        self.count = count
        self.size = size
        self.mapped = mapped and size >= self.MAP_AT
        self._free: deque[bytearray] = deque()
        self._allocated = 0
        self._cond = threading.Condition()
        self._closed = False

    def get(self) -> bytearray:
        """A free, writable buffer (blocks until one is put back; raises if closed)."""
        with self._cond:
            while True:
                if self._closed:
                    raise BufferPoolClosed("buffer pool closed")
                if self._free:
                    return self._free.pop()
                if self._allocated < self.count:
                    self._allocated += 1
                    break
                self._cond.wait()
        if self.mapped:
            return SPARE_MAPS.take(self.size) or mmap.mmap(-1, self.size)  # type: ignore[return-value]
        return bytearray(self.size)

    def put(self, buffer: bytearray) -> None:
        """Give ``buffer`` back (any thread)."""
        with self._cond:
            self._free.append(buffer)
            self._cond.notify()

    def recycle(self) -> None:
        """Once every consumer is done: hand the mapped buffers that were put
        back to ``SPARE_MAPS`` for the next pool (one still out is left to
        the garbage collector)."""
        with self._cond:
            free, self._free = list(self._free), deque()
            self._allocated -= len(free)
        if self.mapped:
            for buffer in free:
                SPARE_MAPS.give(buffer)  # type: ignore[arg-type]

    def close(self) -> None:
        """Wake every waiter with BufferPoolClosed (used to cancel a reader)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class BufferPoolClosed(Exception):
    """The pool was closed while a reader waited for a buffer."""


Readinto = Callable[[memoryview], "int | None"]


def _readinto_of(body: Any, low_water: int) -> tuple[Readinto, Callable[[], None]]:
    """The cheapest ``readinto`` of a botocore body, and what to call once done with it.

    urllib3's ``HTTPResponse.readinto`` reads into a temporary bytes object and
    copies it; the ``http.client`` response underneath reads from the socket
    into the caller's buffer directly, here under a receive low-water mark
    (``low_water``: ``dynafed_runtime.low_water``). botocore asks urllib3 not
    to decode content (the object's bytes are what is stored), so the layers
    agree on the bytes; we count them ourselves. Fakes (moto) offer a plain
    readinto.
    """
    raw = getattr(body, "_raw_stream", body)
    fp = getattr(raw, "_fp", None)
    if isinstance(fp, http.client.HTTPResponse):
        marked = LowWater(fp, low_water)
        return marked.readinto, marked.close
    if hasattr(raw, "readinto"):
        return raw.readinto, _nothing

    def copy_in(view: memoryview) -> int:
        data = body.read(len(view))
        view[:len(data)] = data
        return len(data)

    return copy_in, _nothing


def _nothing() -> None:
    pass


def _finish(body: Any, complete: bool) -> None:
    """Hand a fully read connection back to the pool; drop any other."""
    raw = getattr(body, "_raw_stream", None)
    try:
        if complete and raw is not None and hasattr(raw, "release_conn"):
            fp = getattr(raw, "_fp", None)
            if isinstance(fp, http.client.HTTPResponse) and not fp.isclosed():
                # http.client marks a response done only once a read reaches
                # its end; a 0-byte body is never read, and a connection whose
                # last response is not done fails its next request (a retry)
                fp.read()
            raw.release_conn()
        else:
            body.close()
    except Exception:  # noqa: S110 - closing a dead connection may fail; nothing to do
        pass


def read_buffers(client: Any, info: ObjectInfo, pool: BufferPool, *, start: int = 0, end: int | None = None,
                 max_resumes: int = 3, body: Any = None, on_fill: Callable[[memoryview], Any] | None = None,
                 fill_step: int | None = None, low_water: int = DEFAULT_LOW_WATER) -> Iterator[memoryview]:
    """Yield views of ``pool`` buffers holding the bytes [start, end) in order.

    Every view but the last is a full buffer. The caller owns each buffer it
    receives and must give it back with ``pool.put(view.obj)`` once done (a
    consumer on another thread may do so later: the reader only waits when
    the pool is empty). One GET for the range, pinned with ``IfMatch``;
    resumed from the byte reached when the connection fails, like
    ``iter_object``. Nothing is requested for an empty range.

    ``body``: a response body already open at ``start`` and running to the
    object's end (``open_object``), read first instead of a new GET; closed
    here whatever happens.

    ``on_fill``: called with each slice of a buffer as it is read (in order,
    every byte once, resumptions included), before the buffer is yielded;
    ``fill_step`` bounds a slice (default: the whole buffer). Work done there
    finds the bytes still in this core's cache. ``low_water``: the socket's
    receive low-water mark while much of a response is to come (1: none).
    """
    end = info.size if end is None else min(end, info.size)
    position = start
    resumes = 0
    readinto: Readinto | None = None
    done_with = _nothing
    if body is not None:
        readinto, done_with = _readinto_of(body, low_water)
    body_end = info.size  # where the open body's bytes end
    try:
        while position < end:
            buffer = pool.get()
            yielded = False
            try:
                view = memoryview(buffer)[:min(len(buffer), end - position)]
                filled = 0
                while filled < len(view):
                    if body is None:
                        body = _get(client, info, position + filled, end)
                        readinto, done_with = _readinto_of(body, low_water)
                        body_end = end
                    assert readinto is not None
                    try:
                        count = readinto(view[filled:len(view) if fill_step is None else filled + fill_step])
                    except errors.FunctionError:
                        raise
                    except (http.client.HTTPException, OSError) as exc:
                        log.debug("read failed: %r", exc)
                        count = None
                    except Exception as exc:
                        error = errors.translate(exc, what=info.what)
                        if not isinstance(error, errors.UpstreamUnavailable):
                            raise error from None
                        count = None
                    if not count:
                        # connection cut (or a short body): resume from here
                        done_with()
                        _finish(body, complete=False)
                        body = readinto = None
                        resumes += 1
                        if resumes > max_resumes:
                            raise errors.UpstreamUnavailable(
                                f"connection to storage kept failing while reading {info.what}")
                        log.warning("read interrupted, resuming",
                                    extra={"object": info.what, "offset": position + filled})
                        continue
                    if on_fill is not None:
                        on_fill(view[filled:filled + count])
                    filled += count
                position += filled
                yielded = True
                yield view
            finally:
                if not yielded:
                    pool.put(buffer)
    finally:
        if body is not None:
            # a connection goes back to the pool only with nothing left unread
            done_with()
            _finish(body, complete=position >= body_end)
