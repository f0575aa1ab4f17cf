"""hypothesis on request parsing: the contract's parsers and the runtime's
body/CloudEvent unwrapping. Hostile input may only ever produce the
documented rejection (ContractViolation / a 4xx FunctionError), and what is
accepted always satisfies the limits."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dynafed_contract.algorithms import ALGORITHMS, COMBINABLE
from dynafed_contract.checksum import CACHE_MODES, parse_checksum_request, parse_s3_notification
from dynafed_contract.copy import UrlSource, parse_copy_request
from dynafed_contract.errors import ContractViolation, ErrorCode
from dynafed_contract.fields import MAX_KEY_BYTES
from dynafed_runtime.errors import FunctionError
from dynafed_runtime.incoming import parse_incoming
from tests.seeding import examples

FUZZ = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
algorithm_names = st.sampled_from([*ALGORITHMS, "ADLER32", "Sha-256", "md4", "", " md5", "crc64"])
keys = st.text(min_size=0, max_size=30) | st.text(alphabet="é\x00/\ud800 a", min_size=1000, max_size=1100)
buckets = st.sampled_from(["data", "d", "Data", "a" * 64, "my.bucket-1", "-x", ""]) | st.text(max_size=8)
stores = st.sampled_from(["default", "archive", "", "a" * 65, "../x"]) | st.text(max_size=6)


def near(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts built from the real field names (each maybe present, maybe hostile), plus strays."""
    return st.fixed_dictionaries({}, optional={**{k: v | json_values for k, v in fields.items()},
                                               "colour": json_values})


object_fields = {"store": stores, "bucket": buckets, "key": keys}
checksum_bodies = near({**object_fields,
                        "algorithms": st.lists(algorithm_names, max_size=40) | st.text(max_size=40),
                        "cache": st.sampled_from([*CACHE_MODES, "all", ""]),
                        "range": st.lists(st.integers(-2, 2**64), max_size=3)})
urls = st.sampled_from(["http://h/x", "https://h:8443/a?X-Amz-Signature=abc", "ftp://h/x", "file:///etc/passwd",
                        "http:///nohost", "gopher://h", "HTTP://H/x", "http://[::1]/x", "//h/x", "h/x",
                        "http://user:pw@h/x"]) | st.text(max_size=30)
copy_bodies = near({"source": near({**object_fields, "url": urls}), "destination": near(object_fields),
                    "job_id": st.text(max_size=140), "verify": algorithm_names | st.just("full"),
                    "verify_mode": st.sampled_from(["auto", "full", "none"]), "overwrite": st.booleans()})


def _check_rejection(exc: ContractViolation) -> None:
    assert isinstance(exc.code, ErrorCode) and 400 <= exc.code.status < 500
    assert exc.detail and len(exc.detail) < 400  # a bounded echo of the input, never the whole of it


@FUZZ
@given(json_values | checksum_bodies)
@example({"bucket": "data", "key": "k" * (MAX_KEY_BYTES + 1)})
@example({"bucket": "data", "key": "é" * 513})
@example({"bucket": "data", "key": "k", "algorithms": ["md5"] * 29})
@example({"bucket": "data", "key": "k", "range": [0, 10], "algorithms": ["md5"]})
def test_checksum_request_parsing(body: Any) -> None:
    try:
        request = parse_checksum_request(body)
    except ContractViolation as exc:
        _check_rejection(exc)
        return
    assert len(request.object.key.encode("utf-8")) <= MAX_KEY_BYTES and "\x00" not in request.object.key
    assert request.algorithms and set(request.algorithms) <= set(ALGORITHMS)
    assert len(set(request.algorithms)) == len(request.algorithms) <= len(ALGORITHMS)
    assert request.cache in CACHE_MODES
    if request.is_range:
        assert 0 <= request.range_start <= request.range_end  # type: ignore[operator]
        assert set(request.algorithms) <= set(COMBINABLE) and request.cache == "none"


@FUZZ
@given(json_values | copy_bodies)
@example({"source": {"url": "file:///etc/passwd"}, "destination": {"bucket": "data", "key": "k"}})
@example({"source": {"url": "http://h/" + "a" * 9000}, "destination": {"bucket": "data", "key": "k"}})
@example({"source": {"bucket": "data", "key": "k"}, "destination": {"bucket": "data", "key": "k"}})
def test_copy_request_parsing(body: Any) -> None:
    try:
        request = parse_copy_request(body)
    except ContractViolation as exc:
        _check_rejection(exc)
        return
    if isinstance(request.source, UrlSource):
        parts = urlsplit(request.source.url)
        assert parts.scheme.lower() in ("http", "https") and parts.hostname
        shown = json.dumps(request.source.to_json())
        assert "?" not in shown and "@" not in shown  # query (signatures) and userinfo never echoed
    else:
        assert request.source != request.destination
    assert request.verify in ALGORITHMS and request.verify_mode in ("auto", "full")


@FUZZ
@given(json_values | st.fixed_dictionaries({"Records": st.lists(json_values | st.fixed_dictionaries({
    "eventName": st.sampled_from(["ObjectCreated:Put", "ObjectRemoved:Delete", ""]),
    "s3": st.fixed_dictionaries({"bucket": st.fixed_dictionaries({"name": buckets}),
                                 "object": st.fixed_dictionaries({"key": keys})})}), max_size=5)}))
def test_s3_notification_parsing(body: Any) -> None:
    if not isinstance(body, dict):
        return
    try:
        requests = parse_s3_notification(body, "default")
    except ContractViolation as exc:
        _check_rejection(exc)
        return
    assert len(requests) <= 100
    assert all(r.object.store == "default" for r in requests)


header_names = st.sampled_from(["content-type", "ce-specversion", "ce-type", "ce-id", "ce-source", "ce-subject",
                                "ce-time", "ce-datacontenttype", "Content-Type"])
header_values = st.sampled_from(["application/json", "application/cloudevents+json", "1.0", "0.3", "2.0", "",
                                 "ch.cern.dynafed.checksum.requested", "text/plain; charset=utf-8",
                                 "application/cloudevents-batch+json"]) | st.text(max_size=20)
bodies = st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()) | st.just(
    b'{"specversion": "1.0", "type": "t", "source": "s", "id": "1", "data": {"bucket": "b"}}')


@FUZZ
@given(st.dictionaries(header_names, header_values, max_size=6), bodies)
def test_incoming_parsing_rejects_only_with_400(headers: dict[str, str], body: bytes) -> None:
    try:
        incoming = parse_incoming(headers, body)
    except FunctionError as exc:
        # 415: not JSON nor a CloudEvent by its Content-Type (issue 13, class 9)
        assert (exc.status, exc.code) in ((400, ErrorCode.INVALID_REQUEST), (415, ErrorCode.UNSUPPORTED_MEDIA_TYPE))
        return
    json.dumps(incoming.data)  # whatever was accepted is plain JSON data
