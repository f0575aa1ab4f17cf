"""Secrets never leave the copy function: presigned-URL signatures and
security tokens of http(s) sources, and the stores' canary credentials, are
searched for in responses (JSON and ndjson), DEBUG logs with tracebacks and
CloudEvents, across the error paths of an http source."""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from dynafed_runtime.config import Config
from functions.copy.app import create_app
from tests.faults.httpsource import StaticHttpSource
from tests.security.canary import Capture, canary_store, capture_logs, presigned, presigned_v2
from tests.security.test_secrets import _ctx

STORE = canary_store(None)
BUCKET = "dest"
DATA = b"0123456789abcdef" * 4096


@pytest.fixture
def site() -> Iterator[StaticHttpSource]:
    with StaticHttpSource() as s:
        s.put("/b/good", DATA)
        s.put("/b/lying", DATA, headers={"x-amz-meta-adler32": "00000001"})  # a wrong stated checksum
        s.redirect("/b/moved", presigned("http://127.0.0.1:9/b/elsewhere"))
        yield s


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def app(s3: Any, capture: Capture, sources: str, *, allow_private: bool = True) -> Any:
    env = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}}), "DYNAFED_FN_HTTP_SOURCES": sources,
           "DYNAFED_FN_ALLOW_PRIVATE_SOURCES": "1" if allow_private else "0", "DYNAFED_FN_LOG_LEVEL": "DEBUG",
           "K_SINK": "http://127.0.0.1:9/"}
    return create_app(Config.from_env(env, function="copy"), s3=lambda store: s3, sink_transport=capture.sink)


@pytest.mark.parametrize("sign", [presigned, presigned_v2], ids=["sigv4", "sigv2"])
def test_http_source_error_paths_leak_no_signature(s3: Any, site: StaticHttpSource, closed_port: int,
                                                   sign: Any) -> None:
    capture = Capture()
    dead = f"http://127.0.0.1:{closed_port}"
    fn = app(s3, capture, f"{site.url},{dead}")
    strict = app(s3, capture, site.url, allow_private=False)
    cases = [
        (fn, sign(f"{site.url}/b/good"), 200),  # success: progress events and the result echo the source
        (fn, sign(f"{site.url}/b/missing"), 404),
        (fn, sign(f"{site.url}/b/moved"), 502),  # a redirect whose Location is presigned too
        (fn, sign(f"{site.url}/b/lying"), 422),  # stated checksum disagrees
        (fn, sign(f"{dead}/b/k"), 503),  # connection refused
        (fn, sign("http://127.0.0.2:1/b/k"), 403),  # not on the allow-list
        (strict, sign(f"{site.url}/b/good"), 403),  # a private address
    ]
    with _ctx(capture_logs(capture, "copy")):
        for i, (client, url, status) in enumerate(cases):
            for accept in ("application/json", "application/x-ndjson"):
                response = client.test_client().post(
                    "/", json={"source": {"url": url}, "destination": {"bucket": "dest", "key": f"o{i}{accept[-4:]}"},
                               "overwrite": True}, headers={"Accept": accept})
                capture.response(response)
                if accept == "application/json":
                    assert response.status_code == status, (url, response.get_data(as_text=True))
    for client in (fn, strict):
        client.extensions["dynafed_fn"].events.flush(5)
    assert capture.events, "the success path sent events: they were searched too"
    capture.assert_clean()
