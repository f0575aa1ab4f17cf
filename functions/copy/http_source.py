"""http(s) copy sources (e.g. presigned URLs), fetched without becoming an
SSRF hole.

* The URL must fall under one of ``Config.http_sources`` (``is_allowed``:
  what a string prefix means, but with the host compared as a whole — the
  raw string ``http://good.example`` would also prefix
  ``http://good.example.evil.net``).
* The host is resolved once; unless ``Config.allow_private_sources``, every
  address must be globally routable (no loopback, private, link-local,
  shared, multicast, unspecified, reserved or IPv4-mapped address), and the
  connection goes to the address that was checked (the Host header and TLS
  SNI/certificate check keep the name), so a second DNS answer cannot
  redirect it (DNS rebinding).
* Redirects are never followed (a 3xx is an error), proxies from the
  environment are ignored, content is fetched with ``Accept-Encoding:
  identity`` (the stored bytes, not a re-encoding).
* Reads are pinned: a resumed read (connection cut, next request of the
  job) asks for a byte range with ``If-Match: <ETag>`` (or
  ``If-Unmodified-Since``), so a changed source fails instead of mixing.
"""
from __future__ import annotations

import base64
import logging
import re
import socket
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from functions.contract.addresses import is_forbidden_address
from functions.contract.algorithms import normalize_algorithm, normalize_hex
from functions.contract.copy import UrlSource
from functions.copy.plan import Part
from functions.runtime import errors
from functions.runtime.objects import BufferPool

log = logging.getLogger("dynafed_fn.copy.http")

_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_RESUMES = 3


class Cancelled(Exception):
    """The copy is stopping; a reader waiting for its turn gives up."""


# --- policy -----------------------------------------------------------------

def _origin(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port, parts.path


def is_allowed(url: str, prefixes: tuple[str, ...]) -> bool:
    """True when ``url`` is under one of the allow-list ``prefixes``, read as
    a string prefix would be but with the host as a whole: same scheme and
    host; the prefix's port if it names one, any port for a bare
    ``scheme://host`` (the string ``http://h`` prefixes ``http://h:8080/``),
    else the default port; the path under the prefix's path."""
    try:
        scheme, host, port, path = _origin(url)
        port = port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return False
    if has_dot_segments(path):
        return False  # requests/urllib3 (and servers) resolve them: /files/../x is /x
    for prefix in prefixes:
        try:
            p_scheme, p_host, p_port, p_path = _origin(prefix)
        except ValueError:
            continue
        if (scheme, host) != (p_scheme, p_host):
            continue
        if p_port is not None and p_port != port:
            continue
        if p_port is None and p_path and port != _DEFAULT_PORTS.get(scheme):
            continue
        path = path or "/"
        if p_path in ("", "/") or path == p_path or path.startswith(p_path if p_path.endswith("/")
                                                                     else p_path + "/"):
            return True
    return False


def has_dot_segments(path: str) -> bool:
    """``.`` or ``..`` path segments, also percent-encoded (``%2e``), which
    clients and servers resolve after any prefix check would have run."""
    decoded = re.sub(r"%2e", ".", path, flags=re.IGNORECASE)
    return any(segment in (".", "..") for segment in re.split(r"[/\\]", decoded))


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to (the first of the resolved ones, all checked)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise errors.UpstreamUnavailable(f"cannot resolve the source host {host[:100]}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise errors.UpstreamUnavailable(f"cannot resolve the source host {host[:100]}")
    if not allow_private:
        bad = [a for a in addresses if is_forbidden_address(a)]
        if bad:
            raise errors.SourceNotAllowed(f"source host {host[:100]} resolves to a non-public address")
    return addresses[0]


# --- transport ----------------------------------------------------------------

def _session(hostname: str) -> Any:
    import requests
    from requests.adapters import HTTPAdapter

    class PinnedHostAdapter(HTTPAdapter):
        """Connect to an IP literal but verify TLS for (and send SNI of) ``hostname``."""

        def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
            if host_params.get("scheme") == "https":
                pool_kwargs["server_hostname"] = hostname
                pool_kwargs["assert_hostname"] = hostname
            return host_params, pool_kwargs

    session = requests.Session()
    session.trust_env = False  # no proxies/netrc from the environment
    adapter = PinnedHostAdapter(max_retries=0, pool_connections=1, pool_maxsize=2)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _parse_stored(headers: Mapping[str, str]) -> dict[str, str]:
    """Checksums a source states: ``x-amz-meta-<algo>`` (a presigned S3 URL)
    and RFC 3230 ``Digest`` (hex for adler32/crc32c, base64 for md5/sha*)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("x-amz-meta-"):
            algorithm = normalize_algorithm(lower[len("x-amz-meta-"):])
            if algorithm and value.strip() and all(c in "0123456789abcdefABCDEF" for c in value.strip()):
                out[algorithm] = normalize_hex(algorithm, value)
    for item in headers.get("Digest", "").split(","):
        name, _, value = item.strip().partition("=")
        algorithm = normalize_algorithm(name)
        if not algorithm or not value or algorithm in out:
            continue
        value = value.strip()
        if all(c in "0123456789abcdefABCDEF" for c in value) and (algorithm in ("adler32", "crc32", "crc32c")
                                                                  or len(value) in (32, 40, 64, 128)):
            out[algorithm] = normalize_hex(algorithm, value)
            continue
        try:
            out[algorithm] = base64.b64decode(value, validate=True).hex()
        except ValueError:
            continue
    return out


class HttpSource:
    """An open http(s) source: the first GET's headers tell size, validators
    and stated checksums; its body is the start of the stream."""

    def __init__(self, source: UrlSource, *, prefixes: tuple[str, ...], allow_private: bool,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0) -> None:
        self.ref = source
        self.what = source.redacted()
        if not is_allowed(source.url, prefixes):
            raise errors.SourceNotAllowed("source url is not under an allowed prefix (DYNAFED_FN_HTTP_SOURCES)")
        parts = urlsplit(source.url)
        scheme = parts.scheme.lower()
        self._host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORTS[scheme]
        address = resolve(self._host, port, allow_private=allow_private)
        literal = f"[{address}]" if ":" in address else address
        self._target = urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        default_port = port == _DEFAULT_PORTS[scheme]
        self._host_header = self._host if default_port else f"{self._host}:{port}"
        self._timeout = (connect_timeout, read_timeout)
        self._session = _session(self._host)
        self._first: Any = self._get({})
        headers = self._first.headers
        length = headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close()
            raise errors.UpstreamError(f"source {self.what} did not state its size (Content-Length)")
        self.size = int(length)
        etag = headers.get("ETag")
        self.etag = etag if etag and not etag.startswith("W/") else None
        self.last_modified = headers.get("Last-Modified")
        self.tag: str | None = self.etag or (f"last-modified:{self.last_modified}" if self.last_modified else None)
        self.stored = _parse_stored(headers)
        self.metadata: dict[str, str] = {}
        self.headers: dict[str, Any] = ({"ContentType": headers["Content-Type"]}
                                        if headers.get("Content-Type") else {})

    def _get(self, extra: Mapping[str, str]) -> Any:
        request_headers = {"Host": self._host_header, "Accept-Encoding": "identity",
                           "User-Agent": "dynafed-fn-copy", **extra}
        try:
            response = self._session.get(self._target, headers=request_headers, stream=True,
                                         allow_redirects=False, timeout=self._timeout)
        except Exception as exc:
            raise errors.translate(exc, what=self.what) from None
        if 300 <= response.status_code < 400:
            response.close()
            raise errors.UpstreamError(f"source {self.what} answered a redirect ({response.status_code}); "
                                       "redirects are not followed")
        if response.status_code not in (200, 206):
            response.close()
            raise errors.translate_http_status(response.status_code, self.what)
        return response

    def get_range(self, start: int) -> Any:
        """A pinned GET of bytes [start, size), positioned at ``start``."""
        if self.tag is None:
            raise errors.UpstreamUnavailable(
                f"source {self.what} has no ETag or Last-Modified: a read cannot resume safely")
        pins = {"If-Match": self.etag} if self.etag else {"If-Unmodified-Since": str(self.last_modified)}
        response = self._get({"Range": f"bytes={start}-{self.size - 1}", **pins})
        if response.status_code == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {start}-"):
                response.close()
                raise errors.UpstreamError(f"source {self.what} answered the wrong range")
            return response
        # 200: the server ignored Range (and may have ignored the pin): check it, skip ahead
        if self.etag and response.headers.get("ETag") != self.etag:
            response.close()
            raise errors.SourceChanged(f"source changed for {self.what}")
        _skip(response, start, self.what)
        return response

    def reader(self, pool: BufferPool, start: int) -> HttpPartReader:
        first = self._first
        self._first = None
        if first is not None and start > 0:
            first.close()
            first = None
        return HttpPartReader(self, pool, start, first)

    def close(self) -> None:
        if self._first is not None:
            self._first.close()
            self._first = None
        self._session.close()


def _skip(response: Any, count: int, what: str) -> None:
    remaining = count
    while remaining:
        data = response.raw.read(min(remaining, 1024 * 1024))
        if not data:
            response.close()
            raise errors.UpstreamUnavailable(f"source {what} ended early")
        remaining -= len(data)


class HttpPartReader:
    """Parts from one sequential stream, in order (workers wait for their
    turn); a broken connection resumes with a pinned ranged GET."""

    def __init__(self, source: HttpSource, pool: BufferPool, start: int, response: Any) -> None:
        self._source = source
        self._pool = pool
        self._position = start
        self._response = response
        self._turn = threading.Condition()
        self._cancelled = False
        self._resumes = 0

    def read(self, part: Part) -> memoryview:
        with self._turn:
            while self._position != part.start and not self._cancelled:
                if self._position > part.start:
                    raise ValueError("parts must be read in order")
                self._turn.wait(0.5)
            if self._cancelled:
                raise Cancelled()
        buffer = self._pool.get()
        try:
            view = memoryview(buffer)[:part.size]
            self._fill(view, part.start)
        except BaseException:
            self._pool.put(buffer)
            raise
        with self._turn:
            self._position = part.end
            self._turn.notify_all()
        return view

    def _fill(self, view: memoryview, start: int) -> None:
        filled = 0
        while filled < len(view):
            if self._response is None:
                self._response = self._source.get_range(start + filled)
            try:
                count = self._response.raw.readinto(view[filled:])
            except errors.FunctionError:
                raise
            except Exception as exc:
                error = errors.translate(exc, what=self._source.what)
                if not isinstance(error, errors.UpstreamUnavailable) and not isinstance(exc, OSError):
                    raise error from None
                count = 0
            if not count:
                self._response.close()
                self._response = None
                self._resumes += 1
                if self._resumes > MAX_RESUMES:
                    raise errors.UpstreamUnavailable(f"connection to source {self._source.what} kept failing")
                log.warning("source read interrupted, resuming", extra={"offset": start + filled})
                continue
            filled += count

    def cancel(self) -> None:
        with self._turn:
            self._cancelled = True
            self._turn.notify_all()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

