"""Reading one object as several parallel ranged GETs, each pinned with
``IfMatch`` to the ETag of the HEAD, for when S3 (one stream's latency and
per-connection throughput), not the digests, is the bottleneck.

Two shapes, because digests differ:

* ``combined_checksums`` — adler32 / crc32 / crc32c only. Each range is
  hashed on its own by whichever worker fetched it, and the per-range values
  are combined exactly (``dynafed_contract.combine``). No ordering, no
  hand-off between threads: workers take the next range as they finish.
* ``read_buffers_parallel`` — any digest. md5 and sha* must see the bytes in
  order, so ranges are fetched ahead by several workers into their own small
  buffer pools and handed to one consumer strictly in order.

Every worker thread ends before these functions return or raise, and a
failure of any range (SourceChanged on an overwrite mid-read, storage gone)
cancels the others.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dynafed_contract.combine import combine_parts
from dynafed_runtime import errors
from dynafed_runtime.digests import DigestSet
from dynafed_runtime.objects import BufferPool, BufferPoolClosed, ObjectInfo, read_buffers

OnBytes = Callable[[int], Any] | None


def plan_ranges(start: int, end: int, part_size: int) -> list[tuple[int, int]]:
    """Consecutive ``[s, e)`` ranges of at most ``part_size`` covering [start, end)."""
    if part_size < 1:
        raise ValueError("part_size must be >= 1")
    return [(s, min(s + part_size, end)) for s in range(start, end, part_size)]


class _Workers:
    """Threads that stop together: the first error wins and cancels the rest."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._on_cancel: list[Callable[[], None]] = []

    def start(self, target: Callable[[], None], name: str) -> None:
        def run() -> None:
            try:
                target()
            except BufferPoolClosed:
                pass  # cancelled while waiting for a buffer
            except BaseException as exc:
                self.fail(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        self._on_cancel.append(callback)

    def fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.cancel()

    def cancel(self) -> None:
        if not self.cancelled.is_set():
            self.cancelled.set()
            for callback in self._on_cancel:
                callback()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def raise_first(self) -> None:
        if self.errors:
            raise self.errors[0]


class _FirstBody:
    """The caller's open body, handed to whichever reader takes range 0."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._lock = threading.Lock()

    def take(self, index: int) -> Any:
        if index != 0:
            return None
        with self._lock:
            body, self._body = self._body, None
        return body

    def close(self) -> None:
        """Close the body if no reader took it."""
        body = self.take(0)
        if body is not None:
            body.close()


def combined_checksums(client: Any, info: ObjectInfo, algorithms: Sequence[str], *, start: int, end: int,
                       streams: int, part_size: int, chunk_size: int, on_bytes: OnBytes = None,
                       first_body: Any = None) -> dict[str, str]:
    """adler32 / crc32 / crc32c of [start, end) from ``streams`` parallel ranged GETs.

    ``first_body``: a response body already open at ``start``; it serves the
    first range (read up to the range end, then dropped) and is closed in
    any case.
    """
    parts = plan_ranges(start, end, part_size)
    bodies = _FirstBody(first_body)
    values: list[dict[str, int] | None] = [None] * len(parts)
    next_part = iter(range(len(parts)))
    lock = threading.Lock()
    workers = _Workers()

    def work() -> None:
        pool = BufferPool(1, min(chunk_size, part_size), mapped=True)
        workers.on_cancel(pool.close)
        while not workers.cancelled.is_set():
            with lock:
                index = next(next_part, None)
            if index is None:
                return
            s, e = parts[index]
            digests = DigestSet(algorithms)
            for view in read_buffers(client, info, pool, start=s, end=e, body=bodies.take(index)):
                # hashed on this thread: the digest releases the GIL, so the
                # other workers' reads and digests go on meanwhile
                digests.update(view, release=lambda b=view.obj: pool.put(b))  # type: ignore[misc]
                if on_bytes is not None:
                    on_bytes(len(view))
                if workers.cancelled.is_set():
                    return
            values[index] = {d.name: int(d.hexdigest(), 16) for d in digests.digests}

    try:
        for i in range(max(1, min(streams, len(parts)))):
            workers.start(work, f"range-{i}")
        workers.join()
    finally:
        bodies.close()
    workers.raise_first()
    if any(v is None for v in values):  # pragma: no cover - a worker ended without error or result
        raise errors.InternalError("a range was not read")
    return {a: f"{combine_parts(a, ((v[a], e - s) for v, (s, e) in zip(values, parts, strict=True))):08x}"  # type: ignore[index]
            for a in algorithms}


_END_OF_PART = object()
_WORKER_ENDED = object()


def read_buffers_parallel(client: Any, info: ObjectInfo, *, start: int, end: int, streams: int, part_size: int,
                          chunk_size: int, read_ahead: int,
                          first_body: Any = None) -> Iterator[tuple[memoryview, BufferPool]]:
    """Yield ``(view, pool)`` for the bytes [start, end) in order, fetched by
    ``streams`` workers ranging ahead of the consumer.

    Worker i reads ranges i, i+N, i+2N… into its own pool of ``read_ahead``
    buffers, so a worker ahead of the consumer waits on its own buffers and
    never starves the one the consumer waits for. The consumer gives each
    buffer back with ``pool.put(view.obj)``. ``first_body`` as for
    ``combined_checksums``.
    """
    parts = plan_ranges(start, end, part_size)
    bodies = _FirstBody(first_body)
    count = max(1, min(streams, len(parts)))
    outputs: list[queue.Queue[object]] = [queue.Queue() for _ in range(count)]
    pools = [BufferPool(read_ahead, min(chunk_size, part_size), mapped=True) for _ in range(count)]
    workers = _Workers()
    for pool in pools:
        workers.on_cancel(pool.close)

    def work(i: int) -> None:
        try:
            for index in range(i, len(parts), count):
                s, e = parts[index]
                for view in read_buffers(client, info, pools[i], start=s, end=e, body=bodies.take(index)):
                    outputs[i].put(view)
                    if workers.cancelled.is_set():
                        return
                outputs[i].put(_END_OF_PART)
        finally:
            outputs[i].put(_WORKER_ENDED)  # never leave the consumer waiting

    for i in range(count):
        workers.start(lambda i=i: work(i), f"range-{i}")  # type: ignore[misc]
    try:
        for index in range(len(parts)):
            worker = index % count
            while True:
                item = outputs[worker].get()
                if item is _END_OF_PART:
                    break
                if item is _WORKER_ENDED:
                    # the worker failed, or was cancelled by another's failure
                    workers.join()
                    workers.raise_first()
                    raise errors.InternalError("a range reader ended early")
                yield item, pools[worker]  # type: ignore[misc]
    finally:
        workers.cancel()
        workers.join()
        bodies.close()
    workers.raise_first()
