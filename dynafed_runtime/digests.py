"""The digest engine: every requested algorithm over one pass of the bytes.

``new_digest(name)`` returns the fastest implementation available here, chosen
once at import from measurements on this kind of machine (docs/performance.md):

    adler32  zlib-ng (~19-30 GB/s) > ISA-L (~12-15 GB/s) > zlib (~2.5 GB/s)
    crc32    zlib-ng (~10-16 GB/s) > ISA-L (as fast, but see below) > zlib (~2.5 GB/s)
    crc32c   the crc32c package: SSE 4.2 / ARMv8 crc32 instructions (~15 GB/s;
             any C-contiguous buffer, ``y*``) > its C slicing-by-8 (~1.7 GB/s)
    md5/sha* hashlib (OpenSSL; ~0.6 GB/s md5, ~1.4 GB/s sha1/sha256 here)

All of them release the GIL on large buffers (crc32c from 32 KiB on:
``crc32c_crc32c`` in its ``ext/_crc32c.c``), so digests run in parallel on
several cores. They also share each thread with the others: ISA-L's crc32
and adler32 return with the upper halves of the AVX registers in use (no
``vzeroupper``), and every SSE-encoded instruction after that on the thread
pays for it, OpenSSL's SHA-extension sha256 most: +35 % CPU per GiB until
some AVX code cleans up (measured: docs/performance.md). zlib-ng cleans up,
so it is preferred for crc32 too (tests/unit/test_vector_state.py checks
every chosen implementation). ``IMPLEMENTATIONS`` says what was chosen; a function's
gunicorn configuration calls :func:`require_accelerated` so that an image
missing an accelerator refuses to start instead of hashing 2-10x slower
than what was measured (``SHIPPED``).

``DigestSet`` feeds the same buffers to every digest on the calling thread.
``PipelinedDigests`` runs the slow digests on their own threads behind
bounded queues, so the reader (network I/O) and the digests overlap, and the
fast ones (``READER_THREAD``) on the reader's thread, on each slice of bytes
as it lands (``update_inline``); buffers are shared, never copied, and
handed back to their owner (``release``) once every digest has consumed
them — that is what lets a reader recycle a fixed set of preallocated buffers.
"""
from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from dynafed_contract.algorithms import ALGORITHMS, CRC_LIKE

Buffer = bytes | bytearray | memoryview
Release = Callable[[], None]


class Digest(Protocol):
    name: str

    def update(self, data: Buffer) -> None: ...

    def hexdigest(self) -> str: ...


def _pick_zlib_family(name: str) -> tuple[Callable[[Buffer, int], int], str]:
    """``name`` (adler32 or crc32) from zlib-ng, else ISA-L, else zlib: the
    same order for both (zlib-ng is the fastest adler32 and as fast a crc32
    as ISA-L, and it leaves the AVX upper state clean)."""
    try:
        from zlib_ng import zlib_ng

        return getattr(zlib_ng, name), "zlib-ng"
    except ImportError:
        pass
    try:
        from isal import isal_zlib

        return getattr(isal_zlib, name), "isal"
    except ImportError:
        return getattr(zlib, name), "zlib"


def _pick_adler32() -> tuple[Callable[[Buffer, int], int], str]:
    return _pick_zlib_family("adler32")


def _pick_crc32() -> tuple[Callable[[Buffer, int], int], str]:
    return _pick_zlib_family("crc32")


def _pick_crc32c() -> tuple[Callable[[Buffer, int], int], str]:
    # a hard dependency (dynafed-functions, every image): no silent fallback
    try:
        import crc32c
    except ImportError as exc:
        raise ImportError("dynafed_runtime.digests needs the crc32c package (a dependency of "
                          "dynafed-functions and of every function image): pip install crc32c") from exc
    # CRC32C_SW_MODE=force, or a CPU without the instruction: correct, ~9x slower
    return crc32c.crc32c, "crc32c" if crc32c.hardware_based else "crc32c-software"


def cpu_has_sha_extensions(cpuinfo: str | None = None) -> bool:
    """Whether the CPU hashes sha1 and sha256 in hardware (x86 ``sha_ni``,
    ARMv8 ``sha1`` + ``sha2``), which OpenSSL, under hashlib, uses."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cpuinfo = f.read(65536)
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            return "sha_ni" in flags or {"sha1", "sha2"} <= flags
    return False


def reader_thread_algorithms(sha_extensions: bool) -> frozenset[str]:
    """The digests fast enough to run on the reader's thread, on bytes still
    in its cache: the CRC-like ones (10-25 GB/s) and, with SHA extensions,
    sha1 and sha256 (~2 GB/s on cached bytes, ~1.2 GB/s on bytes fetched from
    memory: measured in docs/performance.md). md5 and sha512 (~0.8 GB/s
    either way) keep a thread of their own, so that reading overlaps them."""
    return CRC_LIKE | (frozenset({"sha1", "sha256"}) if sha_extensions else frozenset())


#: Digests ``PipelinedDigests`` runs on the reader's thread on this CPU.
READER_THREAD: frozenset[str] = reader_thread_algorithms(cpu_has_sha_extensions())

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

#: What every function image runs (its requirements.txt installs the
#: accelerators; tests/manifests/test_images.py checks it), the suite and
#: ``make bench`` measure, and :func:`require_accelerated` insists on.
SHIPPED: dict[str, str] = {"adler32": "zlib-ng", "crc32": "zlib-ng", "crc32c": "crc32c"}

#: set to ``1`` to start on slower digests anyway (tests of this check; a CPU
#: without the crc32c instruction), with a warning in the log
ALLOW_SLOW_ENV = "DYNAFED_FN_ALLOW_SLOW_DIGESTS"


class SlowDigests(RuntimeError):
    """An accelerator the images ship did not load: this process would hash slower than measured."""


def require_accelerated(env: Mapping[str, str], implementations: Mapping[str, str] | None = None) -> list[str]:
    """Raise :class:`SlowDigests` unless every algorithm runs its ``SHIPPED``
    implementation; with ``DYNAFED_FN_ALLOW_SLOW_DIGESTS=1`` return the
    shortfalls instead (the caller logs them). Called at start-up."""
    chosen = IMPLEMENTATIONS if implementations is None else implementations
    shortfalls = [f"{algorithm} runs {chosen.get(algorithm)!r}, not {wanted!r}"
                  for algorithm, wanted in SHIPPED.items() if chosen.get(algorithm) != wanted]
    if shortfalls and env.get(ALLOW_SLOW_ENV) != "1":
        raise SlowDigests(
            "refusing to start: " + "; ".join(shortfalls) + ". Install the accelerators the image ships "
            "(zlib-ng, isal, crc32c: functions/<name>/requirements.txt) on a CPU with the crc32c "
            f"instruction, or set {ALLOW_SLOW_ENV}=1 to run slower anyway")
    return shortfalls


class RollingChecksum:
    """adler32 / crc32 / crc32c as a digest object (8 lowercase hex digits)."""

    __slots__ = ("_fn", "name", "value")

    def __init__(self, name: str, fn: Callable[[Buffer, int], int], initial: int) -> None:
        self.name = name
        self._fn = fn
        self.value = initial

    def update(self, data: Buffer) -> None:
        self.value = self._fn(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value & 0xFFFFFFFF:08x}"


class HashlibDigest:
    __slots__ = ("_hash", "name")

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

    def update(self, data: Buffer, release: Release | None = None) -> None:
        """Feed ``data`` to every digest, then call ``release`` (if given)."""
        try:
            for digest in self.digests:
                digest.update(data)
        finally:
            if release is not None:
                release()

    def hexdigests(self) -> dict[str, str]:
        return {d.name: d.hexdigest() for d in self.digests}

    def close(self) -> None:
        pass


_STOP = object()


class _Countdown:
    """Calls ``release`` once ``count`` consumers are done with a buffer."""

    __slots__ = ("_count", "_lock", "_release")

    def __init__(self, count: int, release: Release) -> None:
        self._count = count
        self._release = release
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self._count -= 1
            last = self._count == 0
        if last:
            self._release()


class PipelinedDigests:
    """The slow digests each on its own thread behind a bounded queue; the
    fast ones (``on_reader``, by default ``READER_THREAD``) on the calling
    (reader) thread.

    ``update`` hands the buffer to every digest thread (no copy: callers must
    not mutate a buffer until its ``release`` callback ran, or, without one,
    ever), then feeds the fast digests itself, and returns unless a queue is
    full, which bounds memory to ``depth`` buffers per digest. A reader that
    fills its buffers slice by slice does better: ``update_inline`` on each
    slice as it lands, ``hand_off`` once the buffer is full.

    hashlib digests release the GIL on buffers over 2 KiB, so the threads run
    in parallel with the reader and with each other. The fast digests cost
    more on another thread than their work: the bytes have left the reader's
    cache by the time that thread reads them (sha1/sha256 ~0.9 instead of
    ~0.5 CPU-s per GiB; adler32 / crc32 / crc32c ~15-25 % more worker CPU),
    and each buffer crosses to another core and back (docs/performance.md).
    """

    def __init__(self, algorithms: Iterable[str], *, depth: int = 4,
                 on_reader: frozenset[str] | None = None) -> None:
        algorithms = list(algorithms)
        fast = READER_THREAD if on_reader is None else on_reader
        self._inline = [new_digest(a) for a in algorithms if a in fast]
        groups: list[list[Digest]] = [[new_digest(a)] for a in algorithms if a not in fast]
        self._groups = groups
        self._queues: list[queue.Queue[object]] = [queue.Queue(depth) for _ in groups]
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._work, args=(q, g), name=f"digest-{g[0].name}", daemon=True)
            for q, g in zip(self._queues, groups, strict=True)
        ]
        for thread in self._threads:
            thread.start()
        self._closed = False

    def _work(self, q: queue.Queue[object], group: list[Digest]) -> None:
        while True:
            item = q.get()
            if item is _STOP:
                return
            data: Buffer
            countdown: _Countdown | None
            data, countdown = item  # type: ignore[misc]
            try:
                if not self._errors:
                    for digest in group:
                        digest.update(data)
            except BaseException as exc:  # pragma: no cover - digests do not fail
                self._errors.append(exc)
            finally:
                if countdown is not None:
                    countdown.done()

    @property
    def has_threads(self) -> bool:
        """Whether some digests run on threads of their own (``hand_off``)."""
        return bool(self._queues)

    @property
    def has_inline(self) -> bool:
        """Whether some digests run on the calling thread (``update_inline``)."""
        return bool(self._inline)

    def update(self, data: Buffer, release: Release | None = None) -> None:
        """Queue ``data`` for every digest thread, hash it with the fast digests
        here; ``release`` runs once all consumed it."""
        if self._errors:
            raise self._errors[0]
        consumers = len(self._queues) + (1 if self._inline else 0)
        if not consumers:
            if release is not None:
                release()
            return
        countdown = _Countdown(consumers, release) if release is not None else None
        # the threads first: they start on this buffer while the fast digests run here
        for q in self._queues:
            q.put((data, countdown))
        if self._inline:
            try:
                self.update_inline(data)
            finally:
                if countdown is not None:
                    countdown.done()

    def update_inline(self, data: Buffer) -> None:
        """Hash ``data`` with the digests of the calling thread only (the
        next bytes, in order; the threads get them later from ``hand_off``)."""
        for digest in self._inline:
            digest.update(data)

    def hand_off(self, data: Buffer, release: Release | None = None) -> None:
        """Queue ``data`` for the digest threads only (the calling thread's
        digests saw its bytes through ``update_inline``); ``release`` runs
        once the threads consumed it, at once if there are none."""
        if self._errors:
            raise self._errors[0]
        if not self._queues:
            if release is not None:
                release()
            return
        countdown = _Countdown(len(self._queues), release) if release is not None else None
        for q in self._queues:
            q.put((data, countdown))

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
        return {d.name: d.hexdigest() for d in [*self._inline, *(d for g in self._groups for d in g)]}


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
