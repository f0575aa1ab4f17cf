"""The shared app factory (dynafed_runtime.app) with a tiny real function:
problem+json rendering, request ids, JSON logs, streamed responses and the
in-flight limit, and the promise that no secret or traceback reaches a caller
or a log line."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from flask import Flask, Response
from moto import mock_aws

from dynafed_runtime import errors
from dynafed_runtime.app import FunctionContext, FunctionSpec, create_function_app
from dynafed_runtime.config import Config
from dynafed_runtime.incoming import Incoming
from dynafed_runtime.logs import JsonFormatter
from functions.checksum.app import create_app as create_checksum_app

CANARY_SECRET = "CANARY-secret-4e1d9a0b77"
CANARY_TOKEN = "CANARY-token-0c3b"
SIGNATURE = "feedfacecafebeef" * 4
PRESIGNED = (f"https://s3.example.org/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDCANARY%2F2025"
             f"&X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token=CANARYSESSIONTOKEN")
STORES = json.dumps({"stores": {"default": {"endpoint_url": None, "region": "us-east-1",
                                            "access_key_id": "AKIDCANARY", "secret_access_key": CANARY_SECRET}}})


def handler(incoming: Incoming, ctx: FunctionContext) -> Response | dict[str, Any]:
    """A function whose behaviour the request chooses."""
    action = incoming.data.get("do") if isinstance(incoming.data, dict) else None
    if action == "internal":
        raise RuntimeError(f"unexpected failure talking to {PRESIGNED}")
    if action == "upstream":
        raise errors.UpstreamError(f"source {PRESIGNED} answered 500")
    if action == "translate":
        raise errors.translate(ConnectionResetError(104, "reset"), what=PRESIGNED)
    if action == "stream":
        return Response((f"{i}\n" for i in range(3)), mimetype="application/x-ndjson")
    if action == "store":
        ctx.client(incoming.data["store"])
        return {"ok": True}
    logging.getLogger("dynafed_fn.test").info("handled %s", incoming.event_type)
    return {"data": incoming.data, "event_type": incoming.event_type, "event_id": incoming.event_id}


SPEC = FunctionSpec(name="probe", handler=handler, openapi=lambda: {"openapi": "3.1.0"})


class JsonLines(logging.Handler):
    """Formats records as the function's stderr handler does, at emit time
    (the request id comes from a context variable)."""

    def __init__(self, service: str, revision: str) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter(service, revision))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def docs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


def make_config(**env: str) -> Config:
    variables = {"DYNAFED_FN_STORES": STORES, "K_SERVICE": "probe-svc", "K_REVISION": "probe-svc-00001",
                 "DYNAFED_FN_LOG_LEVEL": "DEBUG", **env}
    return Config.from_env(variables, function="probe")


@pytest.fixture
def logs() -> Iterator[JsonLines]:
    handler_ = JsonLines("probe-svc", "probe-svc-00001")
    root = logging.getLogger()
    root.addHandler(handler_)
    yield handler_
    root.removeHandler(handler_)


@pytest.fixture
def app() -> Flask:
    return create_function_app(SPEC, make_config(), s3=lambda store: None)


def test_internal_error_is_a_bare_500(app: Flask, logs: JsonLines) -> None:
    response = app.test_client().post("/", json={"do": "internal"}, headers={"X-Request-Id": "rid-500"})
    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body == {"type": "https://dynafed-fn.invalid/problems/internal", "title": "Internal error",
                    "status": 500, "detail": "unexpected internal error", "code": "INTERNAL",
                    "retryable": True, "instance": "rid-500"}
    # the traceback goes to the log (JSON, one line), scrubbed
    [failure] = [d for d in logs.docs() if d["msg"].startswith("request failed")]
    assert failure["level"] == "ERROR" and failure["code"] == "INTERNAL" and failure["request_id"] == "rid-500"
    assert "Traceback" in failure["exc"] and "RuntimeError" in failure["exc"]
    assert SIGNATURE not in failure["exc"] and "CANARYSESSIONTOKEN" not in failure["exc"]


@pytest.mark.parametrize("action", ["internal", "upstream", "translate"])
def test_no_secret_or_signature_in_responses_or_logs(app: Flask, logs: JsonLines, action: str) -> None:
    response = app.test_client().post("/", json={"do": action})
    assert response.status_code >= 500
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    for where in (text, "\n".join(logs.lines)):
        assert SIGNATURE not in where
        assert "CANARYSESSIONTOKEN" not in where
        assert CANARY_SECRET not in where
    assert "X-Amz-Signature=REDACTED" in text or action == "internal"


def test_canary_secret_never_leaves_the_checksum_function(logs: JsonLines) -> None:
    """The real checksum app with real (moto-backed) clients signed with the
    canary secret: no answer and no log line may contain it."""
    with mock_aws():
        setup = boto3.client("s3", region_name="us-east-1")
        setup.create_bucket(Bucket="data")
        setup.put_object(Bucket="data", Key="k", Body=b"abc")
        app = create_checksum_app(env={"DYNAFED_FN_STORES": STORES, "DYNAFED_FN_LOG_LEVEL": "DEBUG",
                                       "DYNAFED_FN_AUTH_TOKEN": CANARY_TOKEN})
        client = app.test_client()
        auth = {"Authorization": f"Bearer {CANARY_TOKEN}"}
        responses = [
            client.post("/", json={"bucket": "data", "key": "k", "algorithms": ["md5"], "cache": "write"},
                        headers=auth),
            client.post("/", json={"bucket": "data", "key": "absent"}, headers=auth),
            client.post("/", json={"bucket": "nobucket", "key": "absent"}, headers=auth),
            client.post("/", json={"store": "nope", "bucket": "data", "key": "k"}, headers=auth),
            client.post("/", json={"bucket": "data", "key": "k"}, headers={"Authorization": "Bearer wrong"}),
            client.post("/", data=b"{", headers=auth, content_type="application/json"),
            client.get("/healthz"), client.get("/readyz"), client.get("/metrics"), client.get("/openapi.json"),
        ]
    assert [r.status_code for r in responses] == [200, 404, 404, 400, 401, 400, 200, 200, 200, 200]
    everything = "\n".join([r.get_data(as_text=True) + str(dict(r.headers)) for r in responses] + logs.lines)
    assert CANARY_SECRET not in everything
    assert CANARY_TOKEN not in everything
    assert logs.lines  # the logs were captured (the assertion above means something)


def test_request_ids(app: Flask, logs: JsonLines) -> None:
    client = app.test_client()
    given = client.post("/", json={}, headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    generated = client.post("/", json={})
    assert len(generated.headers["X-Request-Id"]) == 32
    long = client.post("/", json={}, headers={"X-Request-Id": "x" * 500})
    assert long.headers["X-Request-Id"] == "x" * 64
    problem = client.get("/nope", headers={"X-Request-Id": "rid-404"})
    assert problem.get_json()["instance"] == "rid-404" and problem.headers["X-Request-Id"] == "rid-404"


def test_json_logs_carry_identity_and_request_id(app: Flask, logs: JsonLines) -> None:
    app.test_client().post("/", json={"x": 1}, headers={"X-Request-Id": "rid-log"})
    docs = [d for d in logs.docs() if d.get("request_id") == "rid-log"]
    handled = next(d for d in docs if d["msg"] == "handled None")
    request = next(d for d in docs if d["msg"] == "request")
    for doc in (handled, request):
        assert doc["service"] == "probe-svc" and doc["revision"] == "probe-svc-00001"
        assert doc["ts"].endswith("Z") and doc["level"] == "INFO"
    assert request["method"] == "POST" and request["path"] == "/" and request["status"] == 200
    assert request["elapsed_s"] >= 0


def test_probes_are_not_logged_or_counted(app: Flask, logs: JsonLines) -> None:
    client = app.test_client()
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        client.get(path)
    assert not [d for d in logs.docs() if d["msg"] == "request"]
    assert "dynafed_fn_requests_total{" not in client.get("/metrics").get_data(as_text=True)


def test_cloudevent_attributes_reach_the_handler(app: Flask) -> None:
    headers = {"ce-specversion": "1.0", "ce-type": "t.x", "ce-source": "/s", "ce-id": "e-1",
               "content-type": "application/json"}
    body = app.test_client().post("/", data=b'{"a": 1}', headers=headers).get_json()
    assert body == {"data": {"a": 1}, "event_type": "t.x", "event_id": "e-1"}
    plain = app.test_client().post("/", json={"a": 1}).get_json()
    assert plain["event_type"] is None


def test_streamed_response_holds_its_slot_until_closed() -> None:
    app = create_function_app(SPEC, make_config(DYNAFED_FN_MAX_INFLIGHT="1"), s3=lambda store: None)
    client = app.test_client()
    streamed = client.post("/", json={"do": "stream"}, buffered=False)
    assert streamed.status_code == 200
    assert client.post("/", json={}).status_code == 429  # the stream is still open
    assert b"".join(streamed.response) == b"0\n1\n2\n"
    streamed.close()
    assert client.post("/", json={}).status_code == 200


def test_slot_is_released_after_errors() -> None:
    app = create_function_app(SPEC, make_config(DYNAFED_FN_MAX_INFLIGHT="1"), s3=lambda store: None)
    client = app.test_client()
    for _ in range(3):
        assert client.post("/", json={"do": "upstream"}).status_code == 502
    assert client.post("/", data=b"{", content_type="application/json").status_code == 400
    assert client.post("/", json={}).status_code == 200


def test_unknown_store_via_context(app: Flask) -> None:
    response = app.test_client().post("/", json={"do": "store", "store": "x" * 500})
    assert response.status_code == 400 and response.get_json()["code"] == "UNKNOWN_STORE"
    assert len(response.get_json()["detail"]) < 120  # the name is truncated


def test_errors_are_counted_by_code(app: Flask) -> None:
    client = app.test_client()
    client.post("/", json={"do": "upstream"})
    client.post("/", json={"do": "upstream"})
    client.get("/nope")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'dynafed_fn_errors_total{code="UPSTREAM_ERROR",function="probe"} 2.0' in text
    assert 'dynafed_fn_errors_total{code="NOT_FOUND",function="probe"} 1.0' in text
