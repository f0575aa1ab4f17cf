"""Secrets never leave a function: not in responses, logs (at DEBUG, with
tracebacks), CloudEvents or exception text, on any error path.

The canary credentials (tests/security/canary.py) are the configured store
credentials and bearer token; S3 error bodies that echo signing material
(as real S3 does for SignatureDoesNotMatch) and exceptions quoting presigned
URLs are injected with botocore ``before-send`` hooks. Copy-function paths
(presigned http sources) are covered in test_secrets_copy.py.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

from dynafed_runtime import errors
from dynafed_runtime.config import Config
from dynafed_runtime.stores import Store
from functions.checksum.app import create_app
from tests.security.canary import (
    ACCESS_KEY,
    AUTH_TOKEN,
    SECRET_KEY,
    SESSION_TOKEN,
    SIGNATURE,
    Capture,
    canary_store,
    capture_logs,
    presigned,
    presigned_v2,
)

BUCKET = "data"
STORE = canary_store(None)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def s3_error(status: int, code: str, message: str, **extra: str):  # type: ignore[no-untyped-def]
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message>{fields}</Error>".encode()

    def hook(request: Any, **_: Any) -> Any:
        return AWSResponse(request.url, status, {"content-type": "application/xml"}, _Raw(xml))

    return hook


def raising(exc: BaseException):  # type: ignore[no-untyped-def]
    def hook(**_: Any) -> Any:
        raise exc

    return hook


@pytest.fixture
def s3(s3: Any) -> Any:
    s3.put_object(Bucket=BUCKET, Key="obj", Body=b"123456789",
                  Metadata={"adler32": "00000001"})  # wrong on purpose: a mismatch path
    s3.put_object(Bucket=BUCKET, Key="ok", Body=b"123456789")
    return s3


@pytest.fixture
def capture() -> Iterator[Capture]:
    cap = Capture()
    yield cap


def make_app(s3: Any, capture: Capture, **env: str) -> Any:
    variables = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}}), "K_SINK": "http://127.0.0.1:9/",
                 "DYNAFED_FN_AUTH_TOKEN": AUTH_TOKEN, "DYNAFED_FN_LOG_LEVEL": "DEBUG", **env}
    return create_app(Config.from_env(variables, function="checksum"), s3=lambda store: s3,
                      sink_transport=capture.sink)


AUTH = {"Authorization": f"Bearer {AUTH_TOKEN}"}
SIGNING_ECHO = {  # what real S3 sends back with SignatureDoesNotMatch
    "AWSAccessKeyId": ACCESS_KEY,
    "StringToSign": f"AWS4-HMAC-SHA256\n20260101T000000Z\n{SIGNATURE}",
    "SignatureProvided": SIGNATURE,
    "CanonicalRequest": f"GET\n/data/obj\nX-Amz-Security-Token={SESSION_TOKEN}&X-Amz-Signature={SIGNATURE}",
}
FAULTS = {
    "signature-mismatch-echo": ("before-send.s3.HeadObject", s3_error(
        403, "SignatureDoesNotMatch", f"The request signature we calculated does not match {SIGNATURE}",
        **SIGNING_ECHO)),
    "invalid-key-echo": ("before-send.s3.GetObject", s3_error(
        403, "InvalidAccessKeyId", f"The AWS Access Key Id {ACCESS_KEY} you provided does not exist",
        AWSAccessKeyId=ACCESS_KEY)),
    "server-error-echo": ("before-send.s3.GetObject", s3_error(
        500, "InternalError", f"backend failed for {presigned('http://127.0.0.1:1/data/obj')}")),
    "connection-error": ("before-send.s3.GetObject", raising(EndpointConnectionError(
        endpoint_url=presigned("http://127.0.0.1:1/data/obj")))),
    "library-bug-quoting-a-presigned-url": ("before-send.s3.GetObject", raising(
        RuntimeError(f"unexpected state fetching {presigned('http://127.0.0.1:1/data/obj')}"))),
    "library-bug-quoting-a-v2-presigned-url": ("before-send.s3.GetObject", raising(
        RuntimeError(f"unexpected state fetching {presigned_v2('http://127.0.0.1:1/data/obj')}"))),
    "library-bug-quoting-the-credentials": ("before-send.s3.HeadObject", raising(
        ValueError(f"cannot sign: key={SECRET_KEY!r} token={SESSION_TOKEN!r}"))),
    "write-back-refused": ("before-send.s3.CopyObject", s3_error(
        403, "SignatureDoesNotMatch", "no", **SIGNING_ECHO)),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_store_error_paths_leak_nothing(s3: Any, capture: Capture, fault: str) -> None:
    app = make_app(s3, capture)
    event, hook = FAULTS[fault]
    s3.meta.events.register(event, hook)
    for cap in capture_logs(capture, "checksum"), :
        with _ctx(cap):
            for key, cache in (("obj", "none"), ("ok", "write")):
                response = capture.response(app.test_client().post(
                    "/", json={"bucket": BUCKET, "key": key, "algorithms": ["adler32"], "cache": cache},
                    headers=AUTH))
                assert response.status_code >= 400 or fault == "write-back-refused" and cache == "none"
    app.extensions["dynafed_fn"].events.flush(5)
    assert capture.responses and capture.logs
    capture.assert_clean()


def test_an_unexpected_exception_quoting_credentials_is_redacted_in_logs(s3: Any, capture: Capture) -> None:
    """A bug that raises with a credential in its message (here: the S3 client
    factory) is logged with its traceback for the operator, redacted."""

    def broken_factory(store: Store) -> Any:
        raise ValueError(f"cannot build a client for {store.access_key_id}:{store.secret_access_key} "
                         f"token {store.session_token} via {presigned_v2('http://127.0.0.1:1/b/k')}")

    variables = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}}), "DYNAFED_FN_LOG_LEVEL": "DEBUG"}
    app = create_app(Config.from_env(variables, function="checksum"), s3=broken_factory,
                     sink_transport=capture.sink)
    with _ctx(capture_logs(capture, "checksum")):
        response = capture.response(app.test_client().post("/", json={"bucket": BUCKET, "key": "ok"}))
    assert response.status_code == 500 and response.get_json()["code"] == "INTERNAL"
    assert any("ValueError" in line and "cannot build a client" in line for line in capture.logs)  # still useful
    capture.assert_clean()


def test_request_error_paths_leak_nothing(s3: Any, capture: Capture) -> None:
    app = make_app(s3, capture)
    client = app.test_client()
    requests = [
        ({"bucket": BUCKET, "key": "ok"}, {}),  # no token
        ({"bucket": BUCKET, "key": "ok"}, {"Authorization": f"Bearer {AUTH_TOKEN}x"}),  # almost the token
        ({"bucket": BUCKET, "key": "ok"}, {"Authorization": f"Basic {AUTH_TOKEN}"}),
        ({"bucket": BUCKET, "key": "ok", "store": "nope"}, AUTH),
        ({"bucket": BUCKET, "key": "ok", "algorithms": [SECRET_KEY[:40]]}, AUTH),  # echo of caller input only
        ({"bucket": BUCKET, "key": "absent"}, AUTH),
        ({"bucket": "nobucket", "key": "absent"}, AUTH),
        ({"bucket": BUCKET, "key": "obj", "cache": "none"}, AUTH),  # stored value mismatch
        ({"bucket": BUCKET, "key": "ok", "algorithms": ["md5", "sha512"]}, AUTH),  # success, with an event
    ]
    with _ctx(capture_logs(capture, "checksum")):
        for body, headers in requests:
            capture.response(client.post("/", json=body, headers=headers))
        capture.response(client.post("/", data=b"{" + SIGNATURE[:5].encode(), headers=AUTH,
                                     content_type="application/json"))
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            capture.response(client.get(path))
    app.extensions["dynafed_fn"].events.flush(5)
    assert len(capture.events) == 1  # the success path emitted; its event was searched too
    # the caller's own input may be echoed (bounded), the configured secrets never:
    capture.responses = [r.replace(SECRET_KEY[:40], "<caller input>") for r in capture.responses]
    capture.logs = [line.replace(SECRET_KEY[:40], "<caller input>") for line in capture.logs]
    capture.assert_clean()


def test_config_and_store_reprs_hold_no_secret() -> None:
    config = Config.from_env({"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}}),
                              "DYNAFED_FN_AUTH_TOKEN": AUTH_TOKEN}, function="checksum")
    capture = Capture(other=[repr(config), str(config), repr(config.store("default")),
                             json.dumps(config.store("default").public())])
    capture.assert_clean()


@pytest.mark.parametrize("url", [presigned("http://127.0.0.1:1/b/k"), presigned_v2("http://127.0.0.1:1/b/k"),
                                 "http://127.0.0.1:1/b/k?sig=" + SIGNATURE + "&se=2030"])
def test_translated_exception_text_is_scrubbed(url: str) -> None:
    import requests as rq

    for exc in (rq.ConnectionError(f"Max retries exceeded with url: {url}"), RuntimeError(url)):
        error = errors.translate(exc, what=url)
        capture = Capture(other=[str(error), error.detail, json.dumps(errors.problem(error))])
        capture.assert_clean()


class _ctx:
    """``with`` over a generator-based context (capture_logs)."""

    def __init__(self, gen: Iterator[None]) -> None:
        self._gen = gen

    def __enter__(self) -> None:
        next(self._gen)

    def __exit__(self, *exc: object) -> None:
        for _ in self._gen:
            pass


@pytest.mark.parametrize("text", [
    presigned("https://s3.example/b/k"),
    presigned_v2("https://rgw.example/b/k"),
    f"https://acct.blob.example/c/b?sv=2024&se=2030&sig={SIGNATURE}",
    f"https://storage.example/b/k?X-Goog-Signature={SIGNATURE}&X-Goog-Credential=x",
    f"Authorization: Bearer {AUTH_TOKEN}",
    f"{{'Authorization': 'AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101, Signature={SIGNATURE}'}}",
    f'{{"authorization": "Bearer {AUTH_TOKEN}"}}',
])
def test_scrub_removes_signatures_and_authorization_values(text: str) -> None:
    assert Capture(other=[errors.scrub(text)]).leaks() == []


def test_registered_secret_values_are_redacted_in_every_form() -> None:
    errors.register_secrets(SECRET_KEY, SESSION_TOKEN, None, "short")
    import json as _json
    from urllib.parse import quote

    for form in (SECRET_KEY, _json.dumps(SECRET_KEY)[1:-1], quote(SECRET_KEY, safe=""), SESSION_TOKEN):
        assert Capture(other=[errors.scrub(f"x {form} y")]).leaks() == []
    assert errors.scrub("a short word") == "a short word"  # values under 8 characters are not registered
