"""A real little HTTP server standing in for a function (fakes over mocks).

``FakeFunction(handler)`` serves on 127.0.0.1:<free port> in a thread. The
handler gets a :class:`Seen` request and returns ``(status, headers, body)``
where body is bytes, a JSON-able object, or an iterator of bytes (streamed).
Every request is recorded in ``.requests``.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    index: int

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Reply = tuple[int, dict[str, str], Any]
Handler = Callable[[Seen], Reply]


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def problem(status: int, code: str, detail: str = "detail", retryable: bool = False,
            headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/problem+json", **(headers or {})}, {
        "type": "about:blank", "title": code.title(), "status": status, "code": code,
        "detail": detail, "retryable": retryable}


def ok(body: Any) -> Reply:
    return 200, {"Content-Type": "application/json"}, body


def ndjson(lines: Iterable[dict[str, Any] | bytes]) -> Reply:
    def gen() -> Iterator[bytes]:
        for line in lines:
            yield line if isinstance(line, bytes) else (json.dumps(line) + "\n").encode()

    return 200, {"Content-Type": "application/x-ndjson"}, gen()


class FakeFunction:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Seen] = []
        self._lock = threading.Lock()

        @Request.application
        def app(request: Request) -> Response:
            with self._lock:
                seen = Seen(request.method, request.path, dict(request.headers), request.get_data(),
                            len(self.requests))
                self.requests.append(seen)
            status, headers, body = self.handler(seen)
            if isinstance(body, bytes | str):
                return Response(body, status=status, headers=headers)
            if isinstance(body, Iterator):
                return Response(body, status=status, headers=headers, direct_passthrough=True)
            return Response(json.dumps(body), status=status, headers=headers)

        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def __enter__(self) -> FakeFunction:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class SleepRecorder:
    """Injected instead of time.sleep: records waits, never sleeps."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def checksum_answer(body: dict[str, Any], checksums: dict[str, str] | None = None) -> dict[str, Any]:
    return {"store": body.get("store", "default"), "bucket": body["bucket"], "key": body["key"], "size": 3,
            "etag": '"e"', "checksums": checksums or {a: "00000001" for a in body.get("algorithms", ["adler32"])},
            "cached": [], "elapsed_s": 0.01}


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
