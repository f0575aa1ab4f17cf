"""The copy wire contract: request parsing, result/line/event shapes, OpenAPI."""
from __future__ import annotations

import jsonschema
import pytest

from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import (
    CopyRequest,
    UrlSource,
    copy_result,
    error_line,
    failed_data,
    parse_cleanup_request,
    parse_copy_request,
    progress_line,
    started_data,
)
from dynafed_contract.errors import ContractViolation, ErrorCode
from dynafed_contract.openapi import COPY_REQUEST, COPY_RESULT, copy_document

SRC = {"store": "default", "bucket": "demo", "key": "a/b"}
DST = {"store": "archive", "bucket": "archive", "key": "a/b"}


def test_minimal_request_gets_the_defaults():
    request = parse_copy_request({"source": {"bucket": "demo", "key": "k"},
                                  "destination": {"bucket": "dst", "key": "k"}})
    assert request == CopyRequest(source=ObjectRef("default", "demo", "k"),
                                  destination=ObjectRef("default", "dst", "k"))
    assert request.verify == "adler32" and request.verify_mode == "auto" and request.overwrite is False


def test_full_request():
    request = parse_copy_request({"source": SRC, "destination": DST, "job_id": "job-1", "verify": "SHA-256",
                                  "verify_mode": "full", "overwrite": True})
    assert request.verify == "sha256" and request.verify_mode == "full" and request.job_id == "job-1"


def test_verify_full_shorthand():
    request = parse_copy_request({"source": SRC, "destination": DST, "verify": "full"})
    assert (request.verify, request.verify_mode) == ("adler32", "full")


def test_url_source():
    request = parse_copy_request({"source": {"url": "https://h.example/p/o?X-Amz-Signature=s"}, "destination": DST})
    assert isinstance(request.source, UrlSource)
    assert request.source.to_json() == {"url": "https://h.example/p/o"}


@pytest.mark.parametrize(("body", "code"), [
    ({"source": SRC}, ErrorCode.INVALID_REQUEST),
    ({"source": SRC, "destination": SRC}, ErrorCode.INVALID_REQUEST),  # same object
    ({"source": SRC, "destination": DST, "verify": "crc64"}, ErrorCode.UNKNOWN_ALGORITHM),
    ({"source": SRC, "destination": DST, "verify": ["md5"]}, ErrorCode.INVALID_REQUEST),
    ({"source": SRC, "destination": DST, "verify_mode": "paranoid"}, ErrorCode.INVALID_REQUEST),
    ({"source": SRC, "destination": DST, "overwrite": "yes"}, ErrorCode.INVALID_REQUEST),
    ({"source": SRC, "destination": DST, "job_id": "no spaces"}, ErrorCode.INVALID_REQUEST),
    ({"source": SRC, "destination": DST, "extra": 1}, ErrorCode.INVALID_REQUEST),
    ({"source": {"url": "ftp://h/x"}, "destination": DST}, ErrorCode.INVALID_REQUEST),
    ({"source": {"url": "http://user:pw@h/x"}, "destination": DST}, ErrorCode.INVALID_REQUEST),
    ({"source": {"url": "http:///x"}, "destination": DST}, ErrorCode.INVALID_REQUEST),
    ({"source": {"url": "http://h:99999/x"}, "destination": DST}, ErrorCode.INVALID_REQUEST),
    ({"source": {"url": "http://h/x y"}, "destination": DST}, ErrorCode.INVALID_REQUEST),
    ({"source": {"url": "http://h/" + "x" * 9000}, "destination": DST}, ErrorCode.INVALID_REQUEST),
    ({"source": {"url": "http://h/x", "store": "s"}, "destination": DST}, ErrorCode.INVALID_REQUEST),
    ("not an object", ErrorCode.INVALID_REQUEST),
])
def test_invalid_requests(body, code):
    with pytest.raises(ContractViolation) as info:
        parse_copy_request(body)
    assert info.value.code == code


def test_request_schema_agrees_with_the_parser():
    body = {"source": SRC, "destination": DST, "job_id": "j", "verify": "md5", "verify_mode": "full",
            "overwrite": True}
    jsonschema.validate(body, COPY_REQUEST)
    parse_copy_request(body)


@pytest.mark.parametrize("status", ["completed", "already-present", "in-progress"])
def test_result_matches_its_schema(status):
    result = copy_result(job_id="j", status=status, strategy="stream", bytes_=10, total=20,
                         checksums={"adler32": "0000000a"}, verified=status != "in-progress", elapsed_s=0.1234567,
                         source=ObjectRef("default", "b", "k"), destination=ObjectRef("archive", "c", "k"))
    jsonschema.validate(result, COPY_RESULT)
    assert result["type"] == "result" and result["total"] == 20 and result["elapsed_s"] == 0.123457


def test_lines_and_event_data():
    line = progress_line("j", 5, 10, 1.23456, 2.0)
    assert line == {"type": "progress", "job_id": "j", "bytes": 5, "total": 10, "rate_bps": 1.2, "elapsed_s": 2.0}
    problem = {"type": "https://x/problems/y", "title": "t", "status": 412, "detail": "d",
               "code": "SOURCE_CHANGED", "retryable": True}
    error = error_line("j", problem)
    assert error["type"] == "error" and error["problem_type"] == problem["type"] and error["code"] == "SOURCE_CHANGED"
    failed = failed_data(job_id="j", problem=problem, bytes_done=3, total=10)
    assert failed["code"] == "SOURCE_CHANGED" and failed["retryable"] is True and failed["bytes"] == 3
    started = started_data(job_id="j", strategy="stream", total=10, source=UrlSource("http://h/p?sig=1"),
                           destination=ObjectRef("d", "b", "k"), resumed=False)
    assert started["source"] == {"url": "http://h/p"} and started["bytes"] == 0


def test_cleanup_request():
    request = parse_cleanup_request({"bucket": "demo", "older_than_s": 3600})
    assert (request.store, request.bucket, request.older_than_s, request.prefix) == ("default", "demo", 3600.0, "")
    for bad in ({"bucket": "demo"}, {"bucket": "demo", "older_than_s": -1}, {"bucket": "demo", "older_than_s": True},
                {"bucket": "demo", "older_than_s": float("nan")}, {"bucket": "demo", "older_than_s": float("inf")},
                {"bucket": "demo", "older_than_s": 1, "x": 1}):
        with pytest.raises(ContractViolation):
            parse_cleanup_request(bad)


def test_openapi_document_is_valid():
    from openapi_spec_validator import validate

    validate(copy_document())
