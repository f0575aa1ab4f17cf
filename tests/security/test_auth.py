"""Bearer-token auth on the functions and the gateway: 401 without it, the
decision made by a constant-time compare, nothing done for an unauthenticated
caller, health endpoints open (probes and scrapers carry no token)."""
from __future__ import annotations

import hmac
import json
from typing import Any

import pytest

from dynafed_contract import bearer
from dynafed_runtime.config import Config
from functions.checksum.app import create_app

TOKEN = "auth-test-token-0123456789"
STORE = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "AKIDAUTH", "secret_access_key": "auth-secret"}
BUCKET = "data"
_REAL_COMPARE = hmac.compare_digest  # patched below through the modules' ``hmac`` attribute
OPEN_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json")


class RecordingCompare:
    """Wraps hmac.compare_digest; ``verdict`` (if set) replaces its answer."""

    def __init__(self, verdict: bool | None = None) -> None:
        self.calls: list[tuple[bytes, bytes]] = []
        self.verdict = verdict

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        real = _REAL_COMPARE(a, b)
        return real if self.verdict is None else self.verdict


@pytest.fixture
def s3(s3: Any) -> Any:
    s3.put_object(Bucket="data", Key="k", Body=b"123456789")
    return s3


def function_app(s3: Any, token: str | None = TOKEN) -> Any:
    env = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}})}
    if token is not None:
        env["DYNAFED_FN_AUTH_TOKEN"] = token
    return create_app(Config.from_env(env, function="checksum"), s3=lambda store: s3,
                      sink_transport=lambda *a: 202)


def test_the_decision_is_made_by_a_constant_time_compare(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    compare = RecordingCompare()
    monkeypatch.setattr(bearer.hmac, "compare_digest", compare)
    client = function_app(s3).test_client()
    body = {"bucket": "data", "key": "k"}
    assert client.post("/", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert compare.calls[-1] == (TOKEN.encode(), TOKEN.encode())
    # same length, one byte off: still a compare_digest call, still refused
    wrong = TOKEN[:-1] + ("x" if TOKEN[-1] != "x" else "y")
    assert client.post("/", json=body, headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    assert compare.calls[-1] == (wrong.encode(), TOKEN.encode())
    # and the verdict is compare_digest's alone: no ==, no prefix or length shortcut before it
    compare.verdict = True
    assert client.post("/", json=body, headers={"Authorization": "Bearer x"}).status_code == 200
    compare.verdict = False
    assert client.post("/", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer "},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Token {TOKEN}"}, {"Authorization": TOKEN},
    {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": f"Bearer {TOKEN}0"},
    {"Authorization": "Bearer ünïcode"}, {"X-Auth-Token": TOKEN},
])
def test_unauthenticated_requests_do_nothing(s3: Any, calls: list[str], headers: dict[str, str]) -> None:
    client = function_app(s3).test_client()
    calls.clear()
    for request in (
        lambda: client.post("/", json={"bucket": "data", "key": "k"}, headers=headers),
        # a body over the limit is refused as 401 before it is read (413 would confirm the endpoint works)
        lambda: client.post("/", data=b"x" * 200_000, headers=headers, content_type="application/json"),
        lambda: client.post("/", data=b"{not json", headers=headers, content_type="application/json"),
        lambda: client.get("/admin", headers=headers),  # unknown paths do not reveal themselves as 404
    ):
        response = request()
        assert response.status_code == 401, response.get_data(as_text=True)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = response.get_json()
        assert body["code"] == "UNAUTHORIZED" and body["retryable"] is False
        assert TOKEN not in response.get_data(as_text=True)
    assert calls == []


def test_health_endpoints_stay_open(s3: Any) -> None:
    client = function_app(s3).test_client()
    for path in OPEN_PATHS:
        assert client.get(path).status_code == 200, path


def test_no_token_configured_means_open(s3: Any) -> None:
    for token in (None, ""):
        client = function_app(s3, token=token).test_client()
        assert client.post("/", json={"bucket": "data", "key": "k"}).status_code == 200


# --- the gateway -------------------------------------------------------------------

class NoDispatch:
    """A dispatcher that must never be reached by an unauthenticated request."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def checksum(self, obj: Any, algorithms: Any, **_: Any) -> Any:
        self.calls.append("checksum")
        raise AssertionError("dispatched")

    def copy(self, source: Any, destination: Any, **_: Any) -> Any:
        self.calls.append("copy")
        raise AssertionError("dispatched")


def test_gateway_requires_the_token_and_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch,
                                                                   tripwire: Any) -> None:
    from werkzeug.test import Client

    from dynafed_client.gateway import app as gateway_app
    from dynafed_client.gateway.config import GatewayConfig

    compare = RecordingCompare()
    # the static token's check (gateway/auth.py through contract/bearer.py, the functions' own)
    monkeypatch.setattr(bearer.hmac, "compare_digest", compare)
    dispatcher = NoDispatch()
    app = gateway_app.GatewayApp(GatewayConfig(stores={"default": {**STORE, "endpoint_url": "http://127.0.0.1:9"}},
                                               token=TOKEN), dispatcher)
    client = Client(app)
    requests = [("HEAD", {"Want-Digest": "adler32"}), ("GET", {}), ("PROPFIND", {"Depth": "0"}),
                ("DELETE", {}), ("COPY", {"Source": "http://127.0.0.1:9/default/data/x"}),
                ("COPY", {"Destination": "http://127.0.0.1:9/default/data/y"}), ("OPTIONS", {})]
    for method, headers in requests:
        for auth in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
            response = client.open("/default/data/k", method=method, headers={**headers, **auth})
            assert response.status_code == 401, (method, auth, response.status_code)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in response.get_data(as_text=True)
    assert dispatcher.calls == []
    assert (b"nope", TOKEN.encode()) in compare.calls
    compare.verdict = True  # the verdict is compare_digest's alone
    response = client.open("/default/data/k", method="OPTIONS", headers={"Authorization": "Bearer whatever"})
    assert response.status_code < 400
