"""The checksum domain: stored values, one streaming pass, verification,
optional write-back. No Flask here."""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from dynafed_contract.algorithms import CRC_LIKE
from dynafed_contract.checksum import ChecksumRequest, checksum_result
from dynafed_runtime import errors
from dynafed_runtime.hashing import ReadTuning, digest_object
from dynafed_runtime.objects import ObjectInfo, head_object, open_object
from dynafed_runtime.writeback import write_metadata

log = logging.getLogger("dynafed_fn.checksum")


def compute(request: ChecksumRequest, client: Any, *, chunk_size: int, on_bytes: Any = None,
            tuning: ReadTuning | None = None) -> dict[str, Any]:
    """Answer one checksum request (the 200 body).

    ``tuning`` says how bytes are read (buffers, read-ahead, parallel ranges;
    ``ReadTuning`` defaults when None), ``chunk_size`` overrides its buffer size.
    """
    started = time.perf_counter()
    tuning = dataclasses.replace(tuning or ReadTuning(), chunk_size=chunk_size)
    ref = request.object
    body = None
    if not request.is_range and request.cache in ("none", "refresh"):
        # every byte will be read: the GET's headers serve as the HEAD
        info, body = open_object(client, ref.bucket, ref.key)
    else:
        info = head_object(client, ref.bucket, ref.key)
    if request.is_range:
        return _ranged(request, client, info, started, tuning, on_bytes)

    wanted = list(request.algorithms)
    from_cache = {a: info.stored[a] for a in wanted if a in info.stored} if request.cache in ("use", "write") else {}
    missing = [a for a in wanted if a not in from_cache]
    if missing:
        # While the bytes stream anyway, also check any cheap stored checksum the
        # caller did not ask for: a stored adler32 then protects an md5 request
        # from a flipped byte too (its cost is far below S3's or md5's).
        # (Only with cache "none": "use"/"write" take stored values on trust.)
        witnesses = [a for a in info.stored if a in CRC_LIKE and a not in missing] \
            if request.cache == "none" else []
        computed = _digest(client, info, missing + witnesses, tuning=tuning, on_bytes=on_bytes, body=body)
    else:
        computed = {}
        if body is not None:
            body.close()
    if request.cache in ("none", "write"):
        _verify_against_stored(info, computed)
    written: list[str] = []
    if request.cache in ("write", "refresh"):
        new_values = {a: v for a, v in computed.items() if a in missing and info.stored.get(a) != v}
        if new_values:
            write_metadata(client, info, new_values)
            written = sorted(new_values)
    checksums = {a: from_cache.get(a) or computed[a] for a in wanted}
    return checksum_result(ref, size=info.size, etag=info.etag, checksums=checksums, cached=list(from_cache),
                           elapsed_s=time.perf_counter() - started, written=written)


def _ranged(request: ChecksumRequest, client: Any, info: ObjectInfo, started: float, tuning: ReadTuning,
            on_bytes: Any) -> dict[str, Any]:
    assert request.range_start is not None and request.range_end is not None
    start, end = request.range_start, min(request.range_end, info.size)
    if start > info.size:
        raise errors.InvalidRequest(f"range starts beyond the object size ({info.size})")
    computed = _digest(client, info, list(request.algorithms), start=start, end=end,
                       tuning=tuning, on_bytes=on_bytes)
    return checksum_result(request.object, size=info.size, etag=info.etag, checksums=computed, cached=[],
                           elapsed_s=time.perf_counter() - started, range_=(start, end))


def _digest(client: Any, info: ObjectInfo, algorithms: list[str], *, start: int = 0, end: int | None = None,
            tuning: ReadTuning, on_bytes: Any = None, body: Any = None) -> dict[str, str]:
    return digest_object(client, info, algorithms, start=start, end=end, tuning=tuning, on_bytes=on_bytes,
                         body=body)


def _verify_against_stored(info: ObjectInfo, computed: dict[str, str]) -> None:
    """A stored value that disagrees with the bytes is reported, never hidden."""
    for algorithm, value in computed.items():
        stored = info.stored.get(algorithm)
        if stored is not None and stored != value:
            raise errors.ChecksumMismatch(
                f"{algorithm} of {info.what} is {value} but the store holds {stored}")
