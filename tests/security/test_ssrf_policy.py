"""The one URL policy (dynafed_contract/urlpolicy.py) and its two transports
(dynafed_net/pinned_http.py for the functions, dynafed_net/pinned_http.py
for the gateway: the client may import only the contract, and the contract
does no I/O), under the socket tripwire.

* the parser reads a URL as urllib3 will send it (userinfo refused; dot
  segments removed; legacy IPv4 spellings as inet_aton reads them), so the
  allow-list and the address check judge what is fetched;
* the allow-list matches parsed parts, never a string prefix;
* both transports connect to the checked address with the name in Host (and
  TLS SNI / certificate check), ignore environment proxies, and are the same
  code.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from urllib3.util import parse_url

from dynafed_contract.addresses import is_forbidden_address
from dynafed_contract.errors import ErrorCode
from dynafed_contract.urlpolicy import AllowList, UrlRefused, parse_http_url, pin
from dynafed_net import pinned_http
from tests.faults.httpsource import StaticHttpSource
from tests.tripwire import Tripwire

ROOT = Path(__file__).resolve().parents[2]
TRANSPORTS = [pytest.param(pinned_http, id="pinned_http")]


# --- the parser ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:@localhost:8080/x", "http://user@files.example/x", "http://a:b@files.example/x",
    "http://files.example\\@evil.net/x", "http://files.example/a/..%2fb", "http://files.example/a/%2e%2e%5cb",
    "http://[fe80::1%25eth0]/x", "http://files.example:0/x", "http://files.example:99999/x", "ftp://files.example/",
    "http:///x", "http://files..example/x", "http://files.example/a b", "http://files.example/\r\nX: y",
    "http://%66iles.example/x", "http://256.1.1.1.1/x", "http://0x1ffffffff/x",
])
def test_malformed_or_ambiguous_urls_are_refused_as_invalid(url: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        parse_http_url(url)
    assert caught.value.code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(("url", "host", "path"), [
    ("http://files.example/a/./b/../c", "files.example", "/a/c"),
    ("http://files.example/a/%2e%2E/b", "files.example", "/b"),
    ("http://files.example/../../x", "files.example", "/x"),
    ("http://FILES.Example./x", "files.example", "/x"),
    ("http://2130706433/x", "127.0.0.1", "/x"),
    ("http://0x7f.1/x", "127.0.0.1", "/x"),
    ("http://0177.0.0.1/x", "127.0.0.1", "/x"),
    ("http://[::FFFF:127.0.0.1]/x", "::ffff:7f00:1", "/x"),
    ("http://files.example", "files.example", "/"),
])
def test_the_parser_normalises_host_and_path(url: str, host: str, path: str) -> None:
    parsed = parse_http_url(url)
    assert (parsed.host, parsed.path) == (host, path)


@pytest.mark.parametrize("url", ["http://files.example/a/./b/../c", "http://files.example/../../x",
                                 "http://files.example/a/b/..", "http://files.example/a/./", "http://files.example/."])
def test_dot_segments_are_removed_as_urllib3_removes_them(url: str) -> None:
    """urllib3's ``parse_url`` (what requests sends) removes dot segments itself:
    the path the allow-list judged is the path that goes on the wire."""
    assert parse_http_url(url).path == (parse_url(url).path or "/")


def test_allow_list_entries_are_parsed_once_and_bad_ones_refused() -> None:
    with pytest.raises(ValueError):
        AllowList.parse(["ftp://files.example/"])
    with pytest.raises(ValueError):
        AllowList.parse(["http://files.example/?sig=1"])
    allow = AllowList.parse(["http://files.example/pub/", "https://mirror.example:8443"])
    assert allow.allows(parse_http_url("http://files.example/pub/x"))
    assert not allow.allows(parse_http_url("http://files.example/public/x"))
    assert not allow.allows(parse_http_url("http://files.example/pub/../secret"))
    assert not allow.allows(parse_http_url("https://mirror.example/x"))


@pytest.mark.parametrize("address", ["fec0::1", "fec0:ffff::1", "feff:ffff:ffff::1"])
def test_site_local_ipv6_is_forbidden(address: str) -> None:
    """RFC 3879 deprecated fec0::/10 but Python's ``is_global`` still counts it as global."""
    assert is_forbidden_address(address)


def test_pin_judges_every_answer_and_connects_to_the_first() -> None:
    url = parse_http_url("https://files.example/x?sig=1")
    with pytest.raises(UrlRefused) as caught:
        pin(url, ["93.184.216.34", "10.0.0.1"], allow_private=False)
    assert caught.value.code is ErrorCode.SOURCE_NOT_ALLOWED
    with pytest.raises(UrlRefused) as caught:
        pin(url, [], allow_private=False)
    assert caught.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    target = pin(url, ["93.184.216.34", "93.184.216.35"], allow_private=False)
    assert target.url == "https://93.184.216.34:443/x?sig=1"
    assert (target.host_header, target.server_hostname) == ("files.example", "files.example")


# --- the two transports ------------------------------------------------------------------------

def _code(path: Path) -> str:
    """The module's code without its docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tree.body = [node for node in tree.body
                 if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    return ast.dump(tree)


def test_both_transports_are_the_same_code() -> None:
    assert _code(ROOT / "dynafed_net/pinned_http.py") == _code(ROOT / "dynafed_net/pinned_http.py")


@pytest.fixture
def site() -> Iterator[StaticHttpSource]:
    with StaticHttpSource() as s:
        s.put("/x", b"payload")
        yield s


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_transport_connects_to_the_checked_address_with_the_name_in_host(
        transport: Any, site: StaticHttpSource, tripwire: Tripwire, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")
    port = int(site.url.rsplit(":", 1)[1])
    target = pin(parse_http_url(f"http://files.example:{port}/x"), ["127.0.0.1"], allow_private=True)
    session = transport.pinned_session(target)
    try:
        response = session.get(target.url, headers={"Host": target.host_header}, timeout=30)
    finally:
        session.close()
    assert response.content == b"payload"
    ((_, path, headers),) = site.requests
    assert (path, headers["host"]) == ("/x", f"files.example:{port}")
    assert tripwire.lookups == [] or set(tripwire.lookups) == {"127.0.0.1"}  # the name is never resolved again
    assert {address[0] for _, address in tripwire.connections} == {"127.0.0.1"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_transport_sends_sni_and_checks_the_certificate_for_the_name(transport: Any) -> None:
    import requests

    target = pin(parse_http_url("https://files.example/x"), ["93.184.216.34"], allow_private=False)
    session = transport.pinned_session(target)
    adapter = session.get_adapter(target.url)
    prepared = requests.Request("GET", target.url).prepare()
    _, pool_kwargs = adapter.build_connection_pool_key_attributes(prepared, True)
    assert pool_kwargs["server_hostname"] == "files.example" and pool_kwargs["assert_hostname"] == "files.example"
    assert session.trust_env is False
    session.close()
