"""A loopback WebDAV PUT target that records what it is sent: the push
destination of copy tests (a stand-in for another site's XRootD/dCache).

    with WebDavTarget(token="Bearer t", digest=True) as site:
        ...copy to site.url + "/dir/a.bin"...
        site.files["/dir/a.bin"]        # bytes received
        site.requests                   # [(method, path, headers)]

Switches: ``token`` (every method needs that Authorization, else 401/403),
``digest`` (answer ``Digest: adler32=…`` on PUT and on a HEAD asking
``Want-Digest``, the way XRootD does), ``lie`` (state a wrong adler32),
``drop_after`` (after that many body bytes of a PUT, keep what arrived as
the file — a naive server — and cut the connection), ``gate`` (after the
first body bytes of a PUT, set ``gate.reached`` and wait for ``gate.go``:
lets a test act at a known point of a transfer, no sleeps). A PUT whose body
ends early also keeps the partial file, so tests see whether the pusher
deletes what it wrote; a DELETE waits until a PUT of the same path still
being received has ended (the file is closed first, as a file-backed server
does), so its outcome does not depend on thread timing.
"""
from __future__ import annotations

import dataclasses
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclasses.dataclass
class Gate:
    """``reached`` is set once a PUT body started; the PUT goes on after ``go``."""

    reached: threading.Event = dataclasses.field(default_factory=threading.Event)
    go: threading.Event = dataclasses.field(default_factory=threading.Event)


def adler32_hex(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


class WebDavTarget:
    def __init__(self, *, token: str | None = None, digest: bool = False, lie: bool = False,
                 drop_after: int | None = None, gate: Gate | None = None, put_status: int = 201) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.token = token
        self.digest = digest
        self.lie = lie
        self.drop_after = drop_after
        self.gate = gate
        self.put_status = put_status
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._writing: dict[str, threading.Event] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:  # noqa: N802 - http.server API
                site._head(self)

            def do_GET(self) -> None:  # noqa: N802
                site._get(self)

            def do_PUT(self) -> None:  # noqa: N802
                site._put(self)

            def do_DELETE(self) -> None:  # noqa: N802
                site._delete(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webdav-target", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait_for_request(self, method: str, timeout: float = 120) -> bool:
        """Block until a ``method`` request arrived (an event, not a sleep)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: any(m == method for m, _, _ in self.requests), timeout)

    def methods(self) -> list[str]:
        with self._lock:
            return [method for method, _, _ in self.requests]

    def __enter__(self) -> WebDavTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- handlers ------------------------------------------------------------

    def _record(self, handler: BaseHTTPRequestHandler) -> str | None:
        path = urlsplit(handler.path).path
        with self._arrived:
            self.requests.append((handler.command, path, dict(handler.headers.items())))
            self._arrived.notify_all()
        if self.token is not None and handler.headers.get("Authorization") != self.token:
            status = 403 if handler.headers.get("Authorization") else 401
            self._answer(handler, status, {})
            if handler.command == "PUT":
                handler.close_connection = True
            return None
        return path

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str],
                body: bytes = b"") -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if body and handler.command != "HEAD":
            handler.wfile.write(body)

    def _digest(self, data: bytes) -> dict[str, str]:
        value = adler32_hex(data + b"x" if self.lie else data)
        return {"Digest": f"adler32={value}"}

    def _stored(self, handler: BaseHTTPRequestHandler) -> bytes | None:
        """The file a HEAD or GET names (the request recorded, its token checked);
        None when it is already answered (401, 403, 404)."""
        path = self._record(handler)
        if path is None:
            return None
        with self._lock:
            data = self.files.get(path)
        if data is None:
            self._answer(handler, 404, {})
        return data

    def _head(self, handler: BaseHTTPRequestHandler) -> None:
        data = self._stored(handler)
        if data is None:
            return
        headers = {"Content-Length": str(len(data))}
        if self.digest and handler.headers.get("Want-Digest"):
            headers.update(self._digest(data))
        handler.send_response(200)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        data = self._stored(handler)
        if data is not None:
            self._answer(handler, 200, {"Content-Type": "application/octet-stream"}, data)

    def _delete(self, handler: BaseHTTPRequestHandler) -> None:
        path = self._record(handler)
        if path is None:
            return
        with self._lock:
            writing = self._writing.get(path)
        if writing is not None:
            writing.wait(30)
        with self._lock:
            existed = self.files.pop(path, None) is not None
        self._answer(handler, 204 if existed else 404, {})

    def _put(self, handler: BaseHTTPRequestHandler) -> None:
        path = self._record(handler)
        if path is None:
            return
        length = int(handler.headers.get("Content-Length", "0"))
        done = threading.Event()
        with self._lock:
            self._writing[path] = done
        try:
            self._receive(handler, path, length)
        finally:
            done.set()

    def _receive(self, handler: BaseHTTPRequestHandler, path: str, length: int) -> None:
        received = bytearray()
        gate = self.gate
        while len(received) < length:
            want = min(64 * 1024, length - len(received))
            if self.drop_after is not None:
                want = min(want, self.drop_after - len(received))
            chunk = handler.rfile.read(want) if want > 0 else b""
            if not chunk:
                break
            received += chunk
            if gate is not None and not gate.reached.is_set():
                gate.reached.set()
                gate.go.wait(30)
            if self.drop_after is not None and len(received) >= self.drop_after:
                break
        with self._lock:
            self.files[path] = bytes(received)  # a partial body stays: the pusher must delete it
        if len(received) < length:
            handler.close_connection = True
            return
        headers = self._digest(bytes(received)) if self.digest else {}
        self._answer(handler, self.put_status, headers)
