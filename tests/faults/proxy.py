"""A loopback HTTP/1.1 fault proxy to put in front of an S3 server.

Point a store's ``endpoint_url`` at ``proxy.url``; requests are forwarded to
the upstream unchanged (the ``Host`` header too, so SigV4 signatures made for
the proxy's address verify upstream). Rules, matched in order per request,
inject faults::

    with FaultProxy(upstream="http://127.0.0.1:8333") as proxy:
        proxy.add(Rule(op="GetObject", action=ErrorReply.slow_down(), times=2))
        proxy.add(Rule(op="GetObject", action=CutAfter(1 << 20)))
        proxy.add(Rule(method="PUT", path=r"^/bucket/key$", action=Delay(2.0)))
        ...
        proxy.rules[0].applied   # how often it fired
        proxy.stats              # requests by S3 operation, faults by kind

Actions: :class:`Delay` (before forwarding), :class:`ErrorReply` (S3 XML
error without forwarding: 503 SlowDown, 500 InternalError, 400
RequestTimeout, any), :class:`CutAfter` (forward, relay N body bytes, then
reset the connection), :class:`FlipByte` (XOR one body byte), :class:`Throttle`
(relay the body at a bounded rate), :class:`Reset` (drop the connection
before answering), :class:`LoseAnswer` (forward, let the upstream answer in
full, then drop the connection without relaying a byte: the work was done,
the client never learns it), :class:`Hold` (block until released: a request
parked in flight). A rule fires on its ``skip+1``-th match and then ``times`` times
(None = forever).

``Expect: 100-continue`` is answered by the proxy itself (botocore does not
sign ``Expect``); request bodies are buffered, response bodies streamed.
Only loopback upstreams are accepted.
"""
from __future__ import annotations

import collections
import dataclasses
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["CutAfter", "Delay", "ErrorReply", "FaultProxy", "FlipByte", "Hold", "LoseAnswer", "Request", "Reset",
           "Rule", "Throttle", "s3_operation"]

_BUFFER = 64 * 1024


# --- requests and S3 operations ------------------------------------------------------

@dataclasses.dataclass
class Request:
    """A request as the proxy saw it."""

    method: str
    target: str  # path + query, as sent
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)

    @property
    def operation(self) -> str:
        return s3_operation(self)


def s3_operation(request: Request) -> str:
    """The S3 API operation of a path-style request (e.g. ``GetObject``,
    ``UploadPart``, ``CompleteMultipartUpload``); ``"Other"`` if unknown."""
    parts = request.path.lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    q = request.query
    method = request.method
    copy = request.header("x-amz-copy-source") is not None
    if not parts[0]:
        return "ListBuckets" if method == "GET" else "Other"
    if not has_key:
        table = {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
        if method == "GET":
            if "uploads" in q:
                return "ListMultipartUploads"
            return "ListObjectsV2" if q.get("list-type") == ["2"] else "ListObjects"
        if method == "POST" and "delete" in q:
            return "DeleteObjects"
        return table.get(method, "Other")
    if method == "GET":
        return "ListParts" if "uploadId" in q else "GetObjectTagging" if "tagging" in q else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT":
        if "partNumber" in q:
            return "UploadPartCopy" if copy else "UploadPart"
        if "tagging" in q:
            return "PutObjectTagging"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
    return "Other"


# --- actions -----------------------------------------------------------------------

class Action:
    """Base of the fault actions (``kind`` names it in the stats)."""

    kind = "action"


@dataclasses.dataclass
class Delay(Action):
    """Wait ``seconds`` before forwarding the request."""

    seconds: float
    kind = "delay"


@dataclasses.dataclass
class ErrorReply(Action):
    """Answer an S3 XML error instead of forwarding."""

    status: int
    code: str
    message: str = "injected by the fault proxy"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    kind = "error"

    @classmethod
    def slow_down(cls) -> ErrorReply:
        return cls(503, "SlowDown", "Please reduce your request rate.", {"Retry-After": "1"})

    @classmethod
    def internal_error(cls) -> ErrorReply:
        return cls(500, "InternalError", "We encountered an internal error. Please try again.")

    @classmethod
    def request_timeout(cls) -> ErrorReply:
        return cls(400, "RequestTimeout", "Your socket connection to the server was not read from or written to "
                                          "within the timeout period.")

    @classmethod
    def service_unavailable(cls) -> ErrorReply:
        return cls(503, "ServiceUnavailable", "Service is unable to handle request.")

    def render(self, request: Request) -> bytes:
        body = b"" if request.method == "HEAD" else (
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>"
            f"<Resource>{request.path}</Resource><RequestId>faultproxy</RequestId></Error>").encode()
        reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 412: "Precondition Failed",
                  500: "Internal Server Error", 503: "Service Unavailable"}.get(self.status, "Error")
        head = [f"HTTP/1.1 {self.status} {reason}", "Content-Type: application/xml",
                f"Content-Length: {len(body) if request.method != 'HEAD' else 0}",
                "x-amz-request-id: faultproxy", *(f"{k}: {v}" for k, v in self.headers.items())]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclasses.dataclass
class CutAfter(Action):
    """Forward, relay the response head and ``nbytes`` of its body, then end the
    connection: with a reset (``reset=True``; the peer's kernel may drop bytes
    it had not read yet, as on a real network) or a clean close (every byte
    sent arrives, then EOF: a short body)."""

    nbytes: int
    reset: bool = True
    kind = "cut"


@dataclasses.dataclass
class FlipByte(Action):
    """Forward and XOR the body byte at ``offset`` (of this response's body) with ``mask``."""

    offset: int = 0
    mask: int = 0x01
    kind = "flip"


@dataclasses.dataclass
class Throttle(Action):
    """Relay the response body at no more than ``bytes_per_s``."""

    bytes_per_s: float
    kind = "throttle"


@dataclasses.dataclass
class Reset(Action):
    """Drop the connection without answering (after reading the request)."""

    kind = "reset"


@dataclasses.dataclass
class LoseAnswer(Action):
    """Forward the request, read the upstream's whole answer, then reset the
    client connection: an at-least-once sender will deliver it again."""

    kind = "lose"


class Hold(Action):
    """Park matching requests until :meth:`release` (or ``timeout``); ``entered``
    counts how many are parked right now."""

    kind = "hold"

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.entered = 0
        self.arrived = threading.Condition(self._lock)

    def wait(self) -> None:
        with self._lock:
            self.entered += 1
            self.arrived.notify_all()
        try:
            self._released.wait(self.timeout)
        finally:
            with self._lock:
                self.entered -= 1

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Block until ``count`` requests are parked."""
        with self._lock:
            return self.arrived.wait_for(lambda: self.entered >= count, timeout)

    def release(self) -> None:
        self._released.set()


# --- rules -------------------------------------------------------------------------

@dataclasses.dataclass
class Rule:
    """When a request matches (every given criterion), apply ``action``."""

    action: Action
    op: str | None = None  # S3 operation name, e.g. "GetObject"
    method: str | None = None
    path: str | None = None  # regex searched in the path
    query: str | None = None  # regex searched in the raw query string
    where: Callable[[Request], bool] | None = None
    skip: int = 0  # let this many matches through first
    times: int | None = None  # fire this many times (None = always)
    matched: int = 0
    applied: int = 0

    def matches(self, request: Request) -> bool:
        if self.method and request.method != self.method.upper():
            return False
        if self.op and request.operation != self.op:
            return False
        if self.path and not re.search(self.path, request.path):
            return False
        if self.query and not re.search(self.query, urlsplit(request.target).query):
            return False
        return self.where is None or bool(self.where(request))

    def take(self, request: Request) -> bool:
        """Count a match; True when the action fires for it."""
        if not self.matches(request):
            return False
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.times is not None and self.applied >= self.times:
            return False
        self.applied += 1
        return True


# --- the proxy -------------------------------------------------------------------------

class _Closed(Exception):
    pass


class _UpstreamGone(Exception):
    """The upstream closed before answering (e.g. its keep-alive timeout): nothing reached the client yet."""


class _Reader:
    """Buffered reads of an HTTP/1.1 stream from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(_BUFFER)
        if not data:
            return False
        self.buffer += data
        return True

    def head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > 1 << 20 or not self._fill():
                raise _Closed()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise _Closed()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def some(self, limit: int) -> bytes:
        if not self.buffer and not self._fill():
            return b""
        data, self.buffer = self.buffer[:limit], self.buffer[limit:]
        return data

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise _Closed()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def chunked(self) -> bytes:
        """A whole chunked body, decoded (trailers dropped)."""
        out = bytearray()
        while True:
            size = int(self.line().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.line():
                    pass
                return bytes(out)
            out += self.exactly(size)
            self.exactly(2)


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees a reset, not a clean EOF."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _cut(sock: socket.socket, reset: bool) -> None:
    if reset:
        _reset(sock)
        return
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class FaultProxy:
    """The proxy (see the module docstring). Use as a context manager, or
    ``start()``/``stop()``."""

    def __init__(self, upstream: str, *, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to a loopback upstream")
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules: list[Rule] = []
        self.stats: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[str, str, str]] = []  # (operation, target, fault kind or "")
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", port), backlog=128)
        self._server.settimeout(0.2)  # accept() wakes up to notice stop()
        self.port = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._stopping = False
        self._accept_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- configuration ------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def injected(self, kind: str | None = None) -> int:
        """Faults injected so far (of one kind, or all)."""
        with self._lock:
            if kind is not None:
                return self.stats[f"fault:{kind}"]
            return sum(v for k, v in self.stats.items() if k.startswith("fault:"))

    def requests(self, op: str | None = None) -> int:
        with self._lock:
            return self.stats[f"op:{op}"] if op else self.stats["requests"]

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._accept_thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        try:
            self._server.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for rule in self.rules:
            if isinstance(rule.action, Hold):
                rule.action.release()
        if self._accept_thread is not None:
            self._accept_thread.join(5)
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(conn,), name="fault-proxy-conn", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(sock)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        self._track(client, True)
        try:
            reader = _Reader(client)
            up_reader: _Reader | None = None
            while not self._stopping:
                try:
                    request = self._read_request(client, reader)
                except _Closed:
                    return
                rule = self._pick(request)
                action = rule.action if rule else None
                kind = action.kind if action else ""
                with self._lock:
                    self.stats["requests"] += 1
                    self.stats[f"op:{request.operation}"] += 1
                    if action is not None:
                        self.stats[f"fault:{kind}"] += 1
                    self.log.append((request.operation, request.target, kind))
                if isinstance(action, Reset):
                    _reset(client)
                    return
                if isinstance(action, ErrorReply):
                    client.sendall(action.render(request))
                    continue
                if isinstance(action, Delay):
                    time.sleep(action.seconds)
                if isinstance(action, Hold):
                    action.wait()
                for attempt in range(2):
                    reused = upstream is not None
                    if upstream is None:
                        upstream = socket.create_connection(self.upstream, timeout=120)
                        self._track(upstream, True)
                        up_reader = _Reader(upstream)
                    assert up_reader is not None
                    try:
                        upstream.sendall(self._serialize(request))
                        keep = self._relay_response(request, up_reader, client, action)
                        break
                    except (_UpstreamGone, BrokenPipeError, ConnectionResetError):
                        # a reused upstream connection the server had closed: not a fault
                        # anybody asked for, so resend once on a fresh connection
                        self._track(upstream, False)
                        upstream.close()
                        upstream = up_reader = None
                        if not reused or attempt:
                            raise _Closed() from None
                if not keep:
                    return
        except (OSError, _Closed):
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._track(sock, False)
                    try:
                        sock.close()
                    except OSError:
                        pass

    def _pick(self, request: Request) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.take(request):
                    return rule
        return None

    def _read_request(self, client: socket.socket, reader: _Reader) -> Request:
        request_line, headers = _parse_head(reader.head())
        method, target, _ = request_line.split(" ", 2)
        if (_get(headers, "expect") or "").lower() == "100-continue":
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            headers = [(k, v) for k, v in headers if k.lower() != "expect"]
        if "chunked" in (_get(headers, "transfer-encoding") or "").lower():
            body = reader.chunked()
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
            headers.append(("Content-Length", str(len(body))))
        else:
            body = reader.exactly(int(_get(headers, "content-length") or 0))
        return Request(method.upper(), target, headers, body)

    @staticmethod
    def _serialize(request: Request) -> bytes:
        lines = [f"{request.method} {request.target} HTTP/1.1", *(f"{k}: {v}" for k, v in request.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body

    def _relay_response(self, request: Request, up: _Reader, client: socket.socket, action: Action | None) -> bool:
        """Relay one response; False when the client connection must end."""
        try:
            while True:
                head = up.head()
                status_line, headers = _parse_head(head)
                status = int(status_line.split(" ", 2)[1])
                if status != 100:
                    break
        except (_Closed, OSError):
            raise _UpstreamGone() from None
        no_body = request.method == "HEAD" or status in (204, 304)
        chunked = "chunked" in (_get(headers, "transfer-encoding") or "").lower()
        length = None if no_body or chunked else _get(headers, "content-length")
        if chunked:
            body_bytes = up.chunked()
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
            headers.append(("Content-Length", str(len(body_bytes))))
            source: Any = iter([body_bytes])
            remaining = len(body_bytes)
        elif no_body:
            source, remaining = iter(()), 0
        elif length is not None:
            remaining = int(length)
            source = self._stream(up, remaining)
        else:  # close-delimited
            source, remaining = self._until_close(up), -1
        if isinstance(action, LoseAnswer):
            for _ in source:  # the upstream finishes its answer; nothing reaches the client
                pass
            _reset(client)
            return False
        out_head = ("\r\n".join([status_line, *(f"{k}: {v}" for k, v in headers)]) + "\r\n\r\n").encode("latin-1")
        client.sendall(out_head)
        sent = 0
        started = time.monotonic()
        for data in source:
            if isinstance(action, FlipByte) and sent <= action.offset < sent + len(data):
                mutable = bytearray(data)
                mutable[action.offset - sent] ^= action.mask
                data = bytes(mutable)
            if isinstance(action, CutAfter) and sent + len(data) >= action.nbytes:
                client.sendall(data[: max(0, action.nbytes - sent)])
                _cut(client, action.reset)
                return False
            if isinstance(action, Throttle):
                due = started + (sent + len(data)) / action.bytes_per_s
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            client.sendall(data)
            sent += len(data)
        if isinstance(action, CutAfter):  # the body was shorter than the cut: cut at its end
            _cut(client, action.reset)
            return False
        if remaining == -1:
            return False
        connection = (_get(headers, "connection") or "").lower()
        return connection != "close"

    @staticmethod
    def _stream(up: _Reader, remaining: int) -> Any:
        while remaining > 0:
            data = up.some(min(_BUFFER, remaining))
            if not data:
                raise _Closed()
            remaining -= len(data)
            yield data

    @staticmethod
    def _until_close(up: _Reader) -> Any:
        while True:
            data = up.some(_BUFFER)
            if not data:
                return
            yield data
