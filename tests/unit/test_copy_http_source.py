"""http(s) sources: the URL policy (dynafed_contract/urlpolicy.py) as the copy
function applies it, the address rules, stated checksums."""
from __future__ import annotations

import pytest

from dynafed_contract.addresses import is_forbidden_address
from dynafed_contract.urlpolicy import AllowList, UrlRefused, parse_http_url
from dynafed_runtime import errors
from functions.copy.http_source import _parse_stored, check_source

PREFIXES = ("https://data.example/pub/", "http://127.0.0.1", "https://mirror.example:8443/x")


def is_allowed(url: str, prefixes: tuple[str, ...]) -> bool:
    try:
        return AllowList.parse(prefixes).allows(parse_http_url(url))
    except UrlRefused:
        return False


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://data.example/pub/a/b.root", True),
    ("https://DATA.example/pub/a", True),
    ("https://data.example./pub/a", True),  # the trailing dot names the same host
    ("https://data.example/public/a", False),  # path prefix stops at a segment
    ("https://data.example/pub", False),
    ("http://data.example/pub/a", False),  # scheme
    ("https://data.example.evil.net/pub/a", False),  # host is not a string prefix
    ("https://data.example:444/pub/a", False),  # a prefix with a path and no port: the default port
    ("https://data.example:443/pub/a", True),
    ("http://127.0.0.1:8080/anything", True),  # no port in the prefix: any port
    ("http://127.0.0.1.nip.io/x", False),
    ("http://2130706433/x", True),  # inet_aton reads it as 127.0.0.1: so does the policy
    ("https://mirror.example:8443/x/y", True),
    ("https://mirror.example/x/y", False),  # the prefix names a port
    ("https://mirror.example:8443/xy", False),
    ("https://data.example/pub/../private/a", False),  # dot segments are resolved before matching
    ("https://data.example/pub/%2E%2e/private/a", False),
    ("https://data.example/pub/./a", True),  # ... and what remains is what is fetched
    ("https://data.example/pub/a..b", True),
    ("https://data.example/pub/..%2f..%2fprivate", False),  # an encoded separator hiding '..'
    ("http://127.0.0.1:@data.example/pub/x", False),  # userinfo: urllib3 would connect to data.example
    ("not a url", False),
])
def test_allow_list(url, allowed):
    assert is_allowed(url, PREFIXES) is allowed


def test_empty_allow_list_allows_nothing():
    assert is_allowed("https://data.example/pub/a", ()) is False


@pytest.mark.parametrize(("address", "forbidden"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
    ("169.254.169.254", True),  # cloud metadata
    ("100.64.0.1", True),  # shared address space
    ("0.0.0.0", True), ("224.0.0.1", True), ("255.255.255.255", True),
    ("::1", True), ("fe80::1", True), ("fc00::1", True), ("::", True), ("ff02::1", True),
    ("fec0::1", True), ("feff:ffff::1", True),  # deprecated site-local (RFC 3879): is_global says True
    ("::ffff:8.8.8.8", True),  # IPv4-mapped
    ("2002:0808:0808::1", True),  # 6to4
    ("8.8.8.8", False), ("2606:4700:4700::1111", False), ("188.184.21.108", False),
])
def test_address_rules(address, forbidden):
    assert is_forbidden_address(address) is forbidden


def test_check_source_refuses_loopback_unless_allowed():
    with pytest.raises(errors.SourceNotAllowed):
        check_source("http://127.0.0.1/x", PREFIXES, allow_private=False)
    target = check_source("http://127.0.0.1/x", PREFIXES, allow_private=True)
    assert (target.url, target.host_header) == ("http://127.0.0.1:80/x", "127.0.0.1")


def test_check_source_connects_to_the_address_it_checked():
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a rebinding resolver: asked once only
    target = check_source("https://data.example/pub/a?sig=1", PREFIXES, allow_private=False,
                          resolver=lambda host, port: next(answers))
    assert target.url == "https://93.184.216.34:443/pub/a?sig=1"
    assert (target.host_header, target.server_hostname) == ("data.example", "data.example")


def test_check_source_reports_unknown_hosts():
    with pytest.raises(errors.UpstreamUnavailable):
        check_source("https://data.example/pub/a", PREFIXES, allow_private=True, resolver=lambda h, p: [])


def test_stated_checksums_from_headers():
    stored = _parse_stored({"x-amz-meta-adler32": "A1B2C3", "X-Amz-Meta-Owner": "x",
                            "Digest": "md5=1B2M2Y8AsgTpgAmY7PhCfg==,sha-256=bogus!,crc32c=e3069283"})
    assert stored == {"adler32": "00a1b2c3", "md5": "d41d8cd98f00b204e9800998ecf8427e", "crc32c": "e3069283"}


@pytest.mark.parametrize("headers", [
    {"x-amz-meta-adler32": "a" * 320},  # the 320-character value that came back cut to 318
    {"x-amz-meta-adler32": "123456789"}, {"x-amz-meta-md5": "abc"}, {"x-amz-meta-sha1": "0" * 41},
    {"x-amz-meta-adler32": "0x1234"}, {"Digest": "adler32=" + "f" * 9}, {"Digest": "md5=AAAA"},
])
def test_stated_checksums_of_the_wrong_form_are_no_claim(headers):
    assert _parse_stored(headers) == {}
