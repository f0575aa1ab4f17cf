"""Checksum one large object as N byte ranges in parallel, then combine.

adler32, crc32 and crc32c of a concatenation follow from the parts' values
and lengths (zlib's ``adler32_combine`` / ``crc32_combine`` maths, in
``dynafed_contract.combine``, shared with the functions), so N function instances
(Knative scales them out) can each hash a slice. md5 and sha are not
combinable: asking for them here is an error, not a silent fallback.

Each range answer carries the object's ETag; if they differ the object
changed during the run and the result is refused (``SOURCE_CHANGED``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dynafed_client import errors
from dynafed_client.batch import run_batch
from dynafed_client.results import ChecksumResult
from dynafed_contract.algorithms import COMBINABLE, normalize_algorithm
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.combine import combine

__all__ = ["MIN_PART_BYTES", "combine", "fanout_checksum", "plan_ranges"]

#: ranges smaller than this are not worth a request of their own
MIN_PART_BYTES = 8 * 1024 * 1024


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
