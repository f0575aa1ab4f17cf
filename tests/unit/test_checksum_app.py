"""The checksum function through its WSGI interface (Flask test client) with
moto as S3 and a recording CloudEvents sink."""
from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from dynafed_contract import events as types
from dynafed_contract.algorithms import ALGORITHMS
from dynafed_contract.checksum import parse_checksum_request
from dynafed_runtime.config import Config
from dynafed_runtime.hashing import ReadTuning
from functions.checksum import service
from functions.checksum.app import create_app
from tests.reference_checksums import reference
from tests.unit.moto_s3 import moto_s3
from tests.unit.sink_fakes import RecordingSink

BUCKET = "data"
STORE = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "AKIDTEST",
         "secret_access_key": "unit-secret"}
STORES = json.dumps({"stores": {"default": STORE, "other": STORE}})
TOKEN = "s3cr3t-token"


class S3Calls:
    """Counts S3 API calls made through a client (botocore event hook)."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.s3", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def clear(self) -> None:
        self.names.clear()


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    # one session for the module: building a client from a warm session is
    # ~10x cheaper than from a new one (the service model is loaded once)
    return boto3.session.Session(aws_access_key_id=STORE["access_key_id"],
                                 aws_secret_access_key=STORE["secret_access_key"], region_name="us-east-1")


@pytest.fixture
def s3(session: boto3.session.Session) -> Iterator[Any]:
    with moto_s3(session, BUCKET) as client:
        yield client


@pytest.fixture
def calls(s3: Any) -> S3Calls:
    return S3Calls(s3)


def make_app(s3: Any, sink: Any = None, **env: str) -> Flask:
    variables = {"DYNAFED_FN_STORES": STORES, "K_SINK": "http://127.0.0.1:9/", **env}
    config = Config.from_env(variables, function="checksum")
    return create_app(config, s3=lambda store: s3, sink_transport=sink or RecordingSink())


@pytest.fixture
def app(s3: Any, sink: RecordingSink) -> Flask:
    return make_app(s3, sink, K_CE_OVERRIDES='{"extensions": {"cluster": "unit"}}')


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def put(s3: Any, key: str, data: bytes, **kwargs: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, **kwargs)


def problem_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code and body["status"] == status
    return body


# --- the JSON request -----------------------------------------------------------

def test_every_algorithm_in_one_request(s3: Any, client: FlaskClient, calls: S3Calls) -> None:
    data = random.Random(1).randbytes(300_001)
    put(s3, "dir/obj.bin", data)
    calls.clear()
    response = client.post("/", json={"bucket": BUCKET, "key": "dir/obj.bin", "algorithms": list(ALGORITHMS)})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["checksums"] == {a: reference(a, data) for a in ALGORITHMS}
    assert list(body["checksums"]) == list(ALGORITHMS)  # the requested order
    assert body["store"] == "default" and body["bucket"] == BUCKET and body["key"] == "dir/obj.bin"
    assert body["size"] == len(data) and body["cached"] == [] and "written" not in body
    assert body["etag"].strip('"') == hashlib.md5(data).hexdigest()  # noqa: S324 - single-part ETag
    # one pass over the bytes, one request: the GET's headers serve as the HEAD
    assert calls.names == ["GetObject"]


def test_default_algorithm_is_adler32_and_aliases_are_accepted(s3: Any, client: FlaskClient) -> None:
    put(s3, "k", b"Wikipedia")
    assert client.post("/", json={"bucket": BUCKET, "key": "k"}).get_json()["checksums"] == {"adler32": "11e60398"}
    body = client.post("/", json={"bucket": BUCKET, "key": "k", "algorithms": ["ADLER32", "SHA-256", "adler32"]})
    assert list(body.get_json()["checksums"]) == ["adler32", "sha256"]
    assert client.post("/", json={"bucket": BUCKET, "key": "k", "algorithms": "md5,crc32c"}).status_code == 200


def test_zero_byte_object_is_one_unranged_get(s3: Any, client: FlaskClient, calls: S3Calls) -> None:
    put(s3, "empty", b"")
    calls.clear()
    body = client.post("/", json={"bucket": BUCKET, "key": "empty", "algorithms": list(ALGORITHMS)}).get_json()
    assert body["size"] == 0
    assert body["checksums"] == {a: reference(a, b"") for a in ALGORITHMS}
    assert body["checksums"]["adler32"] == "00000001"
    assert calls.names == ["GetObject"]  # whole-object (a ranged GET of 0 bytes would be a 416)


@pytest.mark.parametrize("key", ["a b", "ünïcødé/ключ/键", "100%", "a+b", "x/" * 30 + "deep", "q?x=1&y#z"])
def test_awkward_keys(s3: Any, client: FlaskClient, key: str) -> None:
    put(s3, key, key.encode())
    body = client.post("/", json={"bucket": BUCKET, "key": key, "algorithms": ["md5"]}).get_json()
    assert body["key"] == key and body["checksums"]["md5"] == hashlib.md5(key.encode()).hexdigest()  # noqa: S324


def test_ranged_checksum(s3: Any, client: FlaskClient) -> None:
    data = random.Random(2).randbytes(10_000)
    put(s3, "r", data)
    body = client.post("/", json={"bucket": BUCKET, "key": "r", "algorithms": ["adler32", "crc32c"],
                                  "range": [1000, 5000]}).get_json()
    assert body["range"] == [1000, 5000]
    assert body["checksums"] == {a: reference(a, data[1000:5000]) for a in ("adler32", "crc32c")}
    end_clamped = client.post("/", json={"bucket": BUCKET, "key": "r", "range": [9000, 99_999]}).get_json()
    assert end_clamped["range"] == [9000, 10_000]
    problem_of(client.post("/", json={"bucket": BUCKET, "key": "r", "algorithms": ["md5"], "range": [0, 1]}),
               400, "INVALID_REQUEST")
    problem_of(client.post("/", json={"bucket": BUCKET, "key": "r", "range": [20_000, 30_000]}),
               400, "INVALID_REQUEST")


# --- CloudEvent and S3-notification requests --------------------------------------

def request_event(data: dict[str, Any], event_type: str = types.CHECKSUM_REQUESTED) -> CloudEvent:
    return CloudEvent({"type": event_type, "source": "/dynafed", "id": "req-1", "specversion": "1.0",
                       "datacontenttype": "application/json"}, data)


def test_binary_cloudevent(s3: Any, client: FlaskClient) -> None:
    put(s3, "ev", b"123456789")
    message = to_binary_event(request_event({"bucket": BUCKET, "key": "ev", "algorithms": ["crc32", "crc32c"]}))
    response = client.post("/", headers=message.headers, data=message.body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["checksums"] == {"crc32": "cbf43926", "crc32c": "e3069283"}


def test_structured_cloudevent(s3: Any, client: FlaskClient) -> None:
    put(s3, "ev", b"123456789")
    message = to_structured_event(request_event({"bucket": BUCKET, "key": "ev", "algorithms": ["md5"]}))
    assert message.headers["content-type"] == "application/cloudevents+json"
    response = client.post("/", headers=message.headers, data=message.body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["checksums"] == {"md5": "25f9e794323b453885f5181f1b624d0b"}


def test_cloudevent_of_another_type_is_rejected(s3: Any, client: FlaskClient, calls: S3Calls) -> None:
    calls.clear()
    message = to_binary_event(request_event({"bucket": BUCKET, "key": "ev"}, types.COPY_REQUESTED))
    problem_of(client.post("/", headers=message.headers, data=message.body), 400, "INVALID_REQUEST")
    assert calls.names == []


def test_malformed_cloudevent(client: FlaskClient) -> None:
    # binary mode without the required ce-type/ce-source/ce-id
    response = client.post("/", headers={"ce-specversion": "1.0", "content-type": "application/json"},
                           data=b'{"bucket": "data", "key": "k"}')
    problem_of(response, 400, "INVALID_REQUEST")
    problem_of(client.post("/", headers={"content-type": "application/cloudevents+json"}, data=b"{nope"),
               400, "INVALID_REQUEST")


def notification(key: str, event_name: str = "ObjectCreated:Put", bucket: str = BUCKET) -> dict[str, Any]:
    return {"Records": [{"eventVersion": "2.1", "eventSource": "ceph:s3", "eventName": event_name,
                         "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}}]}


def test_s3_bucket_notification_record(s3: Any, client: FlaskClient) -> None:
    key = "in/a b+c %.txt"
    data = b"notified bytes"
    put(s3, key, data, Metadata={"owner": "atlas"})
    # keys arrive URL-encoded with '+' for space
    doc = notification("in/a+b%2Bc+%25.txt")
    doc["Records"].append(notification("in/gone.txt", "ObjectRemoved:Delete")["Records"][0])
    response = client.post("/", json=doc)
    assert response.status_code == 200, response.get_data(as_text=True)
    [result] = response.get_json()["results"]  # the removal is ignored
    assert result["key"] == key
    assert result["checksums"] == {"adler32": reference("adler32", data), "md5": reference("md5", data)}
    # "checksum on upload" stores the values (UVic convention)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"] == {"owner": "atlas", "adler32": reference("adler32", data),
                                "md5": reference("md5", data)}


def test_s3_notification_inside_a_cloudevent_and_configured_store(s3: Any, sink: RecordingSink) -> None:
    put(s3, "n", b"x")
    client = make_app(s3, sink, DYNAFED_FN_CHECKSUM_NOTIFICATION_STORE="other").test_client()
    message = to_binary_event(request_event(notification("n"), "com.amazonaws.s3.ObjectCreated"))
    response = client.post("/", headers=message.headers, data=message.body)
    assert response.status_code == 200, response.get_data(as_text=True)
    # a CloudEvent is answered with one reply event: the object's checksum.computed
    reply = from_http_event(HTTPMessage(dict(response.headers), response.get_data()))
    assert reply.get_type() == types.CHECKSUM_COMPUTED
    assert reply.get_data()["store"] == "other"


def test_s3_notification_errors(s3: Any, client: FlaskClient) -> None:
    problem_of(client.post("/", json={"Records": []}), 400, "INVALID_REQUEST")
    problem_of(client.post("/", json={"Records": [{"eventName": "ObjectCreated:Put", "s3": "x"}]}),
               400, "INVALID_REQUEST")
    problem_of(client.post("/", json=notification("absent")), 404, "NO_SUCH_OBJECT")


# --- the checksum cache (x-amz-meta-<algo>) ----------------------------------------

DATA = b"cache me if you can"


def stored(s3: Any, key: str = "c") -> dict[str, str]:
    return s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]


def test_cache_use_answers_from_metadata_case_insensitively(s3: Any, client: FlaskClient,
                                                             calls: S3Calls) -> None:
    # a stored value in upper case, without its leading zero, under an upper-case key
    adler = reference("adler32", DATA)
    put(s3, "c", DATA, Metadata={"ADLER32": adler.upper().lstrip("0")})
    calls.clear()
    body = client.post("/", json={"bucket": BUCKET, "key": "c", "algorithms": ["adler32"], "cache": "use"}).get_json()
    assert body["checksums"] == {"adler32": adler} and body["cached"] == ["adler32"]
    assert calls.names == ["HeadObject"]  # nothing to read
    # missing values are computed; nothing is written with "use"
    body = client.post("/", json={"bucket": BUCKET, "key": "c", "algorithms": ["adler32", "md5"],
                                  "cache": "use"}).get_json()
    assert body["checksums"] == {"adler32": adler, "md5": reference("md5", DATA)}
    assert body["cached"] == ["adler32"] and "written" not in body
    assert "CopyObject" not in calls.names


def test_cache_none_computes_and_verifies(s3: Any, client: FlaskClient) -> None:
    put(s3, "c", DATA, Metadata={"md5": reference("md5", DATA)})
    body = client.post("/", json={"bucket": BUCKET, "key": "c", "algorithms": ["md5"]}).get_json()
    assert body["cached"] == [] and body["checksums"]["md5"] == reference("md5", DATA)


def test_stored_value_mismatch_is_422(s3: Any, client: FlaskClient) -> None:
    put(s3, "c", DATA, Metadata={"adler32": "0badc0de"})
    body = problem_of(client.post("/", json={"bucket": BUCKET, "key": "c", "algorithms": ["adler32"]}),
                      422, "CHECKSUM_MISMATCH")
    assert "0badc0de" in body["detail"] and reference("adler32", DATA) in body["detail"]
    assert body["retryable"] is False


def test_cache_write_back_preserves_metadata_and_content_type(s3: Any, client: FlaskClient,
                                                              calls: S3Calls) -> None:
    put(s3, "c", DATA, ContentType="application/x-root", Metadata={"owner": "cms", "adler32": "DEADBEEF"},
        CacheControl="max-age=60", ContentDisposition="attachment")
    calls.clear()
    body = client.post("/", json={"bucket": BUCKET, "key": "c", "algorithms": ["adler32", "md5", "sha256"],
                                  "cache": "write"}).get_json()
    # the cached adler32 is answered (not verified: it came from the cache), the others computed and written
    assert body["cached"] == ["adler32"] and body["written"] == ["md5", "sha256"]
    assert body["checksums"]["adler32"] == "deadbeef"
    assert calls.names.count("CopyObject") == 1
    head = s3.head_object(Bucket=BUCKET, Key="c")
    assert head["ContentType"] == "application/x-root"
    assert head["CacheControl"] == "max-age=60" and head["ContentDisposition"] == "attachment"
    assert head["Metadata"] == {"owner": "cms", "adler32": "DEADBEEF", "md5": reference("md5", DATA),
                                "sha256": reference("sha256", DATA)}
    assert all(v == v.lower() for k, v in head["Metadata"].items() if k != "adler32")
    assert s3.get_object(Bucket=BUCKET, Key="c")["Body"].read() == DATA  # content never changes
    # everything is cached now: no read, no write
    calls.clear()
    again = client.post("/", json={"bucket": BUCKET, "key": "c", "algorithms": ["md5", "sha256"],
                                   "cache": "write"}).get_json()
    assert again["cached"] == ["md5", "sha256"] and "written" not in again
    assert calls.names == ["HeadObject"]


def test_cache_refresh_recomputes_and_overwrites_wrong_values(s3: Any, client: FlaskClient) -> None:
    put(s3, "c", DATA, Metadata={"adler32": "0badc0de", "md5": reference("md5", DATA), "owner": "lhcb"})
    body = client.post("/", json={"bucket": BUCKET, "key": "c", "algorithms": ["adler32", "md5"],
                                  "cache": "refresh"}).get_json()
    assert body["cached"] == [] and body["written"] == ["adler32"]  # md5 was already right
    assert body["checksums"]["adler32"] == reference("adler32", DATA)
    assert stored(s3) == {"adler32": reference("adler32", DATA), "md5": reference("md5", DATA), "owner": "lhcb"}


def test_s3_full_object_checksum_is_a_cache_source(s3: Any, client: FlaskClient, calls: S3Calls) -> None:
    s3.put_object(Bucket=BUCKET, Key="c", Body=DATA, ChecksumAlgorithm="SHA256")
    calls.clear()
    body = client.post("/", json={"bucket": BUCKET, "key": "c", "algorithms": ["sha256"], "cache": "use"}).get_json()
    assert body["cached"] == ["sha256"] and body["checksums"]["sha256"] == reference("sha256", DATA)
    assert calls.names == ["HeadObject"]


def test_bad_cache_mode(client: FlaskClient) -> None:
    problem_of(client.post("/", json={"bucket": BUCKET, "key": "c", "cache": "sometimes"}), 400, "INVALID_REQUEST")


# --- errors ---------------------------------------------------------------------

def test_unknown_algorithm_makes_no_s3_call(client: FlaskClient, calls: S3Calls) -> None:
    calls.clear()
    body = problem_of(client.post("/", json={"bucket": BUCKET, "key": "k", "algorithms": ["adler32", "md4"]}),
                      400, "UNKNOWN_ALGORITHM")
    assert "md4" in body["detail"] and body["retryable"] is False
    assert calls.names == []


def test_unknown_store_makes_no_s3_call(client: FlaskClient, calls: S3Calls) -> None:
    calls.clear()
    problem_of(client.post("/", json={"store": "elsewhere", "bucket": BUCKET, "key": "k"}), 400, "UNKNOWN_STORE")
    assert calls.names == []


def test_missing_key_and_missing_bucket_have_distinct_codes(s3: Any, client: FlaskClient) -> None:
    key = problem_of(client.post("/", json={"bucket": BUCKET, "key": "absent"}), 404, "NO_SUCH_OBJECT")
    bucket = problem_of(client.post("/", json={"bucket": "no-such-bucket", "key": "absent"}), 404, "NO_SUCH_BUCKET")
    assert key["title"] != bucket["title"]
    assert "s3://data/absent" in key["detail"]


@pytest.mark.parametrize(("body", "content_type"), [
    (b"{not json", "application/json"),
    (b"", "application/json"),
    (b"\xff\xfe\x00", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"a string"', "application/json"),
    (b'{"bucket": "data"}', "application/json"),
    (b'{"bucket": "data", "key": ""}', "application/json"),
    (b'{"bucket": "Bad_Bucket!", "key": "k"}', "application/json"),
    (b'{"bucket": "data", "key": "k", "colour": "red"}', "application/json"),
    (b'{"bucket": "data", "key": "k", "algorithms": []}', "application/json"),
    (b'{"bucket": "data", "key": "k", "algorithms": [5]}', "application/json"),
    (b'{"bucket": "data", "key": "k\\u0000"}', "application/json"),
    (b"[" * 100_00 + b"]" * 100_00, "application/json"),
])
def test_malformed_requests_are_400(client: FlaskClient, calls: S3Calls, body: bytes, content_type: str) -> None:
    calls.clear()
    problem_of(client.post("/", data=body, content_type=content_type), 400, "INVALID_REQUEST")
    assert calls.names == []


def test_body_too_large_is_413(client: FlaskClient, calls: S3Calls) -> None:
    calls.clear()
    big = json.dumps({"bucket": BUCKET, "key": "k", "pad": "x" * 70_000}).encode()
    problem_of(client.post("/", data=big, content_type="application/json"), 413, "PAYLOAD_TOO_LARGE")
    assert calls.names == []


def test_unknown_path_and_method(client: FlaskClient) -> None:
    assert problem_of(client.get("/nope"), 404, "NOT_FOUND")["title"] == "No such endpoint"
    assert problem_of(client.get("/"), 405, "METHOD_NOT_ALLOWED")["title"] == "Method not allowed"


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _fail(operation: str, outcome: Any):  # type: ignore[no-untyped-def]
    """before-send hook: the S3 server answers ``outcome`` (a status and code) or the connection fails."""

    def hook(request: Any, **_: Any) -> Any:
        if isinstance(outcome, Exception):
            raise outcome
        status, code = outcome
        xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>m</Message></Error>".encode()
        return AWSResponse(request.url, status, {"content-type": "application/xml"}, _RawBody(xml))

    return f"before-send.s3.{operation}", hook


@pytest.mark.parametrize(("operation", "outcome", "status", "code"), [
    ("HeadObject", EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), 503, "UPSTREAM_UNAVAILABLE"),
    ("GetObject", EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), 503, "UPSTREAM_UNAVAILABLE"),
    ("GetObject", (503, "SlowDown"), 503, "UPSTREAM_UNAVAILABLE"),
    ("GetObject", (412, "PreconditionFailed"), 412, "SOURCE_CHANGED"),
    ("HeadObject", (403, "AccessDenied"), 403, "STORE_NOT_ALLOWED"),
    ("GetObject", (400, "InvalidArgument"), 502, "UPSTREAM_ERROR"),
])
def test_store_faults(s3: Any, client: FlaskClient, operation: str, outcome: Any, status: int, code: str) -> None:
    put(s3, "f", b"x" * 1000)
    s3.meta.events.register(*_fail(operation, outcome))
    # without the cache the GET comes first (its headers serve as the HEAD);
    # consulting the cache starts with a HEAD
    request = {"bucket": BUCKET, "key": "f", "algorithms": ["md5"], **({"cache": "use"} if operation == "HeadObject"
                                                                       else {})}
    body = problem_of(client.post("/", json=request), status, code)
    assert body["retryable"] is (status in (412, 502, 503))
    assert "127.0.0.1:1" not in body["detail"]


def test_write_back_fault_is_reported_not_hidden(s3: Any, client: FlaskClient) -> None:
    put(s3, "c", DATA)
    s3.meta.events.register(*_fail("CopyObject", (412, "PreconditionFailed")))
    problem_of(client.post("/", json={"bucket": BUCKET, "key": "c", "cache": "write"}), 412, "SOURCE_CHANGED")


# --- auth, saturation -------------------------------------------------------------

def test_bearer_token(s3: Any) -> None:
    put(s3, "k", b"abc")
    client = make_app(s3, DYNAFED_FN_AUTH_TOKEN=TOKEN).test_client()
    request = {"bucket": BUCKET, "key": "k"}
    missing = client.post("/", json=request)
    assert problem_of(missing, 401, "UNAUTHORIZED")["retryable"] is False
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    problem_of(client.post("/", json=request, headers={"Authorization": "Bearer wrong"}), 401, "UNAUTHORIZED")
    problem_of(client.post("/", json=request, headers={"Authorization": f"Basic {TOKEN}"}), 401, "UNAUTHORIZED")
    ok = client.post("/", json=request, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert client.post("/", json=request, headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path  # probes and scrapers carry no token


def test_saturation_is_429_with_retry_after(s3: Any) -> None:
    put(s3, "k", b"abc")
    entered, release = threading.Event(), threading.Event()

    def hold(**_: Any) -> None:
        entered.set()
        release.wait(30)

    s3.meta.events.register("before-call.s3.GetObject", hold)
    app = make_app(s3, DYNAFED_FN_MAX_INFLIGHT="1")
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(app.test_client().post(
        "/", json={"bucket": BUCKET, "key": "k"})))
    first.start()
    try:
        assert entered.wait(10)
        busy = app.test_client().post("/", json={"bucket": BUCKET, "key": "k"})
        body = problem_of(busy, 429, "TOO_MANY_REQUESTS")
        assert body["retryable"] is True and int(busy.headers["Retry-After"]) >= 1
        assert app.test_client().get("/healthz").status_code == 200  # probes are not counted
    finally:
        release.set()
        first.join(30)
    assert results[0].status_code == 200
    s3.meta.events.unregister("before-call.s3.GetObject", hold)
    assert app.test_client().post("/", json={"bucket": BUCKET, "key": "k"}).status_code == 200  # slot released


# --- events -------------------------------------------------------------------------

def test_checksum_computed_event(s3: Any, client: FlaskClient, sink: RecordingSink, app: Flask) -> None:
    put(s3, "dir/e k", b"123456789")
    result = client.post("/", json={"bucket": BUCKET, "key": "dir/e k", "algorithms": ["crc32"]}).get_json()
    assert app.extensions["dynafed_fn"].events.flush(5)
    [event] = sink.events()
    attrs = event.get_attributes()
    assert attrs["type"] == types.CHECKSUM_COMPUTED and attrs["specversion"] == "1.0"
    assert attrs["source"] == "/dynafed-fn/checksum"
    assert attrs["subject"] == "default/data/dir/e k"
    assert attrs["datacontenttype"] == "application/json"
    assert attrs["cluster"] == "unit"  # K_CE_OVERRIDES
    assert event.get_data() == result


def test_no_event_on_failure(client: FlaskClient, sink: RecordingSink, app: Flask) -> None:
    client.post("/", json={"bucket": BUCKET, "key": "absent"})
    assert app.extensions["dynafed_fn"].events.flush(5)
    assert sink.sent == []


def test_dead_sink_does_not_affect_the_work(s3: Any) -> None:
    release = threading.Event()

    def hanging_sink(url: str, headers: dict[str, str], body: bytes) -> int:
        release.wait(30)
        return 202

    put(s3, "k", b"123456789")
    client = make_app(s3, hanging_sink).test_client()
    try:
        for _ in range(3):  # would hang here if emitting waited for the sink
            response = client.post("/", json={"bucket": BUCKET, "key": "k", "algorithms": ["crc32"]})
            assert response.status_code == 200 and response.get_json()["checksums"] == {"crc32": "cbf43926"}
    finally:
        release.set()


def test_refused_sink_does_not_affect_the_work(s3: Any) -> None:
    def refused(url: str, headers: dict[str, str], body: bytes) -> int:
        raise ConnectionRefusedError(111, "refused")

    put(s3, "k", b"123456789")
    app = make_app(s3, refused)
    response = app.test_client().post("/", json={"bucket": BUCKET, "key": "k", "algorithms": ["crc32"]})
    assert response.status_code == 200 and response.get_json()["checksums"] == {"crc32": "cbf43926"}


# --- health, readiness, metrics, OpenAPI ------------------------------------------

def test_healthz(client: FlaskClient) -> None:
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["service"] == "checksum" and body["revision"] == "checksum-local"
    assert set(body["digests"]) == set(ALGORITHMS)


def test_healthz_reports_knative_identity(s3: Any) -> None:
    client = make_app(s3, K_SERVICE="cksum", K_REVISION="cksum-00007").test_client()
    body = client.get("/healthz").get_json()
    assert (body["service"], body["revision"], body["function"]) == ("cksum", "cksum-00007", "checksum")


def test_readyz(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "stores": {"default": "ok", "other": "ok"}}


def test_readyz_when_the_store_is_down(s3: Any) -> None:
    s3.meta.events.register(*_fail("ListBuckets", EndpointConnectionError(endpoint_url="http://127.0.0.1:1")))
    response = make_app(s3).test_client().get("/readyz")
    body = problem_of(response, 503, "UPSTREAM_UNAVAILABLE")
    assert body["retryable"] is True
    assert body["stores"]["default"].startswith("unreachable")
    assert "127.0.0.1:1" not in response.get_data(as_text=True)


def test_readyz_store_answering_access_denied_is_ready(s3: Any) -> None:
    s3.meta.events.register(*_fail("ListBuckets", (403, "AccessDenied")))
    assert make_app(s3).test_client().get("/readyz").status_code == 200


def test_metrics(s3: Any, client: FlaskClient) -> None:
    put(s3, "k", b"x" * 4096)
    client.post("/", json={"bucket": BUCKET, "key": "k"})
    client.post("/", json={"bucket": BUCKET, "key": "absent"})
    client.post("/", json={"bucket": BUCKET, "key": "k", "algorithms": ["md4"]})
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'dynafed_fn_requests_total{function="checksum",method="POST",status="200"} 1.0' in text
    assert 'dynafed_fn_requests_total{function="checksum",method="POST",status="404"} 1.0' in text
    assert 'dynafed_fn_errors_total{code="NO_SUCH_OBJECT",function="checksum"} 1.0' in text
    assert 'dynafed_fn_errors_total{code="UNKNOWN_ALGORITHM",function="checksum"} 1.0' in text
    assert 'dynafed_fn_bytes_total{direction="read",function="checksum"} 4096.0' in text
    assert 'dynafed_fn_request_duration_seconds_count{function="checksum"} 3.0' in text


@pytest.fixture
def openapi(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_openapi_is_valid_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1")
    validate(openapi, cls=OpenAPIV31SpecValidator)
    assert {"/", "/healthz", "/readyz", "/metrics", "/openapi.json"} <= set(openapi["paths"])


def _schema(openapi: dict[str, Any], path: str, method: str, status: int, media: str) -> dict[str, Any]:
    return openapi["paths"][path][method]["responses"][str(status)]["content"][media]["schema"]


def test_responses_match_the_documented_schemas(s3: Any, client: FlaskClient, openapi: dict[str, Any]) -> None:
    put(s3, "k", b"abc", Metadata={"md5": reference("md5", b"abc")})
    request = {"bucket": BUCKET, "key": "k", "algorithms": list(ALGORITHMS), "cache": "write"}
    request_schema = openapi["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate(request, request_schema)
    ok = client.post("/", json=request)
    assert ok.status_code == 200
    jsonschema.validate(ok.get_json(), _schema(openapi, "/", "post", 200, "application/json"))
    problems = [
        client.post("/", json={"bucket": BUCKET, "key": "k", "algorithms": ["md4"]}),
        client.post("/", json={"bucket": BUCKET, "key": "absent"}),
        client.post("/", data=b"{", content_type="application/json"),
        client.post("/", data=b"x" * 70_000, content_type="application/json"),
    ]
    for response in problems:
        assert response.mimetype == "application/problem+json"
        schema = _schema(openapi, "/", "post", response.status_code, "application/problem+json")
        jsonschema.validate(response.get_json(), schema)
    health = client.get("/healthz")
    jsonschema.validate(health.get_json(), _schema(openapi, "/healthz", "get", 200, "application/json"))


# --- every read path of the engine gives the same answer --------------------------------

READ_PATHS = {
    # name: tuning small enough that a 100 kB object takes that path
    "inline": ReadTuning(),
    "one-stream-pipelined": ReadTuning(inline_max=0, read_ahead=2),
    # slices of 3 001 bytes hashed as they land; CRC-like only: one buffer of that size, refilled
    "one-stream-slices": ReadTuning(inline_max=0, read_ahead=2, fill_step=3_001),
    "parallel-combined": ReadTuning(inline_max=0, parallel_min=0, part_size=7_001, streams=3),
    "parallel-ordered": ReadTuning(inline_max=0, parallel_min=0, part_size=7_001, ordered_streams=3),
}


CRC = ("adler32", "crc32", "crc32c")


# a byte range is for combinable algorithms only (the contract refuses others)
@pytest.mark.parametrize("path", list(READ_PATHS))
@pytest.mark.parametrize(("algorithms", "byte_range"), [(CRC, None), (ALGORITHMS, None), (CRC, (3, 77_777))],
                         ids=["crc", "all", "crc-range"])
def test_every_read_path_agrees(s3: Any, path: str, algorithms: tuple[str, ...],
                                byte_range: tuple[int, int] | None) -> None:
    data = random.Random(9).randbytes(100_003)
    put(s3, "paths", data)
    body: dict[str, Any] = {"bucket": BUCKET, "key": "paths", "algorithms": list(algorithms)}
    if byte_range is not None:
        body["range"] = list(byte_range)
    request = parse_checksum_request(body)
    seen: list[int] = []
    result = service.compute(request, s3, chunk_size=4_096, tuning=READ_PATHS[path], on_bytes=seen.append)
    start, end = byte_range or (0, len(data))
    assert result["checksums"] == {a: reference(a, data[start:end]) for a in algorithms}
    assert sum(seen) == end - start  # the bytes metric counts every byte once


def test_notification_over_the_record_limit_is_refused(client: FlaskClient, calls: S3Calls) -> None:
    from functions.checksum.app import MAX_NOTIFICATION_RECORDS

    doc = {"Records": notification("k")["Records"] * (MAX_NOTIFICATION_RECORDS + 1)}
    calls.clear()
    body = problem_of(client.post("/", json=doc), 400, "INVALID_REQUEST")
    assert str(MAX_NOTIFICATION_RECORDS) in body["detail"]
    assert calls.names == []  # refused whole, nothing half done


def test_a_stored_cheap_checksum_guards_a_request_for_another_algorithm() -> None:
    """A stored adler32 that disagrees with the bytes fails an md5-only request:
    the function checks cheap stored values it was not asked for as well."""
    import json as _json

    import boto3 as _boto3
    from botocore.config import Config as _Config
    from moto import mock_aws as _mock_aws

    from functions.checksum.app import create_app as _create_app

    stores = _json.dumps({"stores": {"default": {"endpoint_url": None, "access_key_id": "k",
                                                 "secret_access_key": "s"}}})
    with _mock_aws():
        s3 = _boto3.client("s3", region_name="us-east-1",
                           config=_Config(request_checksum_calculation="when_required"))
        s3.create_bucket(Bucket="bucket")
        s3.put_object(Bucket="bucket", Key="rotten", Body=b"bytes changed after the checksum was stored",
                      Metadata={"adler32": "00000001"})
        client = _create_app(env={"DYNAFED_FN_STORES": stores}).test_client()
        response = client.post("/", json={"bucket": "bucket", "key": "rotten", "algorithms": ["md5"]})
        assert response.status_code == 422, response.json
        assert response.json["code"] == "CHECKSUM_MISMATCH" and "adler32" in response.json["detail"]
        ok = client.post("/", json={"bucket": "bucket", "key": "rotten", "algorithms": ["md5"], "cache": "refresh"})
        assert ok.status_code == 200 and set(ok.json["checksums"]) == {"md5"}
