"""Hostile and careless input at the client-side doors — the gateway, the
event receiver and the hooks — under the socket tripwire (issue 13).

* class 1 — the gateway's pre-flight applies the one URL policy
  (dynafed_contract/urlpolicy.py) before contacting anything: userinfo
  (``http://127.0.0.1:@localhost:P/x`` used to pass an ``http://127.0.0.1``
  string prefix and reach ``localhost`` with Basic auth and the client's
  TransferHeaders), dot segments escaping an allowed path, DNS rebinding,
  site-local ``fec0::/10``, legacy IPv4 spellings; the hooks refuse the same
  URLs before asking the copy function;
* class 6 — bucket and key names no store takes are a 400 at the gateway and
  a usage error in the hooks, before any storage call or copy;
* class 7 — the receiver answers a 5000-digit integer literal and an
  over-long chunked body with 400/413, never a 500 or a truncated parse;
* class 9 — the gateway's DEBUG log carries no SigV4 ``Authorization``
  header; the receiver closes the connection after a 413 (the unread body
  must not be read as the next request).
"""
from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from werkzeug.test import Client as WsgiClient

from dynafed_client import logredact
from dynafed_client.events import EventReceiver
from dynafed_client.events.app import MAX_BODY
from dynafed_client.gateway import GatewayApp, GatewayConfig, Storage
from dynafed_client.hooks import exitcodes
from dynafed_client.hooks.runner import main_for
from dynafed_client.mapping import StoreMapping
from dynafed_client.progress import CopyProgress
from dynafed_client.results import CopyResult
from dynafed_contract.checksum import ObjectRef
from tests.faults.httpsource import StaticHttpSource
from tests.raw_http import read_response
from tests.tripwire import Tripwire

ACCESS_KEY = "AKIDHOSTILEDOORS"
SECRET_KEY = "doors-secret-key-value"
STORES = {"default": {"endpoint_url": "https://s3.amazonaws.com", "access_key_id": ACCESS_KEY,
                      "secret_access_key": SECRET_KEY}}
PUBLIC = "93.184.216.34"  # a global address: the tripwire refuses it too, nothing is sent
HUGE_INT = "9" * 5000


class NoCopies:
    """A dispatcher that must never be asked for anything."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def checksum(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("checksum", args))
        raise AssertionError("the gateway asked for a checksum")

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("copy", args))
        raise AssertionError("the gateway started a copy")


@pytest.fixture
def s3(tripwire: Tripwire) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY)
        client.create_bucket(Bucket="demo")
        client.put_object(Bucket="demo", Key="k", Body=b"payload")
        yield client


@pytest.fixture
def site() -> Iterator[StaticHttpSource]:
    with StaticHttpSource() as s:
        s.put("/files/data.bin", b"payload")
        s.put("/secret/key", b"not for copying")
        s.put("/x", b"another host's object")
        yield s


def gateway(s3: Any, http_sources: tuple[str, ...], *, allow_private: bool = False,
            dispatcher: Any = None) -> tuple[WsgiClient, Any]:
    """The real gateway app with its real pre-flight (no injected probe)."""
    dispatcher = dispatcher or NoCopies()
    config = GatewayConfig(stores=STORES, http_sources=http_sources, allow_private_sources=allow_private)
    app = GatewayApp(config, dispatcher, storage=Storage(STORES, client_factory=lambda _: s3))
    return WsgiClient(app), dispatcher


def copy_from(client: WsgiClient, source: str, **headers: str) -> Any:
    return client.open("/default/demo/out", method="COPY", headers={"Source": source, **headers})


# --- class 1: the gateway's URL policy ---------------------------------------------------

def test_gateway_userinfo_cannot_smuggle_another_host_past_the_allow_list(
        s3: Any, tripwire: Tripwire, site: StaticHttpSource) -> None:
    """``http://127.0.0.1:@localhost:P/x``: the string prefix ``http://127.0.0.1``
    matched, and urllib3 connected to ``localhost`` sending ``127.0.0.1:`` as Basic
    auth plus the TransferHeaders. Refused as malformed before any lookup."""
    port = site.url.rsplit(":", 1)[1]
    client, dispatcher = gateway(s3, ("http://127.0.0.1",), allow_private=True)
    response = copy_from(client, f"http://127.0.0.1:@localhost:{port}/x",
                         TransferHeaderAuthorization="Bearer client-token")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert site.requests == [] and tripwire.connections == [] and tripwire.lookups == []
    assert dispatcher.calls == []


@pytest.mark.parametrize("path", ["/files/../secret/key", "/files/%2e%2e/secret/key", "/files/..%2fsecret/key",
                                  "/files/./../secret/key"])
def test_gateway_dot_segments_cannot_escape_an_allowed_path(s3: Any, tripwire: Tripwire, site: StaticHttpSource,
                                                             path: str) -> None:
    client, dispatcher = gateway(s3, (f"{site.url}/files/",), allow_private=True)
    response = copy_from(client, site.url + path)
    assert response.status_code in (400, 403), response.get_data(as_text=True)
    assert [p for _, p, _ in site.requests if p.startswith("/secret")] == [] and site.requests == []
    assert dispatcher.calls == []


def test_gateway_allow_list_is_not_a_string_prefix(s3: Any, tripwire: Tripwire) -> None:
    tripwire.resolve("files.example.evil.net", PUBLIC)
    client, _ = gateway(s3, ("http://files.example",))
    assert copy_from(client, "http://files.example.evil.net/x").status_code == 403
    assert copy_from(client, "http://files.example:@evil.net/x").status_code == 400
    assert tripwire.connections == [] and tripwire.lookups == []


@pytest.mark.parametrize("address", ["fec0::1", "feff::1", "10.0.0.5", "169.254.169.254", "::ffff:127.0.0.1",
                                     "64:ff9b::a00:1", "127.0.0.1"])
def test_gateway_refuses_forbidden_addresses_without_connecting(s3: Any, tripwire: Tripwire, address: str) -> None:
    tripwire.resolve("files.example", address)
    client, _ = gateway(s3, ("http://files.example",))
    response = copy_from(client, "http://files.example/data.bin")
    assert response.status_code == 403, response.get_data(as_text=True)
    assert tripwire.connections == []


@pytest.mark.parametrize("url", ["http://2130706433/x", "http://0x7f000001/x", "http://0177.0.0.1/x",
                                 "http://127.1/x"])
def test_gateway_legacy_ipv4_spellings_are_the_address_they_name(s3: Any, tripwire: Tripwire, url: str) -> None:
    """inet_aton (and so getaddrinfo) reads ``2130706433`` as 127.0.0.1: so does the policy."""
    client, _ = gateway(s3, ("http://127.0.0.1",))
    response = copy_from(client, url)
    assert response.status_code == 403, response.get_data(as_text=True)
    assert tripwire.connections == []


def test_gateway_connects_to_the_address_it_checked(s3: Any, tripwire: Tripwire) -> None:
    """DNS rebinding: the first (public) answer is checked and connected to; the
    second (loopback) answer is never asked for."""
    tripwire.expect_attempts()  # the refused connection to the public address is the point
    tripwire.resolve("files.example", PUBLIC, "127.0.0.1")
    client, _ = gateway(s3, ("http://files.example",))
    response = copy_from(client, "http://files.example/data.bin")
    assert response.status_code == 502, response.get_data(as_text=True)
    assert tripwire.lookups.count("files.example") == 1
    assert {address[0] for _, address in tripwire.connections} == {PUBLIC}


def test_gateway_probe_sends_the_name_and_the_transfer_headers_to_the_checked_host_only(
        s3: Any, tripwire: Tripwire, site: StaticHttpSource) -> None:
    tripwire.resolve("files.example", "127.0.0.1")
    port = site.url.rsplit(":", 1)[1]

    class Started(NoCopies):
        def copy(self, source: Any, destination: Any, **kwargs: Any) -> CopyResult:
            self.calls.append(("copy", source))
            kwargs["on_progress"](CopyProgress("j", 7, 7))
            return CopyResult(job_id="j", status="completed", strategy="stream", bytes=7, checksums={},
                              verified=True)

    client, dispatcher = gateway(s3, (f"http://files.example:{port}",), allow_private=True, dispatcher=Started())
    response = copy_from(client, f"http://files.example:{port}/files/data.bin",
                         TransferHeaderAuthorization="Bearer client-token")
    assert response.status_code == 202, response.get_data(as_text=True)
    response.get_data()  # the marker stream (runs the recorded copy)
    ((method, path, headers),) = site.requests
    assert (path, headers["host"], headers["authorization"]) == ("/files/data.bin", f"files.example:{port}",
                                                                 "Bearer client-token")
    assert {address[0] for _, address in tripwire.connections} == {"127.0.0.1"}


# --- class 6: names at the gateway -------------------------------------------------------

@pytest.mark.parametrize("path", ["/default/demo%0A/k", "/default/Demo/k", "/default/de/k", "/default/de_mo/k",
                                  "/default/demo/../k", "/default/demo/a/./k", "/default/demo/a/.."])
@pytest.mark.parametrize("method", ["HEAD", "PROPFIND", "DELETE"])
def test_gateway_refuses_names_no_store_takes_before_any_storage_call(s3: Any, tripwire: Tripwire, path: str,
                                                                      method: str) -> None:
    calls: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    client, _ = gateway(s3, ())
    response = client.open(path, method=method)
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True))
    assert calls == []


def test_gateway_copy_between_our_own_objects_checks_both_names(s3: Any, tripwire: Tripwire) -> None:
    client, dispatcher = gateway(s3, ())
    response = client.open("/default/demo/out", method="COPY", headers={"Source": "http://localhost/default/demo/../k"})
    assert response.status_code in (400, 403), response.get_data(as_text=True)
    assert dispatcher.calls == []


# --- class 9: no credentials in the gateway's DEBUG log ----------------------------------------

def test_gateway_debug_log_has_no_sigv4_authorization(s3: Any, tripwire: Tripwire,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore logs each request's headers at DEBUG (botocore/endpoint.py,
    ``Endpoint._send_request``: "Sending http request: %s" with the prepared
    request, Authorization included) and the signature (botocore/auth.py)."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    for name in ("botocore", "boto3", "urllib3"):  # the functions' log setup quiets them process-wide
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    stream = io.StringIO()
    logredact.configure("DEBUG", stream, "%(name)s: %(message)s")  # what `dynafed-fn gateway` runs
    client, _ = gateway(s3, ())
    assert client.head("/default/demo/k").status_code == 200
    text = stream.getvalue()
    assert "Sending http request" in text and "Authorization" in text  # the line is there ...
    assert ACCESS_KEY not in text and "Signature=" not in text.replace("Signature=REDACTED", "")  # ... redacted
    assert SECRET_KEY not in text


# --- the event receiver ------------------------------------------------------------------------

@pytest.fixture
def receiver(tripwire: Tripwire) -> Iterator[EventReceiver]:
    with EventReceiver(port=0) as r:
        yield r


def _structured(data_literal: str) -> bytes:
    return (b'{"specversion": "1.0", "type": "ch.cern.dynafed.copy.progress", "source": "/t", "id": "1", '
            b'"subject": "j", "datacontenttype": "application/json", "data": {"bytes": ' + data_literal.encode()
            + b"}}")


def test_receiver_answers_a_huge_integer_literal_with_a_400(receiver: EventReceiver) -> None:
    ok = requests.post(receiver.url, data=_structured("1"), timeout=30,
                       headers={"Content-Type": "application/cloudevents+json"})
    assert ok.status_code == 202, ok.text
    answer = requests.post(receiver.url, data=_structured(HUGE_INT), timeout=30,
                           headers={"Content-Type": "application/cloudevents+json"})
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_REQUEST", answer.text
    binary = requests.post(receiver.url, data=b'{"bytes": ' + HUGE_INT.encode() + b"}", timeout=30, headers={
        "ce-specversion": "1.0", "ce-type": "ch.cern.dynafed.copy.progress", "ce-source": "/t", "ce-id": "2",
        "Content-Type": "application/json"})
    # the SDK would keep undecodable JSON data as a string: refused like the structured form
    assert binary.status_code == 400 and binary.json()["code"] == "INVALID_REQUEST", binary.text


def test_receiver_refuses_an_over_long_chunked_body_instead_of_parsing_a_cut(receiver: EventReceiver) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"specversion": "1.0", "type": "t", "source": "/t", "id": "big", "data": "'
        for _ in range(MAX_BODY // (64 * 1024) + 1):
            yield b"x" * (64 * 1024)
        yield b'"}'

    answer = requests.post(receiver.url, data=chunks(), timeout=60,
                           headers={"Content-Type": "application/cloudevents+json"})
    assert answer.status_code == 413, answer.text


def test_receiver_closes_the_connection_after_a_413(receiver: EventReceiver) -> None:
    """The declared body is not read: keeping the connection would make its
    bytes the next request line (a desync an attacker can shape)."""
    with socket.create_connection((receiver.host, receiver.port), timeout=30) as sock:
        smuggled = b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\n"
                     + f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode() + smuggled)
        head = read_response(sock).head
        assert head.startswith(b"HTTP/1.1 413"), head
        assert b"connection: close" in head.lower()
        assert sock.recv(65536) == b"", "the server kept the connection open after a 413"


# --- the hooks ---------------------------------------------------------------------------------

MAPPING = StoreMapping.from_dict({"prefix": [{"url": "/fed/archive/", "store": "archive", "bucket": "archive"},
                                            {"url": "/fed/bad/", "store": "archive", "bucket": "Bad_Bucket"}]})


class RecordingClient:
    def __init__(self) -> None:
        self.copies: list[Any] = []

    def copy(self, source: Any, destination: ObjectRef, **kwargs: Any) -> CopyResult:
        self.copies.append((source, destination))
        return CopyResult(job_id="j", status="completed", strategy="stream", bytes=1, checksums={}, verified=True)

    def checksum(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not expected")


@pytest.fixture
def hook_env(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(MAPPING.to_json()))
    return {"DYNAFED_FN_MAPPING": str(path)}


def run_pull(source: str, destination: str, env: dict[str, str]) -> tuple[int, RecordingClient, str]:
    client, out, err = RecordingClient(), io.StringIO(), io.StringIO()
    status = main_for("pull", ["0", "<nochecksumtype>", source, destination, "", ""], env=env, client=client,
                      out=out, err=err)
    return status, client, err.getvalue()


@pytest.mark.parametrize("source", ["http://127.0.0.1:@localhost:8080/x", "http://user:pw@files.example/x",
                                    "http://files.example/a/..%2fb", "http://files.example\\@evil.net/x",
                                    "http://[fe80::1%25eth0]/x"])
def test_hooks_refuse_what_the_url_policy_refuses_before_asking_for_a_copy(
        tripwire: Tripwire, hook_env: dict[str, str], source: str) -> None:
    status, client, err = run_pull(source, "/fed/archive/f", hook_env)
    assert status == exitcodes.USAGE, err
    assert client.copies == [] and tripwire.connections == []


@pytest.mark.parametrize("destination", ["/fed/archive/../x", "/fed/archive/a/./b", "/fed/archive/..",
                                         "/fed/bad/k"])
def test_hooks_refuse_names_no_store_takes(tripwire: Tripwire, hook_env: dict[str, str], destination: str) -> None:
    status, client, err = run_pull("https://files.example/f", destination, hook_env)
    assert status == exitcodes.USAGE, err
    assert client.copies == []


def test_hooks_baseline_a_valid_pull_is_asked_for(tripwire: Tripwire, hook_env: dict[str, str]) -> None:
    status, client, err = run_pull("https://files.example/f", "/fed/archive/run/f", hook_env)
    assert status == exitcodes.OK, err
    assert [destination for _, destination in client.copies] == [ObjectRef("archive", "archive", "run/f")]





@pytest.mark.parametrize(("stored", "expected"), [("a" * 320, None), ("123456789", None), ("0x12", None),
                                                  ("1", "00000001"), ("0BDD02EB", "0bdd02eb")])
def test_hooks_read_no_stored_value_of_the_wrong_form(s3: Any, stored: str, expected: str | None) -> None:
    """Class 8: ``checksum put`` keeps a stored value and answers "already stored":
    a garbled one is no claim, so it neither answers nor blocks the correct one."""
    from dynafed_client.hooks.metadata import read_stored

    s3.put_object(Bucket="demo", Key="garbled", Body=b"payload", Metadata={"adler32": stored})
    assert read_stored(s3, "demo", "garbled", "adler32") == expected


def test_receiver_app_asks_its_server_to_close_after_a_413(tripwire: Tripwire) -> None:
    """Werkzeug's own server closes every connection (werkzeug/serving.py, ``run_wsgi``:
    "Always close the connection"); the app says so itself, for any server it runs under."""
    from dynafed_client.events.app import create_app
    from dynafed_client.events.hub import EventHub

    client = WsgiClient(create_app(EventHub()))
    response = client.post("/", data=b"x" * (MAX_BODY + 1), headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 413 and response.headers.get("Connection") == "close"
