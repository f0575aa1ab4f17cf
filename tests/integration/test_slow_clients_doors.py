"""Slow clients at the gateway and the event receiver (issue 13, class 2).

Both run under gunicorn with 64 threads (dynafed_client/serving.py); what
must hold is that real requests are answered while slow clients wait (the
stack's processes, as ``dynafed-fn stack up`` runs them), and that a stalled
connection does not live for ever. In process (``LocalServer``, these last
two tests) ``READ_TIMEOUT_S`` is socketserver's: ``StreamRequestHandler.setup``
applies it with ``settimeout``; ``http.server.BaseHTTPRequestHandler.handle_one_request``
closes the connection on ``TimeoutError``. Under gunicorn it is
``TimedThreadWorker``'s (tests/integration/test_serving.py).
"""
from __future__ import annotations

import socket
import uuid
from urllib.parse import urlsplit

import requests

from dynafed_client.events.server import EventReceiver
from dynafed_client.gateway.server import GatewayServer

SLOW_CLIENTS = 16
GUARD_S = 60.0  # failure guard only


def slow_client(url: str, path: str = "/") -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=GUARD_S)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: 100\r\n\r\n{{".encode())
    return sock


def test_the_gateway_answers_while_slow_clients_wait(stack, opened) -> None:
    assert stack.gateway, stack.skipped
    key = f"slow/{uuid.uuid4().hex[:8]}"
    stack.s3_client().put_object(Bucket="demo", Key=key, Body=b"Wikipedia")
    opened.extend(slow_client(stack.gateway, f"/default/demo/{key}") for _ in range(SLOW_CLIENTS))
    answer = requests.head(f"{stack.gateway}/default/demo/{key}", headers={"Want-Digest": "adler32"},
                           timeout=GUARD_S)
    assert answer.status_code == 200 and answer.headers["Digest"] == "adler32=11e60398"


def test_the_receiver_answers_while_slow_senders_wait(stack, opened) -> None:
    assert stack.events, stack.skipped
    opened.extend(slow_client(stack.events) for _ in range(SLOW_CLIENTS))
    assert requests.get(f"{stack.events}/healthz", timeout=GUARD_S).status_code == 200


def stalled_head(url: str) -> socket.socket:
    """A request head that never ends."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=GUARD_S)
    sock.sendall(f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode())
    return sock


def _closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_stalled_connection_is_closed_by_the_receiver(opened) -> None:
    with EventReceiver(read_timeout=0.5) as receiver:
        opened.extend((stalled_head(receiver.url), slow_client(receiver.url)))
        for sock in opened:
            _closed_by_server(sock)  # returns once the server closed it (the guard would raise)
        assert requests.get(f"{receiver.url}/healthz", timeout=GUARD_S).status_code == 200


def test_a_stalled_connection_is_closed_by_the_gateway(opened) -> None:
    def app(environ, start_response):  # the server is the door here, the app only reads the body
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with GatewayServer(app, read_timeout=0.5) as server:
        opened.extend((stalled_head(server.url), slow_client(server.url)))
        for sock in opened:
            _closed_by_server(sock)
        assert requests.get(server.url, timeout=GUARD_S).text == "ok"
