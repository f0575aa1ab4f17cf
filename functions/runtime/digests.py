"""The digest engine: every requested algorithm over one pass of the bytes.

``new_digest(name)`` returns the fastest implementation available here (chosen
once at import: ISA-L / zlib-ng for adler32 and crc32, google-crc32c for
crc32c, hashlib for md5/sha*), falling back to the standard library or to a
pure-Python table when an accelerated package is missing.

``DigestSet`` feeds the same buffers to every digest. ``PipelinedDigests``
runs each digest on its own thread behind a bounded queue so that the reader
(network I/O) and the digests (which release the GIL on large buffers)
overlap; buffers are shared, never copied.
"""
from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from typing import Callable, Iterable, Protocol

from functions.contract.algorithms import ALGORITHMS, CRC_LIKE

Buffer = bytes | bytearray | memoryview


class Digest(Protocol):
    name: str

    def update(self, data: Buffer) -> None: ...

    def hexdigest(self) -> str: ...


def _pick_adler32() -> tuple[Callable[[Buffer, int], int], str]:
    try:
        from isal import isal_zlib

        return isal_zlib.adler32, "isal"
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng

        return zlib_ng.adler32, "zlib-ng"
    except ImportError:
        return zlib.adler32, "zlib"


def _pick_crc32() -> tuple[Callable[[Buffer, int], int], str]:
    try:
        from isal import isal_zlib

        return isal_zlib.crc32, "isal"
    except ImportError:
        return zlib.crc32, "zlib"


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


def _pure_crc32c(data: Buffer, crc: int = 0) -> int:
    table = _CRC32C_TABLE
    crc ^= 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _pick_crc32c() -> tuple[Callable[[Buffer, int], int], str]:
    try:
        import google_crc32c

        if google_crc32c.implementation == "c":
            return (lambda data, crc: google_crc32c.extend(crc, data)), "google-crc32c"
    except ImportError:
        pass
    return _pure_crc32c, "pure-python"


_CRC32C_TABLE = _crc32c_table()
_ADLER32, _ADLER32_IMPL = _pick_adler32()
_CRC32, _CRC32_IMPL = _pick_crc32()
_CRC32C, _CRC32C_IMPL = _pick_crc32c()

#: The implementation chosen per algorithm (reported by /healthz and the bench).
IMPLEMENTATIONS: dict[str, str] = {
    "adler32": _ADLER32_IMPL,
    "crc32": _CRC32_IMPL,
    "crc32c": _CRC32C_IMPL,
    "md5": "hashlib",
    "sha1": "hashlib",
    "sha256": "hashlib",
    "sha512": "hashlib",
}


class RollingChecksum:
    """adler32 / crc32 / crc32c as a digest object (8 lowercase hex digits)."""

    __slots__ = ("name", "_fn", "value")

    def __init__(self, name: str, fn: Callable[[Buffer, int], int], initial: int) -> None:
        self.name = name
        self._fn = fn
        self.value = initial

    def update(self, data: Buffer) -> None:
        self.value = self._fn(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value & 0xFFFFFFFF:08x}"


class HashlibDigest:
    __slots__ = ("name", "_hash")

    def __init__(self, name: str) -> None:
        self.name = name
        self._hash = hashlib.new(name)

    def update(self, data: Buffer) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def new_digest(name: str) -> Digest:
    """A fresh digest for a canonical algorithm name."""
    if name == "adler32":
        return RollingChecksum(name, _ADLER32, 1)
    if name == "crc32":
        return RollingChecksum(name, _CRC32, 0)
    if name == "crc32c":
        return RollingChecksum(name, _CRC32C, 0)
    if name in ALGORITHMS:
        return HashlibDigest(name)
    raise KeyError(name)


class DigestSet:
    """Several digests fed the same buffers, on the calling thread."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self.digests = [new_digest(a) for a in algorithms]

    def update(self, data: Buffer) -> None:
        for digest in self.digests:
            digest.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {d.name: d.hexdigest() for d in self.digests}

    def close(self) -> None:
        pass


_STOP = object()


class PipelinedDigests:
    """Digests each on its own thread behind a bounded queue.

    ``update`` hands the buffer to every digest thread (no copy: callers must
    not mutate a buffer after passing it) and returns at once unless the
    queues are full, which bounds memory to ``depth`` buffers per digest.
    Cheap CRC-like digests share one thread; hashlib digests get one each
    (they release the GIL on large buffers, so they run in parallel).
    """

    def __init__(self, algorithms: Iterable[str], *, depth: int = 4) -> None:
        algorithms = list(algorithms)
        groups: list[list[Digest]] = []
        cheap = [new_digest(a) for a in algorithms if a in CRC_LIKE]
        if cheap:
            groups.append(cheap)
        groups.extend([new_digest(a)] for a in algorithms if a not in CRC_LIKE)
        self._groups = groups
        self._queues: list[queue.Queue[object]] = [queue.Queue(depth) for _ in groups]
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._work, args=(q, g), name=f"digest-{g[0].name}", daemon=True)
            for q, g in zip(self._queues, groups)
        ]
        for thread in self._threads:
            thread.start()
        self._closed = False

    def _work(self, q: queue.Queue[object], group: list[Digest]) -> None:
        while True:
            item = q.get()
            if item is _STOP:
                return
            try:
                for digest in group:
                    digest.update(item)  # type: ignore[arg-type]
            except BaseException as exc:  # pragma: no cover - digests do not fail
                self._errors.append(exc)

    def update(self, data: Buffer) -> None:
        for q in self._queues:
            q.put(data)

    def close(self) -> None:
        """Stop the threads after they consume what is queued (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for q in self._queues:
            q.put(_STOP)
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]

    def hexdigests(self) -> dict[str, str]:
        self.close()
        return {d.name: d.hexdigest() for g in self._groups for d in g}


def digests_for(algorithms: Iterable[str], *, pipelined: bool = True, depth: int = 4) -> DigestSet | PipelinedDigests:
    """The engine suited to ``algorithms``."""
    algorithms = list(algorithms)
    if not pipelined or not algorithms:
        return DigestSet(algorithms)
    return PipelinedDigests(algorithms, depth=depth)


def digest_bytes(data: Buffer, algorithms: Iterable[str]) -> dict[str, str]:
    """All requested digests of an in-memory buffer."""
    engine = DigestSet(algorithms)
    engine.update(data)
    return engine.hexdigests()
