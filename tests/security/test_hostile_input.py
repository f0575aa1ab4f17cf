"""Hostile and careless input at the function doors (checksum, copy, scrub),
in-process under the socket tripwire, moto behind them (issue 13).

Per class, at every function door:

* class 6 — validators full-match (a trailing ``\\n`` is refused), S3's bucket
  naming rules, keys with ``.``/``..`` segments: a 400 with a stable code,
  not retryable, and no storage call at all;
* class 7 — an integer literal over 4300 digits (CPython's int-conversion
  limit) in a JSON body, a binary-mode and a structured CloudEvent: a 400,
  never a 500;
* class 8 — claims backed by bytes: a server-side copy verifies a stored
  ``x-amz-meta-adler32`` against the source's bytes before calling it
  verified (a wrong one is CHECKSUM_MISMATCH, nothing written); a stored value
  of the wrong form (not 8 hex digits) is never returned by ``cache: use``
  nor trusted by a scrub;
* class 9 — ``text/plain``, form and multipart bodies (what a browser sends
  cross-site without a CORS preflight): 415, the body is not read as JSON.

The gateway, receiver and hooks doors are in ``test_hostile_doors.py``; the
connection-level cases (chunked bodies, gunicorn's own errors) run against
real gunicorn in ``tests/integration/test_hostile_http.py``.
"""
from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent
from moto import mock_aws

from dynafed_runtime.config import Config
from dynafed_runtime.s3 import make_s3_client
from dynafed_runtime.stores import Store
from functions.checksum.app import create_app as create_checksum
from functions.copy.app import create_app as create_copy
from functions.scrub.app import create_app as create_scrub
from tests.tripwire import Tripwire

STORE = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "AKIDHOSTILE", "secret_access_key": "h-secret"}
HUGE_INT = "9" * 5000  # over sys.get_int_max_str_digits() (4300): int() raises ValueError


@dataclasses.dataclass
class Door:
    """One function: its test client, a valid body, the S3 calls it made."""

    name: str
    client: Any
    body: Callable[..., dict[str, Any]]
    calls: list[str]
    event_type: str
    s3: Any = None


def _checksum_body(**over: Any) -> dict[str, Any]:
    return {"bucket": "data", "key": "k", "algorithms": ["adler32"], **over}


def _copy_body(**over: Any) -> dict[str, Any]:
    source = {"bucket": "data", "key": over.pop("key", "k"), "store": over.pop("store", "default")}
    if "bucket" in over:
        source["bucket"] = over.pop("bucket")
    return {"source": source, "destination": {"bucket": "data", "key": "copy"}, **over}


def _scrub_body(**over: Any) -> dict[str, Any]:
    over.pop("key", None)
    return {"bucket": "data", "prefix": "", **over}


DOORS = {
    "checksum": (create_checksum, _checksum_body, "ch.cern.dynafed.checksum.requested"),
    "copy": (create_copy, _copy_body, "ch.cern.dynafed.copy.requested"),
    "scrub": (create_scrub, _scrub_body, "ch.cern.dynafed.scrub.requested"),
}


@pytest.fixture(params=sorted(DOORS))
def door(request: pytest.FixtureRequest, tripwire: Tripwire) -> Iterator[Door]:
    factory, body, event_type = DOORS[request.param]
    with mock_aws():
        s3 = make_s3_client(Store(name="default", **STORE), max_attempts=1)
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="k", Body=b"payload")
        calls: list[str] = []
        s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
        config = Config.from_env({"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}})},
                                 function=request.param)
        app = factory(config, s3=lambda store: s3, sink_transport=lambda *a: 202)
        yield Door(request.param, app.test_client(), body, calls, event_type, s3)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code and body["status"] == status, body
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_a_valid_request_passes_every_door(door: Door) -> None:
    """The baseline the refusals below are measured against: the same body,
    unmodified, is served (so a refusal is the validator's, not a setup fault)."""
    response = door.client.post("/", json=door.body())
    assert response.status_code == 200, response.get_data(as_text=True)


# --- class 6: validators ------------------------------------------------------------

#: what ``re.match(r"...$")`` let through ("$" matches before a final newline), and bucket
#: names S3 refuses (SeaweedFS: weed/s3api/s3bucket/s3api_bucket.go, VerifyS3BucketName)
BAD_FIELDS = [
    {"bucket": "data\n"}, {"bucket": "Data"}, {"bucket": "da"}, {"bucket": "d_ta"}, {"bucket": "data."},
    {"bucket": "-data"}, {"bucket": "da..ta"}, {"bucket": "192.168.1.1"}, {"bucket": "xn--data"},
    {"bucket": "data-s3alias"}, {"bucket": "a" * 64}, {"store": "default\n"},
]
#: keys SeaweedFS refuses (weed/s3api/s3_constants/header.go, IsValidObjectKey: a '.' or '..'
#: segment once '\\' reads as '/'), which used to come back as a retryable 502
BAD_KEYS = ["../x", "a/../b", "a/./b", "./a", "a/..", "..", ".", "a\\..\\b"]


@pytest.mark.parametrize("field", BAD_FIELDS, ids=lambda f: repr(f)[:40])
def test_invalid_names_are_a_400_before_any_storage_call(door: Door, field: dict[str, str]) -> None:
    body = problem(door.client.post("/", json=door.body(**field)), 400, "INVALID_REQUEST")
    assert body["retryable"] is False
    assert door.calls == []


@pytest.mark.parametrize("door", ["checksum", "copy"], indirect=True)  # a scrub names a prefix, not a key
@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_the_store_refuses_are_a_400_before_any_storage_call(door: Door, key: str) -> None:
    body = problem(door.client.post("/", json=door.body(key=key)), 400, "INVALID_REQUEST")
    assert body["retryable"] is False and door.calls == []


@pytest.mark.parametrize("door", ["copy"], indirect=True)  # only a copy takes a job id
@pytest.mark.parametrize("job_id", ["abc\n", "abc\r\n", "\nabc", "abc def", "a" * 129])
def test_a_job_id_with_a_trailing_newline_is_a_400_not_a_retryable_503(door: Door, job_id: str) -> None:
    body = problem(door.client.post("/", json=door.body(job_id=job_id)), 400, "INVALID_REQUEST")
    assert body["retryable"] is False and door.calls == []


# --- class 7: parser edges --------------------------------------------------------------

def _with_huge_int(body: dict[str, Any]) -> bytes:
    """``body`` with a 5000-digit integer literal in it (no encoder writes one: splice it)."""
    text = json.dumps({**body, "padding": 0})
    return text.replace('"padding": 0', f'"padding": {HUGE_INT}').encode()


def test_a_huge_integer_literal_in_a_json_body_is_a_400(door: Door) -> None:
    response = door.client.post("/", data=_with_huge_int(door.body()), content_type="application/json")
    problem(response, 400, "INVALID_REQUEST")
    assert door.calls == []


def test_a_huge_integer_literal_in_a_binary_cloudevent_is_a_400(door: Door) -> None:
    message = to_binary_event(CloudEvent({"type": door.event_type, "source": "/t", "id": "1", "specversion": "1.0",
                                          "datacontenttype": "application/json"}, None))
    headers = dict(message.headers)
    problem(door.client.post("/", headers=headers, data=_with_huge_int(door.body())), 400, "INVALID_REQUEST")
    assert door.calls == []


def test_a_huge_integer_literal_in_a_structured_cloudevent_is_a_400(door: Door) -> None:
    message = to_structured_event(CloudEvent({"type": door.event_type, "source": "/t", "id": "1",
                                              "specversion": "1.0", "datacontenttype": "application/json"},
                                             {"x": 1}))
    payload = bytes(message.body).replace(b'{"x": 1}', b'{"x": ' + HUGE_INT.encode() + b"}")
    payload = payload.replace(b'{"x":1}', b'{"x":' + HUGE_INT.encode() + b"}")
    assert HUGE_INT.encode() in payload
    problem(door.client.post("/", headers=dict(message.headers), data=payload), 400, "INVALID_REQUEST")
    assert door.calls == []


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_json_numbers_are_a_400(door: Door, literal: bytes) -> None:
    data = json.dumps({**door.body(), "padding": 0}).encode().replace(b'"padding": 0', b'"padding": ' + literal)
    problem(door.client.post("/", data=data, content_type="application/json"), 400, "INVALID_REQUEST")


# --- class 9: content types -------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "text/json",
    "application/cloudevents-batch+json",
])
def test_bodies_a_browser_sends_cross_site_without_preflight_are_a_415(door: Door, content_type: str) -> None:
    """A 'simple' cross-site POST (Fetch standard: text/plain, form, multipart) needs
    no CORS preflight: its body must never be taken for a request."""
    data = json.dumps(door.body()).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    problem(door.client.post("/", data=data, headers=headers), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert door.calls == []


def test_json_with_a_charset_parameter_is_json(door: Door) -> None:
    response = door.client.post("/", data=json.dumps(door.body()), content_type="application/json; charset=utf-8")
    assert response.status_code == 200, response.get_data(as_text=True)


# --- class 8: claims backed by bytes ---------------------------------------------------------

PAYLOAD = b"payload"
ADLER = f"{zlib.adler32(PAYLOAD):08x}"


@pytest.mark.parametrize("door", ["copy"], indirect=True)
def test_a_server_side_copy_does_not_trust_a_wrong_stored_adler32(door: Door) -> None:
    """The same store on both sides: CopyObject moves no bytes through the function,
    so the stored value was never checked; it used to come back ``verified: true``
    and was written to the destination."""
    door.s3.put_object(Bucket="data", Key="wrong", Body=PAYLOAD, Metadata={"adler32": "0badc0de"})
    response = door.client.post("/", json={"source": {"bucket": "data", "key": "wrong"},
                                           "destination": {"bucket": "data", "key": "wrong-copy"}})
    problem(response, 422, "CHECKSUM_MISMATCH")
    assert "wrong-copy" not in [o["Key"] for o in door.s3.list_objects_v2(Bucket="data").get("Contents", [])]


@pytest.mark.parametrize("door", ["copy"], indirect=True)
def test_a_server_side_copy_says_verified_for_what_it_read(door: Door) -> None:
    door.s3.put_object(Bucket="data", Key="right", Body=PAYLOAD, Metadata={"adler32": ADLER})
    response = door.client.post("/", json={"source": {"bucket": "data", "key": "right"},
                                           "destination": {"bucket": "data", "key": "right-copy"}})
    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    assert result["strategy"] == "server-side" and result["checksums"] == {"adler32": ADLER}
    assert result["verified"] is True and "source-read" in result["verified_by"]
    assert door.s3.head_object(Bucket="data", Key="right-copy")["Metadata"]["adler32"] == ADLER


@pytest.mark.parametrize("door", ["checksum"], indirect=True)
@pytest.mark.parametrize("stored", ["a" * 320, "123456789", "0x12", "zzzzzzzz", ""])
def test_cache_use_never_returns_a_stored_value_of_the_wrong_form(door: Door, stored: str) -> None:
    door.s3.put_object(Bucket="data", Key="garbled", Body=PAYLOAD, Metadata={"adler32": stored})
    response = door.client.post("/", json={"bucket": "data", "key": "garbled", "algorithms": ["adler32"],
                                           "cache": "use"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["checksums"] == {"adler32": ADLER} and "adler32" not in body["cached"]


@pytest.mark.parametrize("door", ["checksum"], indirect=True)
def test_cache_use_returns_a_stored_value_of_the_right_form(door: Door) -> None:
    door.s3.put_object(Bucket="data", Key="cached", Body=PAYLOAD, Metadata={"adler32": "00000001"})
    body = door.client.post("/", json={"bucket": "data", "key": "cached", "algorithms": ["adler32"],
                                       "cache": "use"}).get_json()
    assert body["checksums"] == {"adler32": "00000001"} and body["cached"] == ["adler32"]  # the baseline


@pytest.mark.parametrize("door", ["scrub"], indirect=True)
def test_a_scrub_does_not_judge_by_a_stored_value_of_the_wrong_form(door: Door) -> None:
    door.s3.put_object(Bucket="data", Key="scrub/garbled", Body=PAYLOAD, Metadata={"adler32": "a" * 320})
    door.s3.put_object(Bucket="data", Key="scrub/rotten", Body=PAYLOAD, Metadata={"adler32": "00000001"})
    body = door.client.post("/", json={"bucket": "data", "prefix": "scrub/"}).get_json()
    assert [m["key"] for m in body["mismatches"]] == ["scrub/rotten"]
    assert body["unverifiable"] == 1


def test_trusting_stored_checksums_is_an_explicit_setting_and_says_so(tripwire: Tripwire) -> None:
    """``DYNAFED_FN_COPY_TRUST_STORED_CHECKSUMS=1``: no byte of the source is read
    (the zero-byte server-side copy a deployment with trusted stored values wants),
    and the answer names the trust instead of a check."""
    with mock_aws():
        s3 = make_s3_client(Store(name="default", **STORE), max_attempts=1)
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="stated", Body=PAYLOAD, Metadata={"adler32": ADLER})
        calls: list[str] = []
        s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
        results = {}
        for trust in ("0", "1"):
            config = Config.from_env({"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}}),
                                      "DYNAFED_FN_COPY_TRUST_STORED_CHECKSUMS": trust}, function="copy")
            client = create_copy(config, s3=lambda store: s3, sink_transport=lambda *a: 202).test_client()
            calls.clear()
            response = client.post("/", json={"source": {"bucket": "data", "key": "stated"},
                                              "destination": {"bucket": "data", "key": f"stated-{trust}"}})
            assert response.status_code == 200, response.get_data(as_text=True)
            results[trust] = (response.get_json()["verified_by"], calls.count("GetObject"))
    assert "source-read" in results["0"][0] and results["0"][1] >= 1
    assert "stored-checksum-trusted" in results["1"][0] and results["1"][1] == 0
