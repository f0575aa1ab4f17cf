"""The runtime's sink transport (``dynafed_runtime.events.http_transport``)
against a real loopback HTTP server: one kept-alive connection for many
events, a fresh one when the sink closed the idle one, the sink's status
returned as is, connection failures raised to the emitter (which retries and
counts drops), and an https sink signed by a site CA trusted through the CA
bundle of dynafed_net.trust."""
from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynafed_net.trust import TrustSettings
from dynafed_runtime.events import http_transport
from tests.interop.helpers import free_port
from tests.interop.xrootd import ThrowawayCA


class Sink(http.server.ThreadingHTTPServer):
    """Records (client port: one per connection, path, headers, body) of every POST; answers ``status``."""

    daemon_threads = True

    def __init__(self, *, close_after_each: bool = False, drop_idle: bool = False) -> None:
        self.posts: list[tuple[int, str, dict[str, str], bytes]] = []
        self.status = 202
        self.close_after_each = close_after_each
        self.drop_idle = drop_idle
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.posts.append((self.client_address[1], self.path, dict(self.headers), body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                if sink.close_after_each:
                    self.send_header("Connection", "close")
                self.end_headers()
                if sink.drop_idle:
                    self.close_connection = True  # closes without a Connection: close header

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def serving(server: Sink) -> Iterator[Sink]:
    """``server`` answering on its own thread until the block ends."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with serving(Sink()) as server:
        yield server


HEADERS = {"ce-id": "1", "ce-type": "t", "ce-source": "/s", "ce-specversion": "1.0",
           "Content-Type": "application/json"}


def test_many_events_share_one_connection_and_arrive_whole(sink: Sink) -> None:
    send = http_transport()
    statuses = [send(f"{sink.url}/events?x=1", HEADERS, b'{"n": %d}' % i) for i in range(5)]
    assert statuses == [202] * 5
    assert [body for _, _, _, body in sink.posts] == [b'{"n": %d}' % i for i in range(5)]
    assert {path for _, path, _, _ in sink.posts} == {"/events?x=1"}
    assert sink.posts[0][2]["ce-id"] == "1"
    assert len({connection for connection, _, _, _ in sink.posts}) == 1


def test_the_sinks_status_is_returned_as_is(sink: Sink) -> None:
    send = http_transport()
    sink.status = 503
    assert send(sink.url, HEADERS, b"{}") == 503
    sink.status = 400
    assert send(sink.url, HEADERS, b"{}") == 400


def test_a_connection_the_sink_closes_is_reopened() -> None:
    with serving(Sink(close_after_each=True)) as server:
        send = http_transport()
        assert [send(server.url, HEADERS, b"{}") for _ in range(3)] == [202] * 3
        assert len(server.posts) == 3
        assert len({connection for connection, _, _, _ in server.posts}) == 3


def test_an_idle_connection_the_sink_dropped_silently_is_retried_once_on_a_fresh_one() -> None:
    """The sink closes each kept-alive connection after answering without
    saying so (an idle timeout); the next event finds it dead and goes out on a
    new connection, exactly once."""
    with serving(Sink(drop_idle=True)) as server:
        send = http_transport()
        assert [send(server.url, HEADERS, b'{"n": %d}' % i) for i in range(3)] == [202] * 3
        assert [body for _, _, _, body in server.posts] == [b'{"n": %d}' % i for i in range(3)]
        assert len({connection for connection, _, _, _ in server.posts}) == 3


def test_no_sink_listening_raises_to_the_emitter() -> None:
    send = http_transport()
    with pytest.raises(OSError):
        send(f"http://127.0.0.1:{free_port()}/", HEADERS, b"{}")


def test_an_https_sink_signed_by_a_site_ca_needs_the_trust_bundle(tmp_path: Path) -> None:
    ca = ThrowawayCA.create(tmp_path / "ca")
    server = Sink()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca.server_cert, ca.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    url = f"https://localhost:{server.server_address[1]}/"
    with serving(server):
        with pytest.raises(ssl.SSLError):
            http_transport()(url, HEADERS, b"{}")
        trusted = TrustSettings(ca_bundle=ca.bundle).verify()
        assert http_transport(trusted)(url, HEADERS, b"{}") == 202
