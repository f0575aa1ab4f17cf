"""Request limits: every bound is enforced before any storage call, with the
documented code (413 body, 400 key length / algorithm list / batch size)."""
from __future__ import annotations

import json
from typing import Any

import pytest
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

from dynafed_contract.algorithms import ALGORITHMS
from dynafed_contract.fields import MAX_BODY_BYTES, MAX_KEY_BYTES
from dynafed_runtime import app as runtime_app
from dynafed_runtime.config import Config
from functions.checksum.app import create_app

STORE = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "AKIDLIM", "secret_access_key": "lim-secret"}
BUCKET = "data"


@pytest.fixture
def client(s3: Any) -> Any:
    config = Config.from_env({"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}})}, function="checksum")
    return create_app(config, s3=lambda store: s3, sink_transport=lambda *a: 202).test_client()


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == code and response.mimetype == "application/problem+json"
    return body


def test_the_runtime_and_the_contract_agree_on_the_body_limit() -> None:
    assert runtime_app.MAX_BODY_BYTES == MAX_BODY_BYTES


def _event(data: Any) -> CloudEvent:
    return CloudEvent({"type": "ch.cern.dynafed.checksum.requested", "source": "/t", "id": "1",
                       "specversion": "1.0", "datacontenttype": "application/json"}, data)


@pytest.mark.parametrize("form", ["json", "binary-cloudevent", "structured-cloudevent", "not-json"])
def test_body_over_the_limit_is_413_before_any_work(client: Any, calls: list[str], form: str) -> None:
    request = {"bucket": "data", "key": "k", "pad": "x" * (MAX_BODY_BYTES + 1)}
    if form == "json":
        response = client.post("/", json=request)
    elif form == "not-json":
        response = client.post("/", data=b"\x00" * (MAX_BODY_BYTES + 1), content_type="application/octet-stream")
    else:
        message = (to_binary_event if form == "binary-cloudevent" else to_structured_event)(_event(request))
        response = client.post("/", data=bytes(message.body), headers=dict(message.headers))
    problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert calls == []


def test_body_just_under_the_limit_is_parsed(client: Any, calls: list[str]) -> None:
    body = json.dumps({"bucket": "data", "key": "k", "pad": ""}).encode()
    body = body.replace(b'"pad": ""', b'"pad": "' + b"x" * (MAX_BODY_BYTES - len(body)) + b'"')
    assert len(body) == MAX_BODY_BYTES
    assert problem(client.post("/", data=body, content_type="application/json"), 400, "INVALID_REQUEST")[
        "detail"].startswith("unknown field")  # read and parsed, refused for the stray field only


@pytest.mark.parametrize(("key", "accepted"), [
    ("k" * MAX_KEY_BYTES, True), ("k" * (MAX_KEY_BYTES + 1), False),
    ("é" * (MAX_KEY_BYTES // 2), True), ("é" * (MAX_KEY_BYTES // 2) + "k", False),  # bytes, not characters
    ("€" * 342, False), ("\U0001F600" * 256, True), ("\U0001F600" * 256 + "k", False),
])
def test_key_length_is_bounded_in_utf8_bytes(client: Any, calls: list[str], key: str, accepted: bool) -> None:
    response = client.post("/", json={"bucket": "data", "key": key})
    if accepted:
        problem(response, 404, "NO_SUCH_OBJECT")  # passed the limit, looked up
        assert calls  # passed the limit and reached the store
    else:
        assert "longer than 1024 bytes" in problem(response, 400, "INVALID_REQUEST")["detail"]
        assert calls == []


def test_algorithm_list_is_bounded(client: Any, calls: list[str]) -> None:
    at_limit = [ALGORITHMS[i % len(ALGORITHMS)] for i in range(4 * len(ALGORITHMS))]
    problem(client.post("/", json={"bucket": "data", "key": "k", "algorithms": at_limit}), 404, "NO_SUCH_OBJECT")
    calls.clear()
    over = at_limit + ["md5"]
    assert "too many" in problem(client.post("/", json={"bucket": "data", "key": "k", "algorithms": over}),
                                 400, "INVALID_REQUEST")["detail"]
    as_string = ",".join(over)
    problem(client.post("/", json={"bucket": "data", "key": "k", "algorithms": as_string}), 400, "INVALID_REQUEST")
    long_name = "a" * 10_000
    body = problem(client.post("/", json={"bucket": "data", "key": "k", "algorithms": [long_name]}),
                   400, "UNKNOWN_ALGORITHM")
    assert len(body["detail"]) < 200  # the echo of a hostile name is bounded
    assert calls == []


def _notification(records: int) -> dict[str, Any]:
    return {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "data"},
                                                                  "object": {"key": f"k{i}"}}}
                        for i in range(records)]}


def test_notification_batch_at_the_limit_is_processed(s3: Any, client: Any) -> None:
    for i in range(100):
        s3.put_object(Bucket="data", Key=f"k{i}", Body=b"x")
    response = client.post("/", json=_notification(100))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["results"]) == 100


def test_notification_batch_over_the_limit_is_refused_not_truncated(s3: Any, client: Any,
                                                                     calls: list[str]) -> None:
    response = client.post("/", json=_notification(101))
    assert response.status_code in (400, 413), response.status_code
    assert calls == []
