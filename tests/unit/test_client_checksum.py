"""Client.checksum / checksum_many against a real local fake function."""
from __future__ import annotations

import threading

import pytest

from dynafed_client import Client, ClientConfig, RetryPolicy
from dynafed_client import errors as e
from dynafed_contract.checksum import ObjectRef, parse_checksum_request
from tests.unit.client_fakes import FakeFunction, checksum_answer, ok, problem


def client_for(url: str, **config: object) -> Client:
    return Client(ClientConfig(**config).with_function("checksum", url))  # type: ignore[arg-type]


def test_request_body_follows_the_contract() -> None:
    with FakeFunction(lambda req: ok(checksum_answer(req.json))) as fn, client_for(fn.url) as client:
        result = client.checksum("archive:bkt/dir/a b+c%.bin", "ADLER32,sha-256", cache="use")
    seen = fn.requests[0]
    assert seen.method == "POST" and seen.path == "/"
    assert seen.headers["Content-Type"] == "application/json"
    parsed = parse_checksum_request(seen.json)  # the function's own parser accepts it
    assert parsed.object == ObjectRef("archive", "bkt", "dir/a b+c%.bin")
    assert parsed.algorithms == ("adler32", "sha256")
    assert parsed.cache == "use"
    assert result.key == "dir/a b+c%.bin" and result.size == 3 and result.etag == '"e"'
    assert dict(result.checksums) == {"adler32": "00000001", "sha256": "00000001"}


def test_host_override_and_token_are_sent() -> None:
    with FakeFunction(lambda req: ok(checksum_answer(req.json))) as fn:
        config = ClientConfig(token="s3cr3t").with_function("checksum", fn.url, host="checksum.dynafed.example.com")
        with Client(config) as client:
            client.checksum("demo/k")
    headers = fn.requests[0].headers
    assert headers["Host"] == "checksum.dynafed.example.com"
    assert headers["Authorization"] == "Bearer s3cr3t"


def test_no_token_no_authorization_header() -> None:
    with FakeFunction(lambda req: ok(checksum_answer(req.json))) as fn, client_for(fn.url) as client:
        client.checksum("demo/k")
    assert "Authorization" not in fn.requests[0].headers
    assert fn.requests[0].headers["Host"] == fn.url.removeprefix("http://")


def test_unauthorized_is_typed() -> None:
    with FakeFunction(lambda req: problem(401, "UNAUTHORIZED", "missing or invalid bearer token")) as fn, \
            client_for(fn.url) as client:
        with pytest.raises(e.UnauthorizedError) as info:
            client.checksum("demo/k")
    assert info.value.detail == "missing or invalid bearer token"


def test_answer_that_is_not_json_is_a_protocol_error() -> None:
    with FakeFunction(lambda req: (200, {"Content-Type": "text/plain"}, b"hello")) as fn, \
            client_for(fn.url, retry=RetryPolicy.none()) as client:
        with pytest.raises(e.ProtocolError):
            client.checksum("demo/k")


def test_batch_respects_concurrency_limit_and_keeps_order() -> None:
    limit = 3
    lock = threading.Condition()
    state = {"inflight": 0, "max": 0}

    def handler(req):
        with lock:
            state["inflight"] += 1
            state["max"] = max(state["max"], state["inflight"])
            lock.notify_all()
            # hold each request until the limit is reached (or a bounded wait passes), so
            # a client exceeding the limit would be seen doing it
            lock.wait_for(lambda: state["inflight"] >= limit, timeout=2)
        try:
            if req.json["key"] == "missing":
                return problem(404, "NO_SUCH_OBJECT")
            return ok(checksum_answer(req.json, {"adler32": f"{int(req.json['key'][1:]):08x}"}))
        finally:
            with lock:
                state["inflight"] -= 1

    keys = [f"k{i}" for i in range(10)] + ["missing"] + [f"k{i}" for i in range(10, 14)]
    with FakeFunction(handler) as fn, client_for(fn.url, concurrency=8) as client:
        outcomes = list(client.checksum_many([f"demo/{k}" for k in keys], ["adler32"], concurrency=limit))
    assert state["max"] == limit
    assert [o.item.key for o in outcomes] == keys
    failed = [o for o in outcomes if not o.ok]
    assert len(failed) == 1 and isinstance(failed[0].error, e.NotFoundError)
    assert outcomes[3].result is not None and outcomes[3].result.checksums["adler32"] == "00000003"


def test_connection_pool_is_at_least_concurrency() -> None:
    client = Client(ClientConfig(concurrency=32).with_function("checksum", "http://127.0.0.1:9"))
    adapter = client.transport.session.get_adapter("http://127.0.0.1:9/")
    assert adapter._pool_maxsize >= 32  # type: ignore[attr-defined]


def test_missing_function_url_names_the_variable() -> None:
    with pytest.raises(e.ConfigError, match="DYNAFED_FN_CHECKSUM_URL"):
        Client(ClientConfig()).checksum("demo/k")


@pytest.mark.parametrize("text", ["nokey", "bucket/", "/key", "store:bucket"])
def test_bad_object_references(text: str) -> None:
    with pytest.raises(e.ConfigError):
        Client(ClientConfig().with_function("checksum", "http://127.0.0.1:9")).checksum(text)
