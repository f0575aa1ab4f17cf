"""The tripwire itself: it refuses non-loopback connections before any packet
leaves, fakes DNS, and lets loopback through. If these fail, every test that
relies on it proves nothing."""
from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from tests.tripwire import ForbiddenConnection, Tripwire, is_loopback


@pytest.fixture
def loopback_server() -> Iterator[str]:
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("169.254.169.254", False), ("::ffff:10.0.0.1", False), ("0.0.0.0", False),
    ("93.184.216.34", False), ("fe80::1", False), ("localhost", False),  # a name is not an address
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_is_allowed(tripwire: Tripwire, loopback_server: str) -> None:
    assert requests.get(loopback_server, timeout=5).status_code == 204
    assert requests.get(loopback_server.replace("127.0.0.1", "localhost"), timeout=5).status_code == 204
    assert not tripwire.tripped


@pytest.mark.parametrize("address", [("10.1.2.3", 80), ("169.254.169.254", 80), ("0.0.0.0", 9)])
def test_raw_connect_to_non_loopback_is_refused_and_recorded(tripwire: Tripwire, address: tuple[str, int]) -> None:
    tripwire.expect_attempts()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(ForbiddenConnection):
        sock.connect(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(ForbiddenConnection):
        sock.connect_ex(address)
    assert [a.address for a in tripwire.attempts] == [address, address]


def test_ipv6_and_mapped_addresses(tripwire: Tripwire) -> None:
    tripwire.expect_attempts()
    for address in (("2001:db8::1", 443, 0, 0), ("::ffff:10.0.0.1", 443, 0, 0)):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock, pytest.raises(ForbiddenConnection):
            sock.connect(address)
    assert len(tripwire.attempts) == 2


def test_requests_to_a_public_name_never_reaches_the_network(tripwire: Tripwire) -> None:
    tripwire.expect_attempts()
    tripwire.resolve("files.example.org", "93.184.216.34")
    with pytest.raises(requests.ConnectionError):
        requests.get("http://files.example.org/x", timeout=5)
    assert [a.address[0] for a in tripwire.attempts] == ["93.184.216.34"]
    assert "files.example.org" in tripwire.lookups


def test_unknown_names_do_not_resolve(tripwire: Tripwire) -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("nowhere.example.net", 80)
    with pytest.raises(requests.ConnectionError):
        requests.get("http://nowhere.example.net/", timeout=5)
    assert not tripwire.tripped  # no address, so no connection attempt at all


def test_answers_in_sequence_model_rebinding(tripwire: Tripwire) -> None:
    tripwire.resolve("rebind.example", "93.184.216.34", "127.0.0.1")
    first = {ai[4][0] for ai in socket.getaddrinfo("rebind.example", 80)}
    second = {ai[4][0] for ai in socket.getaddrinfo("rebind.example", 80)}
    third = {ai[4][0] for ai in socket.getaddrinfo("rebind.example", 80)}
    assert (first, second, third) == ({"93.184.216.34"}, {"127.0.0.1"}, {"127.0.0.1"})


def test_a_swallowed_attempt_still_fails_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code that catches the refusal (as a retrying client would) cannot hide it."""
    wire = Tripwire()
    wire.install(monkeypatch)
    try:
        socket.create_connection(("10.9.9.9", 80), timeout=1)
    except OSError:
        pass
    with pytest.raises(pytest.fail.Exception, match=r"non-loopback.*10\.9\.9\.9"):
        wire.verdict()
    wire.expect_attempts()
    wire.verdict()  # expected attempts pass
