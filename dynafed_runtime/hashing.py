"""Digests of an object (or a byte range of it) read from S3 in one pass.

The one entry point functions use to hash stored bytes; how the bytes are
read (one pinned stream, resumption, parallel ranges) is the business of
``dynafed_runtime.objects`` and ``dynafed_runtime.ranges``, the engine is
``dynafed_runtime.digests``. This module only chooses:

* small ranges (``inline_max``): one GET, digests on the calling thread —
  starting threads would cost more than hashing a few KiB;
* only combinable digests (adler32, crc32, crc32c) over a large range, when
  ``streams`` > 1: parallel ranged GETs, per-range values combined — for a
  store whose single stream is slow (distance, latency). Off by default:
  next to its S3 server the server is the bottleneck and the extra streams
  cost worker CPU for no gain (docs/performance.md);
* anything else: one pinned stream read in place into ``read_ahead``
  recycled buffers on this thread, the slow digests (md5, sha512) each on
  its own thread fed the same buffers, the fast ones (CRC-like; sha1/sha256
  with SHA extensions: ``digests.READER_THREAD``) on this thread, on each
  ``fill_step`` slice as it lands, while the bytes are in this core's cache
  (``PipelinedDigests``) — when those are all the digests asked, into one
  buffer of ``fill_step`` bytes, refilled; ``ordered_streams`` > 1 reads it as
  parallel ranges handed over in order instead (off by default: md5/sha*
  are slower than one stream on this kind of machine, docs/performance.md).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from dynafed_contract.algorithms import COMBINABLE
from dynafed_runtime.digests import DigestSet, PipelinedDigests
from dynafed_runtime.objects import DEFAULT_CHUNK, DEFAULT_LOW_WATER, BufferPool, ObjectInfo, read_buffers
from dynafed_runtime.ranges import combined_checksums, read_buffers_parallel

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ReadTuning:
    """How stored bytes are read for hashing (defaults measured: docs/performance.md)."""

    #: bytes per read buffer handed to digest threads
    chunk_size: int = DEFAULT_CHUNK
    #: buffers in flight per stream (memory: read_ahead * chunk_size per stream;
    #: one buffer of fill_step bytes when no digest runs on a thread of its own)
    read_ahead: int = 4
    #: parallel ranged GETs when only combinable digests are asked (1 = one stream)
    streams: int = 1
    #: parallel ranged GETs handed over in order for other digests (1 = one stream)
    ordered_streams: int = 1
    #: bytes per ranged GET in the parallel modes
    part_size: int = 64 * MiB
    #: ranges shorter than this are read as one stream
    parallel_min: int = 64 * MiB
    #: ranges up to this size are hashed on the calling thread
    inline_max: int = 1 * MiB
    #: bytes per socket read on the single stream, hashed by the reader
    #: thread's digests at once, while the socket copy's bytes are in the
    #: core's caches (L2 of 1-4 MiB, L3 of 32 MiB on the machines measured);
    #: twice the receive low-water mark, so each read is one or two wake-ups
    #: (256 and 512 KiB measured worse, 2 MiB with the 1 MiB mark better:
    #: docs/performance.md)
    fill_step: int = 2 * DEFAULT_LOW_WATER


def digest_object(client: Any, info: ObjectInfo, algorithms: Sequence[str], *, start: int = 0,
                  end: int | None = None, chunk_size: int | None = None,
                  on_bytes: Callable[[int], Any] | None = None,
                  tuning: ReadTuning | None = None, body: Any = None) -> dict[str, str]:
    """Hex digests of bytes [start, end) of the object, pinned to its ETag.

    ``body``: a response body already open at ``start`` (``open_object``);
    it is read first instead of a new GET, and closed in any case.
    """
    tuning = tuning or ReadTuning()
    if chunk_size is not None:
        tuning = dataclasses.replace(tuning, chunk_size=chunk_size)
    end = info.size if end is None else min(end, info.size)
    algorithms = list(algorithms)
    length = max(0, end - start)

    if length <= tuning.inline_max:
        digests = DigestSet(algorithms)
        pool = BufferPool(1, max(1, length))
        for view in read_buffers(client, info, pool, start=start, end=end, body=body):
            digests.update(view, release=lambda b=view.obj: pool.put(b))  # type: ignore[misc]
            if on_bytes is not None:
                on_bytes(len(view))
        return digests.hexdigests()

    parallel = length >= tuning.parallel_min
    if parallel and tuning.streams > 1 and algorithms and set(algorithms) <= COMBINABLE:
        return combined_checksums(client, info, algorithms, start=start, end=end, streams=tuning.streams,
                                  part_size=tuning.part_size, chunk_size=tuning.chunk_size, on_bytes=on_bytes,
                                  first_body=body)

    engine = PipelinedDigests(algorithms, depth=tuning.read_ahead + 1)
    stream_pool: BufferPool | None = None
    try:
        if parallel and tuning.ordered_streams > 1:
            for view, owner in read_buffers_parallel(
                    client, info, start=start, end=end, streams=tuning.ordered_streams,
                    part_size=tuning.part_size, chunk_size=tuning.chunk_size, read_ahead=tuning.read_ahead,
                    first_body=body):
                engine.update(view, release=lambda b=view.obj, p=owner: p.put(b))  # type: ignore[misc]
                if on_bytes is not None:
                    on_bytes(len(view))
        else:
            # with every digest on this thread nothing holds a buffer past hand_off:
            # one buffer of fill_step bytes, refilled, stays in this core's cache
            count, size = (tuning.read_ahead, tuning.chunk_size) if engine.has_threads else (1, tuning.fill_step)
            stream_pool = BufferPool(count, max(1, min(size, length)), mapped=True)
            on_fill = engine.update_inline if engine.has_inline else None
            for view in read_buffers(client, info, stream_pool, start=start, end=end, body=body,
                                     on_fill=on_fill, fill_step=tuning.fill_step):
                engine.hand_off(view, release=lambda b=view.obj, p=stream_pool: p.put(b))  # type: ignore[misc]
                if on_bytes is not None:
                    on_bytes(len(view))
    finally:
        result = engine.hexdigests()  # joins the digest threads: every buffer is back
        if stream_pool is not None:
            stream_pool.recycle()
    return result
