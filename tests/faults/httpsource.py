"""A loopback static HTTP server to play an http(s) copy source (a presigned
URL, a web server): byte ranges, ``If-Match`` / ``If-Unmodified-Since``,
strong ETags (MD5) and Last-Modified, optional extra headers (e.g.
``x-amz-meta-adler32``), redirects, and switches to drop validators.

    with StaticHttpSource() as site:
        site.put("/data/a.bin", data, headers={"x-amz-meta-adler32": "0a1b2c3d"})
        site.redirect("/moved", "/data/a.bin")
        url = site.url + "/data/a.bin?X-Amz-Signature=secret"
"""
from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclasses.dataclass
class Blob:
    data: bytes
    etag: str | None
    last_modified: str | None
    headers: dict[str, str]
    #: the Content-Length to state instead of the true one (a source that lies or garbles it)
    length: str | None = None


class StaticHttpSource:
    def __init__(self) -> None:
        self.blobs: dict[str, Blob] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                site._serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-source", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def put(self, path: str, data: bytes, *, headers: dict[str, str] | None = None, etag: bool = True,
            last_modified: bool = True, length: str | None = None) -> None:
        """Serve ``data`` at ``path`` (replacing what was there: a new ETag)."""
        with self._lock:
            self.blobs[path] = Blob(
                data=data,
                etag=f'"{hashlib.md5(data).hexdigest()}"' if etag else None,
                last_modified=email.utils.formatdate(time.time(), usegmt=True) if last_modified else None,
                headers=dict(headers or {}),
                length=length,
            )

    def redirect(self, path: str, target: str) -> None:
        self.redirects[path] = target

    def start(self) -> StaticHttpSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StaticHttpSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            self.requests.append(("GET", path, headers))
            blob = self.blobs.get(path)
        if path in self.redirects:
            self._answer(h, 302, b"", {"Location": self.redirects[path]})
            return
        if blob is None:
            self._answer(h, 404, b"not found", {})
            return
        base = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **blob.headers}
        if blob.etag:
            base["ETag"] = blob.etag
        if blob.last_modified:
            base["Last-Modified"] = blob.last_modified
        if_match = headers.get("if-match")
        if if_match is not None and if_match != "*" and if_match != blob.etag:
            self._answer(h, 412, b"precondition failed", {})
            return
        since = headers.get("if-unmodified-since")
        if since is not None and blob.last_modified is not None and since != blob.last_modified:
            self._answer(h, 412, b"precondition failed", {})
            return
        match = _RANGE.match(headers.get("range", ""))
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) + 1 if match.group(2) else len(blob.data)
            end = min(end, len(blob.data))
            if start >= len(blob.data):
                self._answer(h, 416, b"", {"Content-Range": f"bytes */{len(blob.data)}"})
                return
            self._answer(h, 206, blob.data[start:end],
                         {**base, "Content-Range": f"bytes {start}-{end - 1}/{len(blob.data)}"}, blob.length)
            return
        self._answer(h, 200, blob.data, base, blob.length)

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str],
                length: str | None = None) -> None:
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)) if length is None else length)
        if length is not None:
            h.close_connection = True  # the stated length is not the body's: nothing can follow it
        h.end_headers()
        try:
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
