"""Credentials that travel with a URL source (``headers``, ``x509``) reach
that URL's host and nothing else: not a host a redirect points to, not the
response, the DEBUG logs (with tracebacks) or the CloudEvents, on the success
path and the error paths, nor the metrics; the X.509 credential's temporary file is gone
after the copy, whatever the outcome."""
from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from dynafed_runtime.config import Config
from functions.copy.app import create_app
from tests.faults.httpsource import StaticHttpSource
from tests.interop.xrootd import ThrowawayCA
from tests.security.canary import AUTH_TOKEN, Capture, canary_store, capture_logs
from tests.security.test_secrets import _ctx

STORE = canary_store(None)
BUCKET = "dest"
DATA = b"credentials travel with the url only\n" * 2000


@pytest.fixture(scope="module")
def credential(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(PEM certificate + key, a line of the key that must never be shown)."""
    ca = ThrowawayCA.create(tmp_path_factory.mktemp("ca"))
    key = ca.client_key.read_text()
    return ca.client_cert.read_text() + key, key.splitlines()[3]


def app(s3: Any, capture: Capture, sources: str) -> Any:
    env = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}}), "DYNAFED_FN_HTTP_SOURCES": sources,
           "DYNAFED_FN_ALLOW_PRIVATE_SOURCES": "1", "DYNAFED_FN_LOG_LEVEL": "DEBUG",
           "DYNAFED_FN_RETRIES": "1", "K_SINK": "http://127.0.0.1:9/"}
    return create_app(Config.from_env(env, function="copy"), s3=lambda store: s3, sink_transport=capture.sink)


def _credential_files() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "dynafed-fn-x509-*")))


def test_source_credentials_reach_its_host_only_and_are_never_shown(s3: Any, credential: tuple[str, str]) -> None:
    pem, key_line = credential
    capture = Capture()
    before = _credential_files()
    with StaticHttpSource() as site, StaticHttpSource() as elsewhere:
        site.put("/b/good", DATA)
        elsewhere.put("/b/stolen", DATA)
        site.redirect("/b/moved", f"{elsewhere.url}/b/stolen")
        fn = app(s3, capture, f"{site.url},{elsewhere.url}")
        cases = [("/b/good", 200), ("/b/missing", 404), ("/b/moved", 502)]
        with _ctx(capture_logs(capture, "copy")):
            for i, (path, status) in enumerate(cases):
                for accept in ("application/json", "application/x-ndjson"):
                    source = {"url": f"{site.url}{path}", "x509": pem,
                              "headers": {"Authorization": f"Bearer {AUTH_TOKEN}", "X-Site-Token": AUTH_TOKEN}}
                    response = fn.test_client().post(
                        "/", json={"source": source, "destination": {"bucket": "dest", "key": f"o{i}{accept[-4:]}"},
                                   "overwrite": True}, headers={"Accept": accept})
                    capture.response(response)
                    if accept == "application/json":
                        assert response.status_code == status, (path, response.get_data(as_text=True))
        fn.extensions["dynafed_fn"].events.flush(5)
        capture.response(fn.test_client().get("/metrics"))  # metrics are searched too
        sent = [headers for method, path, headers in site.requests]
        redirected = list(elsewhere.requests)
    assert sent, "the source was asked"
    assert all({k.lower(): v for k, v in h.items()}.get("authorization") == f"Bearer {AUTH_TOKEN}" for h in sent)
    assert not redirected, f"a request followed the redirect to another host: {redirected}"
    assert capture.events, "events were searched too"
    capture.assert_clean()
    assert key_line not in capture.all_text()
    assert s3.get_object(Bucket="dest", Key="o0json")["Body"].read() == DATA
    assert _credential_files() == before, "the X.509 credential's temporary file was left behind"


@pytest.mark.parametrize("source, message", [
    ({"headers": {"Host": "evil.example"}}, "set by the copy function itself"),
    ({"headers": {"Range": "bytes=0-"}}, "set by the copy function itself"),
    ({"headers": {"Bad Name": "x"}}, "is not an HTTP token"),
    ({"headers": {"Authorization": f"Bearer {AUTH_TOKEN}\r\nX-Injected: 1"}}, "printable string"),
    ({"x509": f"not a pem {AUTH_TOKEN}"}, "PEM certificate"),
], ids=["host", "range", "name", "crlf", "x509"])
def test_bad_source_credentials_are_refused_without_echo(s3: Any, source: dict[str, Any], message: str) -> None:
    capture = Capture()
    fn = app(s3, capture, "http://127.0.0.1")
    response = fn.test_client().post("/", json={"source": {"url": "http://127.0.0.1:9/b/k", **source},
                                                "destination": {"bucket": "dest", "key": "k"}})
    capture.response(response)
    assert response.status_code == 400
    assert response.get_json()["code"] == "INVALID_REQUEST"
    assert message in response.get_json()["detail"]
    capture.assert_clean()


def test_unreadable_x509_proxy_is_a_usage_error_of_the_hook(tmp_path: Path) -> None:
    """The filepull hook reads argv[4] (Dynafed's delegated proxy path) and
    fails with the usage status when it cannot, naming neither content nor token."""
    from dynafed_client.hooks import exitcodes
    from dynafed_client.hooks.argv import parse_hook_argv
    from dynafed_client.hooks.transfer import HookFailure, source_credentials

    proxy = tmp_path / "x509up_u1000"
    proxy.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    args = parse_hook_argv(["1", "adler32", "https://h/f", "/fed/f", str(proxy), f"Bearer {AUTH_TOKEN}"])
    headers, pem = source_credentials(args)
    assert headers == {"Authorization": f"Bearer {AUTH_TOKEN}"}
    assert pem == proxy.read_text()
    assert source_credentials(parse_hook_argv(["0", "<nochecksumtype>", "https://h/f", "/fed/f", "", ""])) \
        == ({}, None)
    with pytest.raises(HookFailure) as failure:
        source_credentials(parse_hook_argv(["1", "adler32", "https://h/f", "/fed/f", str(tmp_path / "none"),
                                            f"Bearer {AUTH_TOKEN}"]))
    assert failure.value.status == exitcodes.USAGE
    assert AUTH_TOKEN not in failure.value.message
