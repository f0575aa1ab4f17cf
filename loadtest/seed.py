"""Seed the target store with reproducible test objects and record what
their checksums must be.

Sizes come from the scenario's distributions drawn with ``random.Random(seed)``;
the bytes of an object are a pure function of (seed, key), generated 1 MiB
block by block, so the same scenario always produces the same objects and
re-seeding skips objects already present (same size, metadata and ETag).

The expected checksums are computed here, locally, from the generated
bytes (never asked of the functions) and written to a manifest that the
Locust users load to validate every answer.

Object classes::

    small-cached     carry x-amz-meta-<algorithm> (UVic/Dynafed convention):
                     a checksum with cache "use" must answer from metadata
    small-uncached   no checksum metadata: the function must read the bytes
    large            read in full for every checksum (bytes/s)
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import random
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from loadtest.config import ScenarioConfig

log = logging.getLogger("dynafed_fn.loadtest.seed")

BLOCK = 1024 * 1024
#: multipart part size for large objects (also used to predict their ETag)
PART_SIZE = 16 * 1024 * 1024
SMALL_CACHED = "small-cached"
SMALL_UNCACHED = "small-uncached"
LARGE = "large"
KINDS = (SMALL_CACHED, SMALL_UNCACHED, LARGE)


# -- local digests (the expected values) ----------------------------------------------

class _Checksum32:
    """adler32 / crc32 as a running value, printed as 8 lowercase hex digits."""

    def __init__(self, update: Callable[[bytes, int], int], initial: int) -> None:
        self._update, self._value = update, initial

    def update(self, data: bytes) -> None:
        self._value = self._update(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value & 0xFFFFFFFF:08x}"


class _Crc32c:
    def __init__(self) -> None:
        import google_crc32c

        self._value = 0
        self._extend = google_crc32c.extend

    def update(self, data: bytes) -> None:
        self._value = self._extend(self._value, data)

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


#: algorithm -> factory of a hasher with update(bytes) / hexdigest() (contract format)
DIGESTS: dict[str, Callable[[], Any]] = {
    "adler32": lambda: _Checksum32(zlib.adler32, 1),
    "crc32": lambda: _Checksum32(zlib.crc32, 0),
    "crc32c": _Crc32c,
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}


# -- deterministic content -------------------------------------------------------------

class ObjectContent:
    """The bytes of one seeded object: block ``i`` is ``Random(f"{seed}:{i}")``'s
    output, so any range can be produced without the ones before it."""

    def __init__(self, seed: str, size: int) -> None:
        self.seed, self.size = seed, size

    def block(self, index: int) -> bytes:
        length = min(BLOCK, self.size - index * BLOCK)
        if length <= 0:
            return b""
        return random.Random(f"{self.seed}:{index}").randbytes(length)  # noqa: S311 (reproducible test data)

    def blocks(self) -> Iterator[bytes]:
        for index in range((self.size + BLOCK - 1) // BLOCK):
            yield self.block(index)

    def read_all(self) -> bytes:
        return b"".join(self.blocks())

    def reader(self) -> ContentReader:
        return ContentReader(self)


class ContentReader(io.RawIOBase):
    """A seekable read-only file over :class:`ObjectContent` (for upload_fileobj)."""

    def __init__(self, content: ObjectContent) -> None:
        super().__init__()
        self._content = content
        self._pos = 0
        self._cache: tuple[int, bytes] = (-1, b"")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._content.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._content.size:
            index, offset = divmod(self._pos, BLOCK)
            if self._cache[0] != index:
                self._cache = (index, self._content.block(index))
            chunk = self._cache[1][offset:offset + len(view) - done]
            view[done:done + len(chunk)] = chunk
            done += len(chunk)
            self._pos += len(chunk)
        return done


class _EtagHasher:
    """The ETag S3 gives an object: the MD5 for a single PUT, else the
    multipart form ``md5(md5(part1)…md5(partN))-N``."""

    def __init__(self, part_size: int | None, size: int) -> None:
        self._multipart = part_size is not None and size >= part_size
        self._part_size = part_size or size
        self._parts: list[bytes] = []
        self._current = hashlib.md5(usedforsecurity=False)
        self._filled = 0

    def update(self, data: bytes) -> None:
        if not self._multipart:
            self._current.update(data)
            return
        view = memoryview(data)
        while view:
            take = min(len(view), self._part_size - self._filled)
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self._part_size:
                self._parts.append(self._current.digest())
                self._current, self._filled = hashlib.md5(usedforsecurity=False), 0

    def hexdigest(self) -> str:
        if not self._multipart:
            return self._current.hexdigest()
        parts = self._parts + ([self._current.digest()] if self._filled else [])
        return f"{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"


def digest_content(content: ObjectContent, algorithms: Sequence[str],
                   part_size: int | None = None) -> tuple[dict[str, str], str]:
    """Checksums of the object's bytes (contract format) and its expected
    ETag when uploaded in ``part_size`` parts (None: one PUT), in one pass."""
    hashers = {name: DIGESTS[name]() for name in algorithms}
    etag = _EtagHasher(part_size, content.size)
    for block in content.blocks():
        for hasher in hashers.values():
            hasher.update(block)
        etag.update(block)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}, etag.hexdigest()


# -- the plan and the manifest ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SeededObject:
    """One object of the manifest, with the checksums an answer must carry."""

    kind: str
    key: str
    size: int
    checksums: Mapping[str, str]
    etag: str = ""

    def content(self, seed: int) -> ObjectContent:
        return ObjectContent(f"{seed}:{self.key}", self.size)


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What was seeded where; the users' source of truth."""

    seed: int
    store: str
    bucket: str
    prefix: str
    algorithms: tuple[str, ...]
    cached_algorithms: tuple[str, ...]
    objects: tuple[SeededObject, ...]

    def of_kind(self, kind: str) -> list[SeededObject]:
        return [o for o in self.objects if o.kind == kind]

    @property
    def total_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["algorithms"] = list(self.algorithms)
        data["cached_algorithms"] = list(self.cached_algorithms)
        data["objects"] = [dict(dataclasses.asdict(o), checksums=dict(o.checksums)) for o in self.objects]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        return cls(seed=int(data["seed"]), store=data["store"], bucket=data["bucket"], prefix=data["prefix"],
                   algorithms=tuple(data["algorithms"]), cached_algorithms=tuple(data["cached_algorithms"]),
                   objects=tuple(SeededObject(**o) for o in data["objects"]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> Manifest:
        return cls.from_json(json.loads(Path(path).read_text()))


def fingerprint(config: ScenarioConfig) -> str:
    """Short hash of everything that decides the objects: another scenario
    never reuses (or overwrites) a key with different bytes or metadata."""
    o = config.objects
    basis = json.dumps([config.seed, o.small.count, o.small.cached_fraction, o.small.size.to_dict(),
                        o.large.count, o.large.size.to_dict(), sorted(config.checksum.algorithms)])
    return hashlib.sha256(basis.encode()).hexdigest()[:10]


def plan(config: ScenarioConfig) -> list[tuple[str, str, int]]:
    """(kind, key, size) of every object the scenario seeds; deterministic."""
    rng = random.Random(config.seed)  # noqa: S311 (reproducible test data)
    o = config.objects
    base = f"{o.prefix}/{fingerprint(config)}"
    cached = round(o.small.count * o.small.cached_fraction)
    kinds = [SMALL_CACHED] * cached + [SMALL_UNCACHED] * (o.small.count - cached)
    rng.shuffle(kinds)  # interleave, so sizes are drawn alike for both kinds
    out = []
    for i, kind in enumerate(kinds):
        out.append((kind, f"{base}/{kind}/{i:05d}.bin", o.small.size.sample(rng)))
    for i in range(o.large.count):
        out.append((LARGE, f"{base}/{LARGE}/{i:05d}.bin", o.large.size.sample(rng)))
    return out


# -- upload --------------------------------------------------------------------------------------

@dataclasses.dataclass
class SeedReport:
    uploaded: int = 0
    skipped: int = 0
    bytes_uploaded: int = 0


def _metadata_of(head: Mapping[str, Any]) -> dict[str, str]:
    # S3 implementations differ in the case of user-metadata keys
    return {str(k).lower(): str(v).lower() for k, v in (head.get("Metadata") or {}).items()}


def _already_there(client: Any, bucket: str, obj: SeededObject, metadata: Mapping[str, str]) -> bool:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=obj.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    stored = {k: v for k, v in _metadata_of(head).items() if k in DIGESTS}
    return (head.get("ContentLength") == obj.size and stored == dict(metadata)
            and str(head.get("ETag", "")).strip('"') == obj.etag)


def _seed_one(client: Any, config: ScenarioConfig, kind: str, key: str, size: int,
              algorithms: Sequence[str]) -> tuple[SeededObject, bool]:
    from boto3.s3.transfer import TransferConfig

    content = ObjectContent(f"{config.seed}:{key}", size)
    part = PART_SIZE if kind == LARGE else None
    checksums, etag = digest_content(content, algorithms, part)
    obj = SeededObject(kind, key, size, checksums, etag)
    metadata = {a: obj.checksums[a] for a in config.checksum.algorithms} if kind == SMALL_CACHED else {}
    bucket = config.objects.bucket
    if _already_there(client, bucket, obj, metadata):
        return obj, False
    if part is None:
        client.put_object(Bucket=bucket, Key=key, Body=content.read_all(), Metadata=metadata,
                          ContentType="application/octet-stream")
    else:
        transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4)
        client.upload_fileobj(content.reader(), bucket, key, Config=transfer,
                              ExtraArgs={"Metadata": metadata, "ContentType": "application/octet-stream"})
    return obj, True


def seed(config: ScenarioConfig, client: Any, *, workers: int = 4,
         on_object: Callable[[SeededObject, bool], None] | None = None) -> tuple[Manifest, SeedReport]:
    """Upload the scenario's objects (skipping those already right) and
    return the manifest with their expected checksums."""
    algorithms = tuple(dict.fromkeys(("adler32", "md5", *config.algorithms_needed)))
    planned = plan(config)
    report = SeedReport()
    results: dict[str, SeededObject] = {}
    lock = threading.Lock()

    def one(item: tuple[str, str, int]) -> None:
        obj, uploaded = _seed_one(client, config, *item, algorithms=algorithms)
        with lock:
            results[obj.key] = obj
            if uploaded:
                report.uploaded += 1
                report.bytes_uploaded += obj.size
            else:
                report.skipped += 1
            if on_object is not None:
                on_object(obj, uploaded)

    small = [p for p in planned if p[0] != LARGE]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, small))  # list(): re-raise the first failure
    for item in planned:
        if item[0] == LARGE:
            one(item)  # one at a time: upload_fileobj is parallel inside
    manifest = Manifest(seed=config.seed, store=config.objects.store, bucket=config.objects.bucket,
                        prefix=f"{config.objects.prefix}/{fingerprint(config)}", algorithms=algorithms,
                        cached_algorithms=tuple(config.checksum.algorithms),
                        objects=tuple(results[key] for _, key, _ in planned))
    log.info("seeded %d objects (%d uploaded, %d already present, %.1f MB uploaded)", len(planned),
             report.uploaded, report.skipped, report.bytes_uploaded / 1e6)
    return manifest, report


def remove_prefix(client: Any, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix`` (the copies a run made); returns the count."""
    removed = 0
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            removed += len(keys)
    return removed
