"""Reading one HTTP/1.1 response off a raw socket, for the tests that send
bytes no HTTP client would (smuggling, malformed framing) and must see
exactly what came back."""
from __future__ import annotations

import dataclasses
import socket


@dataclasses.dataclass(frozen=True)
class RawResponse:
    #: the status line and the header lines, as sent (no final blank line)
    head: bytes
    #: read to its Content-Length (less when the peer closes first)
    body: bytes

    @property
    def status(self) -> int:
        return int(self.head.split(b"\r\n", 1)[0].split()[1])

    @property
    def headers(self) -> dict[str, str]:
        """Header names lowercased."""
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def read_response(sock: socket.socket) -> RawResponse:
    """The next response on ``sock``: its head, then its body to the length it declares."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    response = RawResponse(head, body)
    length = int(response.headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawResponse(head, body)
