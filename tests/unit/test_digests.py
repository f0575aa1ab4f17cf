"""The digest engine: known vectors, agreement with reference libraries, and
chunking invariance (one pass over any split of the bytes gives the same
digests, on the calling thread or pipelined)."""
from __future__ import annotations

import random
import sys
import threading
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynafed_contract.algorithms import ALGORITHMS
from dynafed_runtime import digests
from dynafed_runtime.digests import (
    IMPLEMENTATIONS,
    DigestSet,
    PipelinedDigests,
    digest_bytes,
    digests_for,
    new_digest,
)
from tests.reference_checksums import reference

# PROTOCOLS.md §2 plus the standard check values ("123456789") of each CRC.
KNOWN = [
    ("adler32", b"", "00000001"),
    ("adler32", b"\x00", "00010001"),
    ("adler32", b"Wikipedia", "11e60398"),
    ("adler32", b"123456789", "091e01de"),
    ("crc32", b"", "00000000"),
    ("crc32", b"123456789", "cbf43926"),
    ("crc32c", b"", "00000000"),
    ("crc32c", b"123456789", "e3069283"),
    ("md5", b"", "d41d8cd98f00b204e9800998ecf8427e"),
    ("md5", b"123456789", "25f9e794323b453885f5181f1b624d0b"),
    ("sha1", b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("sha1", b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("sha256", b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("sha256", b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("sha512", b"abc",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
]


@pytest.mark.parametrize(("algorithm", "data", "expected"), KNOWN, ids=[f"{a}-{d[:9]!r}" for a, d, _ in KNOWN])
def test_known_vectors(algorithm: str, data: bytes, expected: str) -> None:
    assert digest_bytes(data, [algorithm]) == {algorithm: expected}


def test_every_algorithm_has_a_known_vector() -> None:
    assert {a for a, _, _ in KNOWN} == set(ALGORITHMS)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_output_is_lowercase_hex_of_fixed_width(algorithm: str) -> None:
    value = digest_bytes(b"\xff" * 1000, [algorithm])[algorithm]
    width = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}.get(algorithm, 8)
    assert len(value) == width
    assert value == value.lower() and int(value, 16) >= 0


@pytest.mark.parametrize("size", [1, 4095, 65536, 1 << 20, (1 << 20) + 7])
def test_random_data_matches_reference_libraries(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert digest_bytes(data, ALGORITHMS) == {a: reference(a, data) for a in ALGORITHMS}


def test_adler32_large_sums_wrap_modulo_65521() -> None:
    # 0xff bytes make both sums overflow 16 bits quickly: a naive
    # implementation without the modulo gets this wrong
    data = b"\xff" * 100_000
    assert digest_bytes(data, ["adler32"])["adler32"] == f"{zlib.adler32(data):08x}"


@pytest.mark.parametrize(
    ("picker", "blocked", "expected_impl"),
    [
        ("_pick_adler32", ["isal", "isal.isal_zlib"], "zlib-ng"),
        ("_pick_adler32", ["isal", "isal.isal_zlib", "zlib_ng", "zlib_ng.zlib_ng"], "zlib"),
        ("_pick_crc32", ["zlib_ng", "zlib_ng.zlib_ng"], "isal"),
        ("_pick_crc32", ["isal", "isal.isal_zlib", "zlib_ng", "zlib_ng.zlib_ng"], "zlib"),
    ],
)
def test_fallbacks_when_accelerators_are_missing(monkeypatch: pytest.MonkeyPatch, picker: str,
                                                 blocked: list[str], expected_impl: str) -> None:
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    fn, impl = getattr(digests, picker)()
    assert impl == expected_impl
    algorithm = {"_pick_adler32": "adler32", "_pick_crc32": "crc32"}[picker]
    initial = 1 if algorithm == "adler32" else 0
    assert f"{fn(b'123456789', initial) & 0xFFFFFFFF:08x}" == reference(algorithm, b"123456789")
    if expected_impl != digests.SHIPPED[algorithm]:
        # a fallback is never silent where it matters: a function refuses to start on it
        with pytest.raises(digests.SlowDigests, match=f"{algorithm} runs '{expected_impl}'"):
            digests.require_accelerated({}, {**IMPLEMENTATIONS, algorithm: expected_impl})


def test_crc32c_has_no_pure_python_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "crc32c", None)
    with pytest.raises(ImportError, match="needs the crc32c package"):
        digests._pick_crc32c()


@pytest.mark.parametrize("buffer_type", [bytes, bytearray, memoryview])
def test_crc32c_reads_any_buffer_in_place(buffer_type: type) -> None:
    """The engine hands over recycled bytearrays and memoryview slices of them."""
    data = random.Random(3).randbytes((1 << 20) + 13)
    crc = new_digest("crc32c")
    view = buffer_type(data)
    for i in range(0, len(data), 65536 + 7):
        crc.update(view[i:i + 65536 + 7])
    assert crc.hexdigest() == reference("crc32c", data)


def test_this_environment_runs_what_the_images_ship() -> None:
    """The suite (and make bench) measures the shipped implementations."""
    assert {a: IMPLEMENTATIONS[a] for a in digests.SHIPPED} == digests.SHIPPED
    assert digests.require_accelerated({}) == []


def test_slow_digests_are_refused_unless_allowed() -> None:
    slow = {**IMPLEMENTATIONS, "crc32c": "crc32c-software"}
    with pytest.raises(digests.SlowDigests) as info:
        digests.require_accelerated({}, slow)
    assert "crc32c runs 'crc32c-software', not 'crc32c'" in str(info.value)
    assert digests.ALLOW_SLOW_ENV in str(info.value)
    assert digests.require_accelerated({digests.ALLOW_SLOW_ENV: "1"}, slow) == [
        "crc32c runs 'crc32c-software', not 'crc32c'"]


def test_implementations_are_reported_for_every_algorithm() -> None:
    assert set(IMPLEMENTATIONS) == set(ALGORITHMS)
    assert all(isinstance(v, str) and v for v in IMPLEMENTATIONS.values())


def test_new_digest_rejects_unknown_names() -> None:
    with pytest.raises(KeyError):
        new_digest("md4")


def test_digests_for_picks_the_engine() -> None:
    assert isinstance(digests_for([]), DigestSet)
    assert isinstance(digests_for(["md5"], pipelined=False), DigestSet)
    engine = digests_for(["md5", "adler32"])
    assert isinstance(engine, PipelinedDigests)
    assert engine.hexdigests() == {"adler32": "00000001", "md5": "d41d8cd98f00b204e9800998ecf8427e"}


def test_pipelined_close_is_idempotent() -> None:
    engine = PipelinedDigests(ALGORITHMS, depth=2)
    for _ in range(10):
        engine.update(b"x" * 1000)
    first = engine.hexdigests()
    engine.close()
    assert engine.hexdigests() == first == {a: reference(a, b"x" * 10_000) for a in ALGORITHMS}


def test_pipelined_threads_end_when_closed() -> None:
    before = set(threading.enumerate())
    engine = PipelinedDigests(ALGORITHMS)
    engine.update(b"abc")
    engine.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def _chunks(data: bytes, cuts: list[int], as_memoryview: bool) -> list[bytes | memoryview]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    view = memoryview(data) if as_memoryview else data
    return [view[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=20_000),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12),
    algorithms=st.lists(st.sampled_from(ALGORITHMS), min_size=1, max_size=7, unique=True),
    pipelined=st.booleans(),
    as_memoryview=st.booleans(),
    empty_updates=st.booleans(),
)
def test_any_chunking_gives_the_same_digests(data: bytes, cuts: list[int], algorithms: list[str],
                                             pipelined: bool, as_memoryview: bool, empty_updates: bool) -> None:
    expected = {a: reference(a, data) for a in algorithms}
    engine = digests_for(algorithms, pipelined=pipelined, depth=2)
    for chunk in _chunks(data, cuts, as_memoryview):
        engine.update(chunk)
        if empty_updates:
            engine.update(b"")
    assert engine.hexdigests() == expected



@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview], ids=lambda k: k.__name__)
@pytest.mark.parametrize("pipelined", [False, True], ids=["digestset", "pipelined"])
def test_every_buffer_type_is_accepted(kind: type, pipelined: bool) -> None:
    data = random.Random(3).randbytes(10_000)
    engine = digests_for(ALGORITHMS, pipelined=pipelined)
    engine.update(kind(data[:5000]))
    engine.update(kind(data[5000:]))
    assert engine.hexdigests() == {a: reference(a, data) for a in ALGORITHMS}


def test_fast_digests_run_on_the_callers_thread_slow_ones_on_their_own() -> None:
    """The fast digests are fed where the bytes were read (no hand-off of each
    buffer to another thread, whose core would fetch the bytes again); each
    slow one keeps a thread of its own."""
    before = {t.name for t in threading.enumerate()}
    fast = frozenset({"adler32", "crc32", "crc32c", "sha1"})
    cheap = PipelinedDigests(["adler32", "crc32", "crc32c", "sha1"], on_reader=fast)
    assert {t.name for t in threading.enumerate()} - before == set()
    released: list[str] = []
    cheap.update(b"abc", release=lambda: released.append("cheap"))
    assert released == ["cheap"]  # consumed on this thread before update returned
    assert cheap.hexdigests() == {a: reference(a, b"abc") for a in ("adler32", "crc32", "crc32c", "sha1")}

    mixed = PipelinedDigests(["adler32", "md5", "sha1"], on_reader=frozenset({"adler32"}))
    assert {t.name for t in threading.enumerate()} - before == {"digest-md5", "digest-sha1"}
    done = threading.Event()
    mixed.update(b"xyz" * 1000, release=done.set)
    mixed.close()  # joins the digest threads: every consumer is done
    assert done.is_set()  # released once, after the two threads and this one
    assert mixed.hexdigests() == {a: reference(a, b"xyz" * 1000) for a in ("adler32", "md5", "sha1")}


def test_slices_inline_then_the_whole_buffer_to_the_threads() -> None:
    """A reader that fills a buffer slice by slice: ``update_inline`` on each
    slice, ``hand_off`` of the full buffer; the digests equal one pass over
    the bytes, and the buffer is released once, by the threads (at once
    when there are none)."""
    data = random.Random(7).randbytes(100_000)
    engine = PipelinedDigests(list(ALGORITHMS), on_reader=frozenset({"adler32", "crc32c", "sha256"}))
    assert engine.has_inline and engine.has_threads
    releases: list[int] = []
    for offset in range(0, len(data), 30_000):
        buffer = data[offset:offset + 30_000]
        for cut in range(0, len(buffer), 7_000):
            engine.update_inline(buffer[cut:cut + 7_000])
        engine.hand_off(buffer, release=lambda o=offset: releases.append(o))  # type: ignore[misc]
    assert engine.hexdigests() == {a: reference(a, data) for a in ALGORITHMS}
    assert sorted(releases) == [0, 30_000, 60_000, 90_000]

    alone = PipelinedDigests(["crc32"], on_reader=frozenset({"crc32"}))
    released: list[str] = []
    alone.update_inline(b"123456789")
    alone.hand_off(b"123456789", release=lambda: released.append("now"))
    assert released == ["now"]
    assert alone.hexdigests() == {"crc32": "cbf43926"}
    assert not alone.has_threads
    assert not PipelinedDigests(["md5"], on_reader=frozenset()).has_inline


@pytest.mark.parametrize(("cpuinfo", "expected"), [
    ("processor\t: 0\nflags\t\t: fpu sse4_2 avx2 sha_ni aes\n", True),           # x86 with SHA-NI
    ("processor\t: 0\nflags\t\t: fpu sse4_2 avx2 aes\n", False),                  # x86 without
    ("processor\t: 0\nFeatures\t: fp asimd aes pmull sha1 sha2 crc32\n", True),   # ARMv8 crypto
    ("processor\t: 0\nFeatures\t: fp asimd crc32\n", False),
    ("", False),
])
def test_sha1_and_sha256_join_the_reader_thread_only_with_sha_extensions(cpuinfo: str, expected: bool) -> None:
    """With SHA extensions (what OpenSSL uses under hashlib) sha1/sha256 are
    fast enough for the reader's thread; without them they stay threaded;
    CRC-like digests always ride with the reader, md5/sha512 never."""
    assert digests.cpu_has_sha_extensions(cpuinfo) is expected
    on_reader = digests.reader_thread_algorithms(expected)
    assert on_reader >= {"adler32", "crc32", "crc32c"}
    assert {"md5", "sha512"}.isdisjoint(on_reader)
    assert ({"sha1", "sha256"} <= on_reader) is expected
    assert digests.READER_THREAD == digests.reader_thread_algorithms(digests.cpu_has_sha_extensions())
