"""What a copy reads from: an object in a named store, or an http(s) URL
(``functions.copy.http_source``). Both look the same to the copy engines:
size, a validator (``tag``) that pins the version being read, the checksums
the source already stores, the metadata and content headers to carry over,
and a part reader that fills the engine's recycled buffers.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Generator, Mapping
from typing import Any, Protocol, cast

from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlSource
from dynafed_runtime.objects import BufferPool, ObjectInfo, read_buffers
from functions.copy.parts import Part


class PartReader(Protocol):
    def read(self, part: Part) -> memoryview:
        """The bytes of ``part`` in a view of a pool buffer, which the caller
        gives back with ``pool.put(view.obj)``. Thread-safe."""

    def cancel(self) -> None:
        """Wake and fail readers waiting for their turn (the copy is stopping)."""

    def close(self) -> None: ...


class CopySource(Protocol):
    @property
    def ref(self) -> ObjectRef | UrlSource: ...

    @property
    def size(self) -> int: ...

    @property
    def tag(self) -> str | None:
        """Pins the version read (S3 ETag, HTTP ETag / Last-Modified); None: unpinnable."""

    @property
    def stored(self) -> Mapping[str, str]:
        """Checksums the source stores (canonical hex), by algorithm."""

    @property
    def metadata(self) -> Mapping[str, str]:
        """User metadata to carry to the destination (lowercase keys)."""

    @property
    def headers(self) -> Mapping[str, Any]:
        """Content headers for the destination (boto3 names: ContentType, ...)."""

    @property
    def what(self) -> str:
        """How messages name it (never a URL's query: signatures)."""

    def reader(self, pool: BufferPool, start: int) -> PartReader:
        """A reader of parts from byte ``start`` on (parts asked in order)."""

    def close(self) -> None: ...


@dataclasses.dataclass
class S3Source:
    """An object in a store, pinned to the ETag of its HEAD."""

    ref: ObjectRef
    client: Any
    info: ObjectInfo

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def what(self) -> str:
        return self.info.what

    @property
    def tag(self) -> str:
        return self.info.etag

    @property
    def stored(self) -> Mapping[str, str]:
        return self.info.stored

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.info.metadata

    @property
    def headers(self) -> Mapping[str, Any]:
        return self.info.preserved

    def reader(self, pool: BufferPool, start: int) -> PartReader:
        return _S3PartReader(self.client, self.info, pool)

    def close(self) -> None:
        pass


class _S3PartReader:
    """One ranged GET per part, pinned with ``IfMatch`` and resumed within the
    part when the connection breaks (``objects.read_buffers``): parts are
    independent, so several workers read in parallel."""

    def __init__(self, client: Any, info: ObjectInfo, pool: BufferPool) -> None:
        self._client = client
        self._info = info
        self._pool = pool

    def read(self, part: Part) -> memoryview:
        if part.size > self._pool.size:
            raise ValueError("part larger than the pool's buffers")
        views = cast(Generator[memoryview, None, None],
                     read_buffers(self._client, self._info, self._pool, start=part.start, end=part.end))
        try:
            view = next(views)
        finally:
            views.close()  # releases the connection; the buffer is ours now
        return view

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass
