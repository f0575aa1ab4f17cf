"""http(s) sources: the allow-list, the address rules, stated checksums."""
from __future__ import annotations

import pytest

from functions.copy.http_source import _parse_stored, is_allowed, is_forbidden_address, resolve
from functions.runtime import errors

PREFIXES = ("https://data.example/pub/", "http://127.0.0.1", "https://mirror.example:8443/x")


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://data.example/pub/a/b.root", True),
    ("https://DATA.example/pub/a", True),
    ("https://data.example/public/a", False),  # path prefix stops at a segment
    ("https://data.example/pub", False),
    ("http://data.example/pub/a", False),  # scheme
    ("https://data.example.evil.net/pub/a", False),  # host is not a string prefix
    ("https://data.example:444/pub/a", False),  # a prefix with a path and no port: the default port
    ("http://127.0.0.1:8080/anything", True),  # no port in the prefix: any port
    ("http://127.0.0.1.nip.io/x", False),
    ("https://mirror.example:8443/x/y", True),
    ("https://mirror.example/x/y", False),  # the prefix names a port
    ("https://mirror.example:8443/xy", False),
    ("https://data.example/pub/../private/a", False),  # dot segments are resolved before sending
    ("https://data.example/pub/%2E%2e/private/a", False),
    ("https://data.example/pub/./a", False),
    ("https://data.example/pub/a..b", True),
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
    ("::ffff:8.8.8.8", True),  # IPv4-mapped
    ("2002:0808:0808::1", True),  # 6to4
    ("8.8.8.8", False), ("2606:4700:4700::1111", False), ("188.184.21.108", False),
])
def test_address_rules(address, forbidden):
    assert is_forbidden_address(address) is forbidden


def test_resolve_refuses_loopback_unless_allowed():
    with pytest.raises(errors.SourceNotAllowed):
        resolve("127.0.0.1", 80, allow_private=False)
    assert resolve("127.0.0.1", 80, allow_private=True) == "127.0.0.1"


def test_resolve_reports_unknown_hosts():
    with pytest.raises(errors.UpstreamUnavailable):
        resolve("no-such-host.invalid", 80, allow_private=True)


def test_stated_checksums_from_headers():
    stored = _parse_stored({"x-amz-meta-adler32": "A1B2C3", "X-Amz-Meta-Owner": "x",
                            "Digest": "md5=1B2M2Y8AsgTpgAmY7PhCfg==,sha-256=bogus!,crc32c=e3069283"})
    assert stored == {"adler32": "00a1b2c3", "md5": "d41d8cd98f00b204e9800998ecf8427e", "crc32c": "e3069283"}
