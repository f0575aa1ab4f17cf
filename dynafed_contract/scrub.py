"""The scrub function's wire contract (pure data: no Flask, no boto3).

A scrub walks a bucket prefix, recomputes the checksums each object has stored
as ``x-amz-meta-<algo>`` and reports the objects whose bytes no longer match.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from dynafed_contract import fields
from dynafed_contract.algorithms import ALGORITHMS
from dynafed_contract.events import PING
from dynafed_contract.events import SCRUB_COMPLETED as COMPLETED
from dynafed_contract.events import SCRUB_MISMATCH as MISMATCH
from dynafed_contract.events import SCRUB_REQUESTED as REQUESTED
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


_FIELDS = {"store", "bucket", "prefix", "algorithms", "max_objects", "start_after"}


def parse_scrub_request(body: Any) -> ScrubRequest:
    """Validate a JSON scrub request (raises ContractViolation)."""
    body = fields.require_mapping(body, "request body")
    fields.reject_unknown(body, _FIELDS, "scrub request")
    prefix = body.get("prefix", "")
    if not isinstance(prefix, str) or len(prefix.encode()) > fields.MAX_KEY_BYTES:
        raise fields.invalid("field 'prefix' must be a string of at most 1024 bytes")
    max_objects = body.get("max_objects", 1000)
    if isinstance(max_objects, bool) or not isinstance(max_objects, int) or not 1 <= max_objects <= MAX_OBJECTS_LIMIT:
        raise fields.invalid(f"field 'max_objects' must be an integer in 1..{MAX_OBJECTS_LIMIT}")
    start_after = body.get("start_after")
    if start_after is not None and (not isinstance(start_after, str) or not start_after):
        raise fields.invalid("field 'start_after' must be a non-empty string")
    algorithms = None
    if body.get("algorithms") is not None:
        algorithms = fields.algorithm_list(body["algorithms"], default=())
    return ScrubRequest(fields.store_name(body), fields.bucket_name(body), prefix, algorithms, max_objects,
                        start_after)


REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["bucket"],
    "additionalProperties": False,
    "properties": {
        "store": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
        "bucket": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"},
        "prefix": {"type": "string", "maxLength": 1024},
        "algorithms": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(ALGORITHMS)}},
        "max_objects": {"type": "integer", "minimum": 1, "maximum": MAX_OBJECTS_LIMIT},
        "start_after": {"type": "string", "minLength": 1},
    },
}
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
