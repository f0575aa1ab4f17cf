"""OpenAPI 3.1 documents generated from the contract (served at /openapi.json)."""
from __future__ import annotations

from typing import Any

from dynafed_contract import checksum, copy, url_headers
from dynafed_contract.copy import STATUSES, STRATEGIES
from dynafed_contract.errors import ErrorCode

PROBLEM = {
    "type": "object",
    "required": ["title", "status", "detail", "code", "retryable"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": [c.value for c in ErrorCode]},
        "retryable": {"type": "boolean"},
        "instance": {"type": "string"},
    },
}
_CHECKSUMS = {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]+$"}}

# The requests' schemas come from the same field specs the parsers check (dynafed_contract/fieldspec.py).
CHECKSUM_REQUEST = checksum.REQUEST.schema()
CHECKSUM_RESULT = {
    "type": "object",
    "required": ["store", "bucket", "key", "size", "etag", "checksums", "cached", "elapsed_s"],
    "properties": {
        "store": {"type": "string"}, "bucket": {"type": "string"}, "key": {"type": "string"},
        "size": {"type": "integer", "minimum": 0}, "etag": {"type": "string"},
        "checksums": _CHECKSUMS,
        "cached": {"type": "array", "items": {"type": "string"}},
        "written": {"type": "array", "items": {"type": "string"}},
        "range": {"type": "array", "items": {"type": "integer"}},
        "elapsed_s": {"type": "number"},
    },
}
#: credentials for a URL's own host (dynafed_contract/url_headers.py)
URL_HEADERS = url_headers.HEADERS
COPY_REQUEST = copy.REQUEST.schema()
COPY_RESULT = {
    "type": "object",
    "description": (
        "status 'completed' / 'already-present' ends the job. status 'in-progress' means the function "
        "used up its per-request time (DYNAFED_FN_COPY_SLICE_SECONDS): POST the same request again "
        "(same job_id) to continue; 'bytes' is what is durably copied so far and never decreases."
    ),
    "required": ["job_id", "status", "strategy", "bytes", "total", "checksums", "verified", "elapsed_s"],
    "properties": {
        "type": {"type": "string", "enum": ["result"]},
        "job_id": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "strategy": {"type": "string", "enum": list(STRATEGIES)},
        "bytes": {"type": "integer", "minimum": 0},
        "total": {"type": "integer", "minimum": 0},
        "checksums": _CHECKSUMS,
        "verified": {"type": "boolean"},
        "elapsed_s": {"type": "number"},
        "source": {"type": "object"},
        "destination": {"type": "object"},
        "etag": {"type": "string"},
        "verified_by": {"type": "array", "items": {"type": "string"}},
        "resume": {
            "type": "object",
            "description": "in-progress only: the checkpoint (informative; the job id is enough to resume)",
            "properties": {
                "parts_done": {"type": "integer"}, "parts_total": {"type": "integer"},
                "part_size": {"type": "integer"},
            },
        },
    },
}
COPY_NDJSON_LINE = {
    "type": "object",
    "description": (
        "One line of an application/x-ndjson answer: a 'started' line at once (job_id, strategy, total), "
        "'progress' lines (job_id, bytes, total, rate_bps, elapsed_s; the last line is repeated as a "
        "heartbeat after a second without news), then exactly one last line: 'result' (the result object) "
        "or 'error' (a problem document with type 'error': the HTTP status was already 200 when the job failed)."
    ),
    "required": ["type", "job_id"],
    "properties": {"type": {"type": "string", "enum": ["started", "progress", "result", "error"]},
                   "job_id": {"type": "string"}},
}
CLEANUP_REQUEST = copy.CLEANUP.schema()
CLEANUP_RESULT = {
    "type": "object",
    "required": ["store", "bucket", "aborted"],
    "properties": {
        "store": {"type": "string"}, "bucket": {"type": "string"}, "dry_run": {"type": "boolean"},
        "aborted": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "upload_id": {"type": "string"}, "initiated": {"type": "string"}}}},
    },
}


def _problem_responses(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {"description": "problem", "content": {"application/problem+json": {"schema": PROBLEM}}}
        for s in statuses
    }


def _common_paths() -> dict[str, Any]:
    ok = {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}}
    return {
        "/healthz": {"get": {"summary": "Liveness", "responses": ok}},
        "/readyz": {"get": {"summary": "Readiness (stores reachable)",
                            "responses": {**ok, **_problem_responses(503)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "metrics",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": ok}},
    }


def function_document(title: str, summary: str, request: dict[str, Any], result: dict[str, Any],
                      *, errors: tuple[int, ...] = (400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 502, 503),
                      extra_content: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI document of one function."""
    content = {"application/json": {"schema": result}, **(extra_content or {})}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": {
            "/": {"post": {
                "summary": summary,
                "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
                "responses": {"200": {"description": (
                                  "result; to a CloudEvent request the result is one reply CloudEvent in "
                                  "binary mode (ce-* headers, this body as its data)"), "content": content},
                              "202": {"description": ("a CloudEvent request with nothing to report (e.g. an S3 "
                                                      "removal record): empty body")},
                              **_problem_responses(*errors)},
            }},
            **_common_paths(),
        },
    }


#: The answer to an S3 bucket-notification document: one result per record.
NOTIFICATION_RESULT = {
    "type": "object",
    "required": ["results"],
    "properties": {"results": {"type": "array", "items": CHECKSUM_RESULT}},
}


def checksum_document() -> dict[str, Any]:
    return function_document("Dynafed checksum function", "Compute checksums of an object in one pass",
                             CHECKSUM_REQUEST, {"oneOf": [CHECKSUM_RESULT, NOTIFICATION_RESULT]})


def copy_document() -> dict[str, Any]:
    document = function_document(
        "Dynafed copy function", "Copy an object, verified, with progress",
        COPY_REQUEST, COPY_RESULT,
        extra_content={"application/x-ndjson": {"schema": COPY_NDJSON_LINE}},
    )
    document["paths"]["/cleanup"] = {"post": {
        "summary": "Abort multipart uploads older than older_than_s (orphans of killed workers)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": CLEANUP_REQUEST}}},
        "responses": {"200": {"description": "aborted uploads",
                              "content": {"application/json": {"schema": CLEANUP_RESULT}}},
                      **_problem_responses(400, 401, 403, 404, 413, 415, 502, 503)},
    }}
    return document
