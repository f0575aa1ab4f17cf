"""The pure wire contract (dynafed_contract): algorithm names, the
checksum request parser, S3 notifications, error codes, event types, and the
OpenAPI documents generated from it."""
from __future__ import annotations

import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from dynafed_contract import ALGORITHMS, ErrorCode, events, normalize_algorithm
from dynafed_contract.algorithms import CRC_LIKE, normalize_hex
from dynafed_contract.checksum import (
    ChecksumRequest,
    ObjectRef,
    checksum_result,
    parse_checksum_request,
    parse_s3_notification,
)
from dynafed_contract.errors import ContractViolation
from dynafed_contract.openapi import CHECKSUM_REQUEST, PROBLEM, checksum_document, copy_document


@pytest.mark.parametrize(("raw", "expected"), [
    ("adler32", "adler32"), ("ADLER32", "adler32"), (" Md5 ", "md5"), ("SHA-256", "sha256"),
    ("sha-512", "sha512"), ("SHA-1", "sha1"), ("CRC-32C", "crc32c"), ("crc-32", "crc32"),
    ("UNIXcksum", None), ("md4", None), ("", None), ("sha 256", None),
])
def test_normalize_algorithm(raw: str, expected: str | None) -> None:
    assert normalize_algorithm(raw) == expected


@pytest.mark.parametrize(("algorithm", "raw", "expected"), [
    ("adler32", "1", "00000001"), ("adler32", "0001E60398", "01e60398"),
    ("crc32c", "E3069283", "e3069283"), ("crc32", "0", "00000000"), ("crc32", " 00ABC ", "00000abc"),
    ("md5", "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
])
def test_normalize_hex(algorithm: str, raw: str, expected: str) -> None:
    assert normalize_hex(algorithm, raw) == expected


def test_algorithm_sets() -> None:
    assert ALGORITHMS == ("adler32", "crc32", "crc32c", "md5", "sha1", "sha256", "sha512")
    assert CRC_LIKE == {"adler32", "crc32", "crc32c"}


def test_parse_minimal_and_full_requests() -> None:
    assert parse_checksum_request({"bucket": "data", "key": "k"}) == ChecksumRequest(
        ObjectRef("default", "data", "k"), ("adler32",), "none")
    full = parse_checksum_request({"store": "archive", "bucket": "data", "key": "a/b c", "cache": "write",
                                   "algorithms": ["MD5", "adler32", "md5"]})
    assert full.object == ObjectRef("archive", "data", "a/b c")
    assert full.algorithms == ("md5", "adler32") and full.cache == "write" and not full.is_range
    ranged = parse_checksum_request({"bucket": "data", "key": "k", "algorithms": ["crc32c"], "range": [0, 10]})
    assert ranged.is_range and (ranged.range_start, ranged.range_end) == (0, 10)


@pytest.mark.parametrize(("body", "code"), [
    (None, ErrorCode.INVALID_REQUEST),
    ([], ErrorCode.INVALID_REQUEST),
    ({"key": "k"}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data"}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": 5}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "DATA", "key": "k"}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "d", "key": "k"}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k" * 1025}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "é" * 513}, ErrorCode.INVALID_REQUEST),   # 1026 bytes of UTF-8
    ({"bucket": "data", "key": "a\x00b"}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "\udc80"}, ErrorCode.INVALID_REQUEST),    # lone surrogate
    ({"bucket": "data", "key": "k", "store": "bad store"}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "store": ""}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "extra": 1}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "algorithms": []}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "algorithms": {}}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "algorithms": [None]}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "algorithms": ["md5"] * 29}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "algorithms": ["md5", "whirlpool"]}, ErrorCode.UNKNOWN_ALGORITHM),
    ({"bucket": "data", "key": "k", "algorithms": "md5,whirlpool"}, ErrorCode.UNKNOWN_ALGORITHM),
    ({"bucket": "data", "key": "k", "cache": "maybe"}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "range": [5, 1]}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "range": [-1, 1]}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "range": [0, True]}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "range": [0]}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "range": [0, 1], "algorithms": ["sha1"]}, ErrorCode.INVALID_REQUEST),
    ({"bucket": "data", "key": "k", "range": [0, 1], "cache": "use"}, ErrorCode.INVALID_REQUEST),
])
def test_bad_requests(body: object, code: ErrorCode) -> None:
    with pytest.raises(ContractViolation) as info:
        parse_checksum_request(body)
    assert info.value.code is code and info.value.detail


def test_unknown_algorithm_detail_is_bounded() -> None:
    with pytest.raises(ContractViolation) as info:
        parse_checksum_request({"bucket": "data", "key": "k", "algorithms": ["x" * 10_000]})
    assert len(info.value.detail) < 200


def test_s3_notification() -> None:
    doc = {"Records": [
        {"eventName": "ObjectCreated:CompleteMultipartUpload",
         "s3": {"bucket": {"name": "data"}, "object": {"key": "dir/a+b%2Bc%25+%C3%A9"}}},
        {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "data"}, "object": {"key": "x"}}},
        {"s3": {"bucket": {"name": "data"}, "object": {"key": "no-event-name"}}},
    ]}
    requests = parse_s3_notification(doc, "default")
    assert [r.object.key for r in requests] == ["dir/a b+c% é", "no-event-name"]
    assert all(r.algorithms == ("adler32", "md5") and r.cache == "write" for r in requests)


@pytest.mark.parametrize("doc", [{}, {"Records": []}, {"Records": "x"}, {"Records": [1]},
                                 {"Records": [{"s3": {"bucket": {}, "object": {"key": "k"}}}]},
                                 {"Records": [{"s3": {"bucket": {"name": "data"}, "object": {}}}]}])
def test_bad_s3_notifications(doc: dict) -> None:
    with pytest.raises(ContractViolation):
        parse_s3_notification(doc, "default")


def test_checksum_result_matches_its_schema() -> None:
    document = checksum_document()
    schema = document["paths"]["/"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    body = checksum_result(ObjectRef("default", "data", "k"), size=3, etag='"e"', checksums={"md5": "ab"},
                           cached=["md5"], elapsed_s=0.1234567, written=["adler32"], range_=(0, 3))
    jsonschema.validate(body, schema)
    assert body["elapsed_s"] == 0.123457 and body["range"] == [0, 3] and body["written"] == ["adler32"]
    plain = checksum_result(ObjectRef("default", "data", "k"), size=3, etag='"e"', checksums={}, cached=[],
                            elapsed_s=0)
    assert "written" not in plain and "range" not in plain


def test_request_schema_agrees_with_the_parser() -> None:
    good = {"store": "default", "bucket": "data", "key": "k", "algorithms": list(ALGORITHMS), "cache": "refresh"}
    jsonschema.validate(good, CHECKSUM_REQUEST)
    parse_checksum_request(good)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "surprise": 1}, CHECKSUM_REQUEST)


@pytest.mark.parametrize("document", [checksum_document, copy_document])
def test_openapi_documents_are_valid_3_1(document) -> None:  # type: ignore[no-untyped-def]
    doc = document()
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_problem_schema_knows_every_code() -> None:
    assert set(PROBLEM["properties"]["code"]["enum"]) == {c.value for c in ErrorCode}


def test_error_codes_are_stable_strings() -> None:
    assert ErrorCode.NO_SUCH_OBJECT == "NO_SUCH_OBJECT"
    assert ErrorCode("UPSTREAM_UNAVAILABLE").status == 503 and ErrorCode.UPSTREAM_UNAVAILABLE.retryable
    table = {c.value: c.status for c in ErrorCode}
    assert table["INVALID_REQUEST"] == 400 and table["CHECKSUM_MISMATCH"] == 422
    assert table["PAYLOAD_TOO_LARGE"] == 413 and table["TOO_MANY_REQUESTS"] == 429


def test_event_types() -> None:
    assert events.CHECKSUM_COMPUTED == "ch.cern.dynafed.checksum.computed"
    # the types DESIGN.md promises (other functions may add their own)
    assert events.EMITTED >= {"ch.cern.dynafed.checksum.computed", "ch.cern.dynafed.copy.started",
                              "ch.cern.dynafed.copy.progress", "ch.cern.dynafed.copy.completed",
                              "ch.cern.dynafed.copy.failed"}
    assert all(t.startswith("ch.cern.dynafed.") for t in events.EMITTED)
    assert events.COPY_TERMINAL <= events.EMITTED and not (events.ACCEPTED & events.EMITTED)
