"""Combining adler32 / crc32 / crc32c of consecutive ranges: exact agreement
with the whole-object digests, for any split (property tests)."""
from __future__ import annotations

import zlib

import google_crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from isal import isal_zlib

from dynafed_contract.combine import (
    adler32_combine,
    combine,
    combine_hex,
    combine_parts,
    crc32_combine,
    crc32c_combine,
    initial_value,
)

COMBINABLE = ("adler32", "crc32", "crc32c")


def whole(algorithm: str, data: bytes) -> int:
    """Independent whole-buffer values (zlib, google-crc32c)."""
    if algorithm == "adler32":
        return zlib.adler32(data)
    if algorithm == "crc32":
        return zlib.crc32(data)
    return google_crc32c.value(data)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=200, deadline=None)
@given(a=st.binary(max_size=3000), b=st.binary(max_size=3000), algorithm=st.sampled_from(COMBINABLE))
def test_two_ranges_combine_to_the_whole(a: bytes, b: bytes, algorithm: str) -> None:
    assert combine(algorithm, whole(algorithm, a), whole(algorithm, b), len(b)) == whole(algorithm, a + b)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=20_000), cuts=st.lists(st.integers(0, 20_000), max_size=15),
       algorithm=st.sampled_from(COMBINABLE))
def test_any_split_combines_to_the_whole(data: bytes, cuts: list[int], algorithm: str) -> None:
    parts = split(data, cuts)
    assert combine_parts(algorithm, [(whole(algorithm, p), len(p)) for p in parts]) == whole(algorithm, data)
    hex_parts = [(f"{whole(algorithm, p):08x}", len(p)) for p in parts]
    assert combine_hex(algorithm, hex_parts) == f"{whole(algorithm, data):08x}"


@pytest.mark.parametrize("algorithm", COMBINABLE)
def test_empty_ranges_are_neutral(algorithm: str) -> None:
    value = whole(algorithm, b"123456789")
    empty = whole(algorithm, b"")
    assert initial_value(algorithm) == empty
    assert combine(algorithm, value, empty, 0) == value
    assert combine(algorithm, empty, value, 9) == value
    assert combine_parts(algorithm, []) == empty


# large lengths (a 100 GB object's ranges) cannot be hashed in a unit test;
# the laws below tie them to lengths that can
u32 = st.integers(0, 0xFFFFFFFF)
adler = st.builds(lambda a, b: (b << 16) | a, st.integers(0, 65520), st.integers(0, 65520))
length = st.integers(0, 1 << 45)


@settings(max_examples=200, deadline=None)
@given(x=u32, y=u32, z=u32, ny=length, nz=length, algorithm=st.sampled_from(["crc32", "crc32c"]))
def test_crc_combine_is_associative_at_any_length(x: int, y: int, z: int, ny: int, nz: int, algorithm: str) -> None:
    left = combine(algorithm, combine(algorithm, x, y, ny), z, nz)
    right = combine(algorithm, x, combine(algorithm, y, z, nz), ny + nz)
    assert left == right


@settings(max_examples=200, deadline=None)
@given(x=adler, y=adler, z=adler, ny=length, nz=length)
def test_adler32_combine_is_associative_at_any_length(x: int, y: int, z: int, ny: int, nz: int) -> None:
    left = adler32_combine(adler32_combine(x, y, ny), z, nz)
    right = adler32_combine(x, adler32_combine(y, z, nz), ny + nz)
    assert left == right


@settings(max_examples=200, deadline=None)
@given(x=u32, y=u32, n=length)
def test_crc32_combine_agrees_with_isal_at_any_length(x: int, y: int, n: int) -> None:
    # ISA-L's crc32_combine is zlib's; an independent implementation
    assert crc32_combine(x, y, n) == isal_zlib.crc32_combine(x, y, n)


def test_ranges_of_a_multi_megabyte_buffer() -> None:
    data = bytes(range(256)) * 40_000 + b"tail"  # 10 MB, uneven last range
    step = 3 * 1024 * 1024 + 1
    for algorithm in COMBINABLE:
        parts = [(whole(algorithm, data[i:i + step]), len(data[i:i + step])) for i in range(0, len(data), step)]
        assert combine_parts(algorithm, parts) == whole(algorithm, data)


def test_crc32c_check_value_from_pieces() -> None:
    # "123456789" -> e3069283, the standard CRC-32C check value
    assert crc32c_combine(google_crc32c.value(b"1234"), google_crc32c.value(b"56789"), 5) == 0xE3069283


@pytest.mark.parametrize("bad", ["md5", "sha256", "nope"])
def test_non_combinable_algorithms_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        combine(bad, 1, 1, 1)
    with pytest.raises(ValueError):
        initial_value(bad)


@pytest.mark.parametrize("fn", [adler32_combine, crc32_combine, crc32c_combine])
def test_negative_lengths_are_refused(fn: object) -> None:
    with pytest.raises(ValueError):
        fn(1, 1, -1)  # type: ignore[operator]


def test_ranges_beyond_512_mib_combine_exactly() -> None:
    # zlib's x2n table wraps its index at 32 powers, which is only valid for
    # the IEEE polynomial: CRC-32C of a range >= 512 MiB came out wrong that
    # way. Hash 640 MiB of zeros incrementally (64 MiB buffer) to check.
    zeros = bytes(64 * 1024 * 1024)
    rounds = 10
    head = b"the first range"
    extend = {"adler32": lambda v, d: isal_zlib.adler32(d, v), "crc32": lambda v, d: isal_zlib.crc32(d, v),
              "crc32c": lambda v, d: google_crc32c.extend(v, d)}
    for algorithm in COMBINABLE:
        tail = initial_value(algorithm)
        for _ in range(rounds):
            tail = extend[algorithm](tail, zeros)
        both = extend[algorithm](whole(algorithm, head), zeros)
        for _ in range(rounds - 1):
            both = extend[algorithm](both, zeros)
        assert combine(algorithm, whole(algorithm, head), tail, rounds * len(zeros)) == both, algorithm
