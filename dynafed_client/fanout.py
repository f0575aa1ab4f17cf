"""Checksum one large object as N byte ranges in parallel, then combine.

adler32, crc32 and crc32c of a concatenation follow from the parts' values
and lengths (zlib's ``adler32_combine`` / ``crc32_combine`` maths, written out
below since Python's zlib does not expose them), so N function instances
(Knative scales them out) can each hash a slice. md5 and sha are not
combinable: asking for them here is an error, not a silent fallback.

Each range answer carries the object's ETag; if they differ the object
changed during the run and the result is refused (``SOURCE_CHANGED``).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from dynafed_client import errors
from dynafed_client.batch import run_batch
from dynafed_client.results import ChecksumResult
from functions.contract.algorithms import COMBINABLE, normalize_algorithm
from functions.contract.checksum import ObjectRef

#: ranges smaller than this are not worth a request of their own
MIN_PART_BYTES = 8 * 1024 * 1024

_ADLER_BASE = 65521
_CRC_POLY = {"crc32": 0xEDB88320, "crc32c": 0x82F63B78}


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """adler32 of A+B from adler32(A), adler32(B) and len(B) (zlib's algorithm)."""
    rem = len2 % _ADLER_BASE
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 += (adler2 & 0xFFFF) + _ADLER_BASE - 1
    sum2 += ((adler1 >> 16) & 0xFFFF) + ((adler2 >> 16) & 0xFFFF) + _ADLER_BASE - rem
    if sum1 >= _ADLER_BASE:
        sum1 -= _ADLER_BASE
    if sum1 >= _ADLER_BASE:
        sum1 -= _ADLER_BASE
    if sum2 >= (_ADLER_BASE << 1):
        sum2 -= _ADLER_BASE << 1
    if sum2 >= _ADLER_BASE:
        sum2 -= _ADLER_BASE
    return sum1 | (sum2 << 16)


def _multmodp(a: int, b: int, poly: int) -> int:
    # a * b modulo the (reflected) CRC polynomial
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1
    return p


@functools.lru_cache(maxsize=4)
def _x2n_table(poly: int) -> tuple[int, ...]:
    table = [1 << 30]  # x^1
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1], poly))
    return tuple(table)


def crc_combine(crc1: int, crc2: int, len2: int, *, poly: int) -> int:
    """CRC-32 (reflected, init and xorout 0xFFFFFFFF) of A+B from crc(A), crc(B), len(B)."""
    table = _x2n_table(poly)
    p = 1 << 31  # x^0
    n, k = len2, 3  # x^(8 * len2)
    while n:
        if n & 1:
            p = _multmodp(table[k & 31], p, poly)
        n >>= 1
        k += 1
    return _multmodp(p, crc1, poly) ^ crc2


def combine(algorithm: str, first: int, second: int, second_len: int) -> int:
    """Combine two partial values of ``algorithm`` (adler32, crc32, crc32c)."""
    if algorithm == "adler32":
        return adler32_combine(first, second, second_len)
    return crc_combine(first, second, second_len, poly=_CRC_POLY[algorithm])


def plan_ranges(size: int, parts: int, *, min_part: int = MIN_PART_BYTES) -> list[tuple[int, int]]:
    """Split ``[0, size)`` into at most ``parts`` contiguous ranges of at least ``min_part`` bytes."""
    if size <= 0:
        return [(0, 0)]
    count = max(1, min(parts, size // max(1, min_part)))
    step, extra = divmod(size, count)
    ranges, start = [], 0
    for i in range(count):
        end = start + step + (1 if i < extra else 0)
        ranges.append((start, end))
        start = end
    return ranges


def fanout_checksum(client: Any, ref: ObjectRef, algorithms: Sequence[str], *, parts: int,
                    min_part: int = MIN_PART_BYTES) -> ChecksumResult:
    """Checksums of ``ref`` computed as up to ``parts`` ranged requests in parallel."""
    algos = [normalize_algorithm(a) or a for a in algorithms]
    bad = [a for a in algos if a not in COMBINABLE]
    if bad:
        raise errors.ConfigError(f"--fan-out works only for {', '.join(sorted(COMBINABLE))}, not {', '.join(bad)}")
    probe = client.checksum(ref, algos, byte_range=(0, 0))
    size = int(probe.size or 0)
    ranges = plan_ranges(size, parts, min_part=min_part)
    pieces = []
    for outcome in run_batch(lambda r: client.checksum(ref, algos, byte_range=r), ranges, concurrency=len(ranges)):
        if outcome.error is not None:
            raise outcome.error
        assert outcome.result is not None
        if outcome.result.etag != probe.etag:
            raise errors.ConflictError(code="SOURCE_CHANGED", status=412, retryable=True,
                                       detail=f"{ref.bucket}/{ref.key} changed during the fan-out")
        pieces.append((outcome.item, outcome.result))
    values: dict[str, str] = {}
    for algo in algos:
        total: int | None = None
        for (start, end), result in pieces:
            part = int(result.checksums[algo], 16)
            total = part if total is None else combine(algo, total, part, end - start)
        values[algo] = f"{total or 0:08x}"
    return ChecksumResult(store=ref.store, bucket=ref.bucket, key=ref.key, size=size, etag=probe.etag,
                          checksums=values, cached=(), elapsed_s=None,
                          raw={**ref.to_json(), "size": size, "etag": probe.etag, "checksums": values,
                               "cached": [], "fan_out": len(ranges)})
