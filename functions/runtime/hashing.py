"""Digests of an object (or a byte range of it) read from S3 in one pass.

The one entry point functions use to hash stored bytes; how the bytes are
read (one pinned stream, resumption, parallel ranges) is the business of
``functions.runtime.objects`` and the engine of ``functions.runtime.digests``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from functions.runtime.digests import digests_for
from functions.runtime.objects import DEFAULT_CHUNK, ObjectInfo, iter_object


def digest_object(client: Any, info: ObjectInfo, algorithms: Sequence[str], *, start: int = 0,
                  end: int | None = None, chunk_size: int = DEFAULT_CHUNK,
                  on_bytes: Callable[[int], Any] | None = None) -> dict[str, str]:
    """Hex digests of bytes [start, end) of the object, pinned to its ETag."""
    engine = digests_for(algorithms)
    try:
        for chunk in iter_object(client, info, start=start, end=end, chunk_size=chunk_size):
            engine.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    finally:
        result = engine.hexdigests()
    return result
