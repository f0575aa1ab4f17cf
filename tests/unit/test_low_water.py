"""The receive low-water mark (dynafed_runtime/low_water.py) on a real
loopback connection read through ``http.client``, as botocore's urllib3 does.

The mark must be raised while much of the body is to come, and be back at 1
before the body's last bytes and before the connection serves its next
response: a mark above what will still arrive would leave ``recv`` waiting
for bytes that never come (the socket timeout below turns such a hang into a
failure)."""
from __future__ import annotations

import fcntl
import http.client
import random
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dynafed_runtime import low_water
from dynafed_runtime.low_water import LowWater

SIZES = [3 * 1024 * 1024 + 12_345, 5 * 1024 * 1024, 200_000]


@pytest.fixture()
def server() -> Iterator[tuple[int, dict[str, bytes]]]:
    """A keep-alive HTTP/1.1 server on loopback: each ``GET /<size>`` answers
    that many random bytes at once, then waits for the next request."""
    bodies = {str(size): random.Random(size).randbytes(size) for size in SIZES}
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:  # closed before any client came
            return
        with conn, conn.makefile("rb") as reader:
            try:
                while not stop.is_set():
                    line = reader.readline()
                    if not line:
                        return
                    path = line.split()[1].decode().lstrip("/")
                    while reader.readline() not in (b"\r\n", b""):
                        pass
                    body = bodies[path]
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            except OSError:  # the client hung up mid-body
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], bodies
    finally:
        stop.set()
        listener.close()
        thread.join(10)


def get(port: int, path: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, socket.socket]:
    """One GET on a fresh connection: the connection, its response and its socket."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request("GET", path)
    response = connection.getresponse()
    assert connection.sock is not None
    return connection, response, connection.sock


def mark(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT)


def read_all(response: http.client.HTTPResponse, sock: socket.socket, *, level: int,
             read_size: int = 256 * 1024) -> tuple[bytes, set[int]]:
    marked = LowWater(response, level)
    out, marks = bytearray(), set()
    view = memoryview(bytearray(read_size))
    while True:
        count = marked.readinto(view)
        marks.add(mark(sock))
        if not count:
            break
        out += view[:count]
    marked.close()
    return bytes(out), marks


def test_the_mark_rises_mid_body_and_is_1_for_its_tail_and_the_next_response(
        server: tuple[int, dict[str, bytes]]) -> None:
    port, bodies = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.connect()
    assert connection.sock is not None
    sock = connection.sock
    for size, read_size in [(size, read_size) for size in SIZES for read_size in (256 * 1024, 8 * 1024 * 1024)]:
        # six responses on one connection; reads of 256 KiB, and reads larger
        # than the whole body (http.client loops on the socket within one)
        connection.request("GET", f"/{size}")
        response = connection.getresponse()
        data, marks = read_all(response, sock, level=256 * 1024, read_size=read_size)
        assert data == bodies[str(size)]
        if size >= 256 * 1024 + low_water.MARGIN:
            assert 256 * 1024 in marks  # raised while the body streamed
        else:
            assert marks == {1}  # a small body never raises it
        assert mark(sock) == 1
    connection.close()


def test_a_reader_stopping_mid_body_puts_the_mark_back(server: tuple[int, dict[str, bytes]]) -> None:
    """``close`` before the end (a reader giving up on a range) resets the mark too."""
    connection, response, sock = get(server[0], f"/{5 * 1024 * 1024}")
    marked = LowWater(response, 256 * 1024)
    view = memoryview(bytearray(1024 * 1024))
    assert marked.readinto(view) == len(view)
    assert mark(sock) == 256 * 1024
    marked.close()
    assert mark(sock) == 1
    connection.close()


def test_level_1_or_a_socket_that_is_not_plain_tcp_is_left_alone(server: tuple[int, dict[str, bytes]]) -> None:
    port, bodies = server
    connection, response, sock = get(port, f"/{SIZES[0]}")
    data, marks = read_all(response, sock, level=1)
    assert data == bodies[str(SIZES[0])] and marks == {1}
    connection.close()

    class NotASocketResponse:
        fp = None
    assert low_water._plain_socket(NotASocketResponse()) is None  # type: ignore[arg-type]


def _queued(sock: socket.socket, request: int) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0]


def wait_until(condition: Callable[[], bool], what: str, bound: float = 20.0) -> None:
    """Poll a state (a bound against a hang, not a timing assertion)."""
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.001)


@pytest.mark.parametrize("read_size", [256 * 1024, 8 * 1024 * 1024])
def test_a_tail_sent_only_once_the_reader_drained_the_rest_is_read(read_size: int) -> None:
    """The hazard itself: the body's last 100 KiB (less than the mark) leave
    the server only once the reader has consumed everything before them and
    waits in ``recv``. A read still under the mark then would wait for bytes
    that never come; so the mark is 1 by then, even within one read asking
    for the whole body (the socket timeout turns a hang into a failure)."""
    size, tail = 3 * 1024 * 1024, 100 * 1024
    body = random.Random(3).randbytes(size)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=20)
    server, _ = listener.accept()
    listener.close()
    with client, server:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
        server.sendall(head + body[:-tail])

        def send_tail() -> None:
            # everything sent so far is in the client's queue (SIOCOUTQ 0) and read from it (FIONREAD 0)
            wait_until(lambda: _queued(server, termios.TIOCOUTQ) == 0 and _queued(client, termios.FIONREAD) == 0,
                       "the reader drained what was sent")
            server.sendall(body[-tail:])

        sender = threading.Thread(target=send_tail, daemon=True)
        response = http.client.HTTPResponse(client)
        response.begin()
        sender.start()
        data, _ = read_all(response, client, level=256 * 1024, read_size=read_size)
        sender.join(20)
        assert data == body
