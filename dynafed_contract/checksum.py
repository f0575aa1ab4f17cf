"""Checksum request and result (the checksum function's wire format)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from dynafed_contract import fields
from dynafed_contract.algorithms import ALIASES, COMBINABLE
from dynafed_contract.fieldspec import AlgorithmNames, Body, Choice, Integer, Rule, is_integer

#: Cache modes: ``none`` always computes (a stored value, when present, is
#: checked against the computed one); ``use`` answers from stored values and
#: computes only what is missing; ``write`` is ``use`` plus write-back of the
#: computed values; ``refresh`` computes everything and writes it back.
CACHE_MODES = ("none", "use", "write", "refresh")
DEFAULT_ALGORITHMS = ("adler32",)


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    """An object in a named store."""

    store: str
    bucket: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"store": self.store, "bucket": self.bucket, "key": self.key}


@dataclasses.dataclass(frozen=True)
class ChecksumRequest:
    object: ObjectRef
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    cache: str = "none"
    #: Optional byte range [start, end) for fan-out of combinable digests.
    range_start: int | None = None
    range_end: int | None = None

    @property
    def is_range(self) -> bool:
        return self.range_start is not None


#: an object in a named store (also a copy's source or destination)
OBJECT = Body({"store": fields.STORE, "bucket": fields.BUCKET, "key": fields.KEY}, required=("bucket", "key"))
CACHE = Choice(CACHE_MODES, default="none")
_OFFSET = Integer(minimum=0)
_COMBINABLE_NAMES = AlgorithmNames((*COMBINABLE, *(a for a, n in ALIASES.items() if n in COMBINABLE)),
                                   fields.MAX_ALGORITHM_NAMES, nullable=True)
REQUEST = Body(
    {**OBJECT.properties, "algorithms": fields.ALGORITHM_NAMES, "cache": CACHE,
     "range": {"type": "array", "prefixItems": [_OFFSET.schema(), _OFFSET.schema()], "minItems": 2, "maxItems": 2,
               "description": "[start, end): bytes start to end - 1"}},
    required=OBJECT.required,
    # a range is of combinable digests only, and never cached
    dependent={"range": {"properties": {"algorithms": _COMBINABLE_NAMES.schema(), "cache": {"const": "none"}}}},
    rules=(Rule("a range's start is at most its end",
                lambda body: "range" not in body or body["range"][0] <= body["range"][1]),),
)


def object_ref(body: Mapping[str, Any], what: str = "request") -> ObjectRef:
    return ObjectRef(
        store=fields.store_name(body),
        bucket=fields.bucket_name(body),
        key=fields.object_key(body),
    )


def parse_checksum_request(body: Any) -> ChecksumRequest:
    """Validate a JSON checksum request (raises ContractViolation)."""
    body = fields.require_mapping(body, "request body")
    fields.reject_unknown(body, REQUEST.names, "checksum request")
    ref = object_ref(body)
    algorithms = fields.algorithm_list(body.get("algorithms"), default=DEFAULT_ALGORITHMS)
    cache = body.get("cache", CACHE.default)
    if not CACHE.accepts(cache):
        raise fields.invalid(f"field 'cache' must be one of {', '.join(CACHE_MODES)}")
    start = end = None
    if "range" in body:
        start, end = _parse_range(body["range"], algorithms)
        if cache != "none":
            raise fields.invalid("a ranged checksum cannot use or write the cache")
    return ChecksumRequest(ref, algorithms, cache, start, end)


def _parse_range(value: Any, algorithms: tuple[str, ...]) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(is_integer(v) and _OFFSET.accepts(v) for v in value)
        or value[1] < value[0]
    ):
        raise fields.invalid("field 'range' must be [start, end) with 0 <= start <= end")
    bad = [a for a in algorithms if a not in COMBINABLE]
    if bad:
        raise fields.invalid(
            f"ranged checksums support only combinable algorithms, not {', '.join(bad)}"
        )
    return value[0], value[1]


def parse_s3_notification(body: Mapping[str, Any], store: str) -> list[ChecksumRequest]:
    """Turn an S3 bucket-notification document (``Records[].s3``) into checksum
    requests for created objects. Keys arrive URL-encoded (``+`` for space)."""
    records = body.get("Records")
    if not isinstance(records, list) or not records:
        raise fields.invalid("S3 notification without Records")
    out = []
    for record in records[:100]:
        record = fields.require_mapping(record, "notification record")
        event_name = str(record.get("eventName", ""))
        if event_name and "ObjectCreated" not in event_name:
            continue
        s3 = fields.require_mapping(record.get("s3"), "record.s3")
        bucket = fields.require_mapping(s3.get("bucket"), "record.s3.bucket")
        obj = fields.require_mapping(s3.get("object"), "record.s3.object")
        ref = object_ref(
            {"store": store, "bucket": bucket.get("name"), "key": unquote_plus(str(obj.get("key", "")))}
        )
        out.append(ChecksumRequest(ref, ("adler32", "md5"), "write"))
    return out


def checksum_result(
    ref: ObjectRef,
    *,
    size: int,
    etag: str,
    checksums: Mapping[str, str],
    cached: list[str],
    elapsed_s: float,
    written: list[str] | None = None,
    range_: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The 200 response body."""
    body: dict[str, Any] = {
        **ref.to_json(),
        "size": size,
        "etag": etag,
        "checksums": dict(checksums),
        "cached": sorted(cached),
        "elapsed_s": round(elapsed_s, 6),
    }
    if written:
        body["written"] = sorted(written)
    if range_ is not None:
        body["range"] = list(range_)
    return body
