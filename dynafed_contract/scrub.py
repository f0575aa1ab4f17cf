"""The scrub function's wire contract (pure data: no Flask, no boto3).

A scrub walks a bucket prefix, recomputes the checksums each object has stored
as ``x-amz-meta-<algo>`` and reports the objects whose bytes no longer match.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from dynafed_contract import fields
from dynafed_contract.events import PING
from dynafed_contract.events import SCRUB_COMPLETED as COMPLETED
from dynafed_contract.events import SCRUB_MISMATCH as MISMATCH
from dynafed_contract.events import SCRUB_REQUESTED as REQUESTED
from dynafed_contract.fieldspec import Body, Integer, Text
from dynafed_contract.openapi import function_document

__all__ = ["COMPLETED", "MISMATCH", "PING", "REQUESTED", "ScrubRequest", "openapi_document",
           "parse_scrub_request"]
MAX_OBJECTS_LIMIT = 100_000


@dataclasses.dataclass(frozen=True)
class ScrubRequest:
    store: str
    bucket: str
    prefix: str = ""
    #: Only these algorithms are checked (default: every stored one).
    algorithms: tuple[str, ...] | None = None
    max_objects: int = 1000
    #: Resume after this key (the ``next_start_after`` of a previous answer).
    start_after: str | None = None


MAX_OBJECTS = Integer(minimum=1, maximum=MAX_OBJECTS_LIMIT, default=1000)
#: where a previous answer stopped (its ``next_start_after``)
START_AFTER = Text(nullable=True)
REQUEST = Body({"store": fields.STORE, "bucket": fields.BUCKET, "prefix": fields.PREFIX,
                "algorithms": fields.ALGORITHM_NAMES, "max_objects": MAX_OBJECTS, "start_after": START_AFTER},
               required=("bucket",))


def parse_scrub_request(body: Any) -> ScrubRequest:
    """Validate a JSON scrub request (raises ContractViolation)."""
    body = fields.require_mapping(body, "request body")
    fields.reject_unknown(body, REQUEST.names, "scrub request")
    prefix = body.get("prefix", fields.PREFIX.default)
    if not fields.PREFIX.accepts(prefix):
        raise fields.invalid("field 'prefix' must be a string of at most 1024 bytes")
    max_objects = body.get("max_objects", MAX_OBJECTS.default)
    if not MAX_OBJECTS.accepts(max_objects):
        raise fields.invalid(f"field 'max_objects' must be an integer in 1..{MAX_OBJECTS_LIMIT}")
    start_after = body.get("start_after")
    if start_after is not None and not START_AFTER.accepts(start_after):
        raise fields.invalid("field 'start_after' must be a non-empty string")
    algorithms = None
    if body.get("algorithms") is not None:
        algorithms = fields.algorithm_list(body["algorithms"], default=())
    return ScrubRequest(fields.store_name(body), fields.bucket_name(body), prefix, algorithms, max_objects,
                        start_after)


REQUEST_SCHEMA: dict[str, Any] = REQUEST.schema()
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["store", "bucket", "prefix", "scanned", "verified", "mismatched", "unverifiable", "errors",
                 "mismatches", "complete", "next_start_after", "elapsed_s"],
    "properties": {
        "scanned": {"type": "integer"}, "verified": {"type": "integer"}, "mismatched": {"type": "integer"},
        "unverifiable": {"type": "integer"}, "errors": {"type": "integer"},
        "mismatches": {"type": "array", "items": {"type": "object"}},
        "complete": {"type": "boolean"}, "next_start_after": {"type": ["string", "null"]},
        "elapsed_s": {"type": "number"},
    },
}


def openapi_document() -> dict[str, Any]:
    return function_document("Dynafed scrub function", "Re-verify stored checksums under a prefix",
                             REQUEST_SCHEMA, RESULT_SCHEMA)
