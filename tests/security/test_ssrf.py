"""SSRF: the copy function (in-process, WSGI) fetches http(s) sources only
from the allow-list, never from a loopback / private / link-local / shared /
multicast / unspecified / IPv4-mapped (or 6to4, NAT64-embedded) address unless
explicitly allowed, follows no redirect and ignores environment proxies. The
socket tripwire (tests/tripwire.py) proves that no connection to a forbidden
address was even *attempted*; fake DNS answers model hostile resolution and
DNS rebinding. No packet leaves the host.

Stores are the only S3 endpoints: a request naming an endpoint is refused.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dynafed_runtime.config import Config
from functions.copy.app import create_app
from tests.faults.httpsource import StaticHttpSource
from tests.tripwire import Tripwire

STORE = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "AKIDSSRF", "secret_access_key": "ssrf-secret"}
BUCKET = "dest"
PUBLIC = "93.184.216.34"  # a global address: the tripwire refuses it too, nothing is sent


@pytest.fixture
def site() -> Iterator[StaticHttpSource]:
    with StaticHttpSource() as s:
        s.put("/files/data.bin", b"payload" * 100)
        yield s


def copy_app(s3: Any, sources: str, *, allow_private: bool = False) -> Any:
    env = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}}), "DYNAFED_FN_HTTP_SOURCES": sources,
           "DYNAFED_FN_ALLOW_PRIVATE_SOURCES": "1" if allow_private else "0"}
    return create_app(Config.from_env(env, function="copy"), s3=lambda store: s3,
                      sink_transport=lambda *a: 202).test_client()


def copy(client: Any, source: dict[str, Any], key: str = "out") -> Any:
    return client.post("/", json={"source": source, "destination": {"bucket": "dest", "key": key}})


def refused(response: Any, status: int = 403, code: str = "SOURCE_NOT_ALLOWED") -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == code, body
    return body


#: a bare ``scheme://host`` allows any port of that host (the stack's ``http://127.0.0.1``);
#: a prefix with a port or a path allows only that port and path
ALLOWED = "http://files.example,https://files.example,http://files.example:8080/pub/"
STRICT = "http://files.example:80/pub/,https://files.example:8443/data/"


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://other.example/files/data.bin", ALLOWED),
    ("http://files.example.evil.net/x", ALLOWED),  # a lookalike host
    ("http://evil.net/files.example/x", ALLOWED),
    ("http://evil.net#@files.example/x", ALLOWED),
    ("http://files.example:8081/pub/x", STRICT),  # another port
    ("http://files.example/pub/x", "https://files.example:8443/pub/"),  # another scheme
    ("https://files.example:8443/database/x", STRICT),  # a path prefix stops at a segment
    ("http://files.example/public/x", STRICT),
])
def test_urls_outside_the_allow_list_are_refused_before_any_lookup(s3: Any, tripwire: Tripwire, url: str,
                                                                    allowed: str) -> None:
    client = copy_app(s3, allowed)
    refused(copy(client, {"url": url}))
    assert tripwire.lookups == [] and tripwire.connections == []


@pytest.mark.parametrize("url", [
    "http://files.example@evil.net/x",  # userinfo trick: the host is evil.net
    "http://evil.net\\@files.example/x",  # parsers disagree: urlsplit sees files.example, urllib3 evil.net
    "http://user:pw@files.example/x",
    "http://files.example:@evil.net/x",  # an allowed host's name as userinfo: the host is evil.net
    "http://127.0.0.1:@localhost:8080/x",  # what passed the gateway's string prefix "http://127.0.0.1"
    "http://files.example/a/..%2f..%2fsecret",  # a dot segment behind an encoded separator
    "http://[fe80::1%25eth0]/x",  # a zone id
])
def test_urls_with_credentials_are_refused(s3: Any, tripwire: Tripwire, url: str) -> None:
    refused(copy(copy_app(s3, ALLOWED), {"url": url}), 400, "INVALID_REQUEST")
    assert tripwire.lookups == [] and tripwire.connections == []


def test_dot_segments_cannot_escape_an_allowed_path(s3: Any, tripwire: Tripwire, site: StaticHttpSource) -> None:
    site.put("/secret/key", b"not for copying")
    allowed = f"{site.url}/files/"
    response = copy(copy_app(s3, allowed, allow_private=True), {"url": f"{site.url}/files/../secret/key"})
    assert [path for _, path, _ in site.requests if path.startswith("/secret")] == []
    refused(response)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://files.example/x", "gopher://files.example/x",
                                 "dict://files.example:11211/", "javascript:alert(1)", "//files.example/x",
                                 "files.example/x", "http:///x"])
def test_non_http_schemes_are_invalid(s3: Any, tripwire: Tripwire, url: str) -> None:
    refused(copy(copy_app(s3, ALLOWED), {"url": url}), 400, "INVALID_REQUEST")
    assert tripwire.connections == []


FORBIDDEN = [
    "127.0.0.1", "127.1.2.3", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "240.0.0.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "fec0::1", "feff:ffff::1",  # deprecated site-local fec0::/10 (RFC 3879): Python's is_global says True
    "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:93.184.216.34",  # mapped: never
    "2002:a00:1::1",  # 6to4 around 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_allowed_names_resolving_to_forbidden_addresses_are_refused_without_a_connection(
        s3: Any, tripwire: Tripwire, address: str) -> None:
    tripwire.resolve("files.example", address)
    body = refused(copy(copy_app(s3, ALLOWED), {"url": "http://files.example/data.bin"}))
    assert "non-public" in body["detail"]
    assert tripwire.lookups == ["files.example"]
    assert tripwire.connections == []  # not even a loopback one


def test_one_forbidden_answer_among_public_ones_is_enough(s3: Any, tripwire: Tripwire) -> None:
    tripwire.resolve("files.example", [PUBLIC, "10.0.0.5"])
    refused(copy(copy_app(s3, ALLOWED), {"url": "http://files.example/data.bin"}))
    assert tripwire.connections == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:a00:1]/x",
                                 "http://2130706433/x", "http://0x7f000001/x", "http://[::1]/x", "http://0177.1/x",
                                 "http://[fec0::1]/x"])
def test_ip_literals_on_the_allow_list_are_still_checked(s3: Any, tripwire: Tripwire, url: str) -> None:
    """Legacy IPv4 spellings are read as inet_aton reads them (so ``2130706433`` is
    127.0.0.1 for the allow-list and the address check alike): never a connection."""
    allowed = ("http://169.254.169.254,http://[::ffff:a00:1],http://2130706433,http://0x7f000001,http://[::1],"
               "http://127.0.0.1,http://[fec0::1]")
    response = copy(copy_app(s3, allowed), {"url": url})
    refused(response)
    assert "non-public" in response.get_json()["detail"]
    assert tripwire.connections == []


def test_dns_rebinding_cannot_redirect_the_connection(s3: Any, tripwire: Tripwire) -> None:
    """The first answer is checked and is the address connected to: a second,
    private answer is never asked for nor used."""
    tripwire.expect_attempts()  # the (refused) connection to the public address
    tripwire.resolve("files.example", PUBLIC, "127.0.0.1")
    response = copy(copy_app(s3, ALLOWED), {"url": "http://files.example/data.bin"})
    refused(response, 503, "UPSTREAM_UNAVAILABLE")  # the tripwire refused the public connection
    assert [name for name in tripwire.lookups if name != PUBLIC] == ["files.example"]  # resolved once
    assert {address[0] for _, address in tripwire.connections} == {PUBLIC}


def test_loopback_needs_the_explicit_switch(s3: Any, tripwire: Tripwire, site: StaticHttpSource) -> None:
    url = f"{site.url}/files/data.bin"
    refused(copy(copy_app(s3, site.url), {"url": url}))
    assert site.requests == [] and tripwire.connections == []
    response = copy(copy_app(s3, site.url, allow_private=True), {"url": url})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert s3.get_object(Bucket="dest", Key="out")["Body"].read() == b"payload" * 100


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/iam", "http://10.0.0.5/x",
                                    "/files/data.bin", "http://files.example/x"])
def test_redirects_are_never_followed(s3: Any, tripwire: Tripwire, site: StaticHttpSource, target: str) -> None:
    tripwire.resolve("files.example", PUBLIC)
    site.redirect("/files/moved", target)
    body = refused(copy(copy_app(s3, site.url, allow_private=True), {"url": f"{site.url}/files/moved"}),
                   502, "UPSTREAM_ERROR")
    assert "redirect" in body["detail"]
    assert [path for _, path, _ in site.requests] == ["/files/moved"]  # the target was not fetched
    assert {address[0] for _, address in tripwire.connections} == {"127.0.0.1"}


def test_environment_proxies_are_ignored(s3: Any, tripwire: Tripwire, site: StaticHttpSource,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    response = copy(copy_app(s3, site.url, allow_private=True), {"url": f"{site.url}/files/data.bin"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert not tripwire.tripped  # nothing went to the "proxy"


@pytest.mark.parametrize("field", [{"endpoint_url": "http://169.254.169.254"}, {"endpoint": "http://10.0.0.5"},
                                   {"access_key_id": "AKIA"}, {"url": "http://files.example/x"}])
def test_requests_cannot_name_an_s3_endpoint_or_credentials(s3: Any, tripwire: Tripwire,
                                                            field: dict[str, str]) -> None:
    client = copy_app(s3, ALLOWED)
    source = {"store": "default", "bucket": "dest", "key": "k", **field}
    refused(copy(client, source), 400, "INVALID_REQUEST")
    refused(client.post("/", json={"source": {"store": "default", "bucket": "dest", "key": "k"},
                                   "destination": {"bucket": "dest", "key": "o", **field}}), 400, "INVALID_REQUEST")
    assert tripwire.connections == []


# --- the gateway's own pre-flight of an HTTP-TPC Source ------------------------------

class RecordingDispatcher:
    def __init__(self) -> None:
        self.copies: list[Any] = []

    def checksum(self, obj: Any, algorithms: Any, **_: Any) -> Any:
        raise AssertionError("not expected")

    def copy(self, source: Any, destination: Any, **kwargs: Any) -> Any:
        self.copies.append(source)
        raise AssertionError("not expected")


@pytest.mark.parametrize("address", ["10.0.0.5", "169.254.169.254", "::ffff:10.0.0.1"])
def test_gateway_copy_source_resolving_to_a_private_address_is_not_contacted(tripwire: Tripwire,
                                                                             address: str) -> None:
    from werkzeug.test import Client

    from dynafed_client.gateway.app import GatewayApp
    from dynafed_client.gateway.config import GatewayConfig

    tripwire.expect_attempts()  # judged below
    tripwire.resolve("files.example", address)
    dispatcher = RecordingDispatcher()
    config = GatewayConfig(stores={"default": {**STORE, "endpoint_url": "http://127.0.0.1:9"}},
                           http_sources=("http://files.example",))
    client = Client(GatewayApp(config, dispatcher))
    response = client.open("/default/dest/k", method="COPY", headers={"Source": "http://files.example/data.bin"})
    assert tripwire.connections == [], "the gateway connected to a private address on a client's behalf"
    assert response.status_code == 403, response.get_data(as_text=True)
    assert dispatcher.copies == []
