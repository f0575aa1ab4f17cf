"""http(s) copy sources (e.g. presigned URLs), fetched without becoming an
SSRF hole.

* The URL policy is :mod:`dynafed_contract.urlpolicy` (the one shared with
  the gateway and the hooks): the URL is parsed and normalised (userinfo,
  backslashes and hidden dot segments refused, ``..`` resolved), matched
  against ``Config.http_sources`` on its parsed parts, its host resolved
  once and every address judged (unless ``Config.allow_private_sources``),
  and the connection goes to the address that was checked
  (``dynafed_net.pinned_http``: the Host header and TLS
  SNI/certificate check keep the name), so a second DNS answer cannot
  redirect it (DNS rebinding).
* Redirects are never followed (a 3xx is an error), proxies from the
  environment are ignored, content is fetched with ``Accept-Encoding:
  identity`` (the stored bytes, not a re-encoding).
* A size that is not plain ASCII digits (``Content-Length: ²``) is an
  upstream error, as is a stated checksum of the wrong form (ignored).
* Reads are pinned: a resumed read (connection cut, next request of the
  job) asks for a byte range with ``If-Match: <ETag>`` (or
  ``If-Unmodified-Since``), so a changed source fails instead of mixing.
"""
from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dynafed_contract.algorithms import canonical_stored, normalize_algorithm
from dynafed_contract.copy import UrlSource
from dynafed_contract.digest_fields import parse_repr_digest, want_headers
from dynafed_contract.urlpolicy import AllowList, PinnedTarget, UrlRefused, parse_http_url, pin
from dynafed_net.pinned_http import pinned_session, resolve_addresses
from dynafed_runtime import errors
from dynafed_runtime.credentials import ClientCredential
from dynafed_runtime.objects import BufferPool
from functions.copy.parts import Cancelled, Part

log = logging.getLogger("dynafed_fn.copy.http")

MAX_RESUMES = 3
#: RFC 9110 §8.6: Content-Length = 1*DIGIT (ASCII; ``str.isdigit`` also takes '²')
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")

Resolver = Callable[[str, int], Sequence[str]]


# --- policy -----------------------------------------------------------------

def check_source(url: str, prefixes: Sequence[str], *, allow_private: bool,
                 resolver: Resolver = resolve_addresses) -> PinnedTarget:
    """Apply the URL policy to a source URL: where to connect, or the error
    (INVALID_REQUEST, SOURCE_NOT_ALLOWED, UPSTREAM_UNAVAILABLE)."""
    try:
        parsed = parse_http_url(url)
        if not AllowList.parse(prefixes).allows(parsed):
            raise errors.SourceNotAllowed("source url is not under an allowed prefix (DYNAFED_FN_HTTP_SOURCES)")
        return pin(parsed, resolver(parsed.host, parsed.port), allow_private=allow_private)
    except (UrlRefused, ValueError) as exc:
        if isinstance(exc, UrlRefused):
            raise errors.translate(exc) from None
        raise errors.InternalError("DYNAFED_FN_HTTP_SOURCES holds an invalid entry") from None


def _parse_stored(headers: Mapping[str, str]) -> dict[str, str]:
    """Checksums a source states: ``x-amz-meta-<algo>`` (a presigned S3 URL)
    and RFC 3230 ``Digest`` (hex for adler32/crc32c, base64 for md5/sha*)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("x-amz-meta-"):
            algorithm = normalize_algorithm(lower[len("x-amz-meta-"):])
            stored = canonical_stored(algorithm, value) if algorithm else None
            if algorithm and stored is not None:
                out[algorithm] = stored
    for item in headers.get("Digest", "").split(","):
        name, _, value = item.strip().partition("=")
        algorithm = normalize_algorithm(name)
        if not algorithm or not value or algorithm in out:
            continue
        stored = canonical_stored(algorithm, value)
        if stored is None and algorithm not in ("adler32", "crc32", "crc32c"):
            try:
                stored = canonical_stored(algorithm, base64.b64decode(value.strip(), validate=True).hex())
            except ValueError:
                continue
        if stored is not None:
            out[algorithm] = stored
    # RFC 9530 (XRootD >= 5.6 answers Want-Repr-Digest): raw digest bytes, base64 between colons
    for algorithm, value in parse_repr_digest(headers.get("Repr-Digest", "")).items():
        stored = canonical_stored(algorithm, value)
        if stored is not None:
            out.setdefault(algorithm, stored)
    return out


class HttpSource:
    """An open http(s) source: the first GET's headers tell size, validators
    and stated checksums; its body is the start of the stream."""

    def __init__(self, source: UrlSource, *, prefixes: tuple[str, ...], allow_private: bool,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0, verify: bool | str = True,
                 want_digest: str | None = None) -> None:
        self.ref = source
        self.what = source.redacted()
        target = check_source(source.url, prefixes, allow_private=allow_private)
        self._target = target.url
        self._host_header = target.host_header
        self._timeout = (connect_timeout, read_timeout)
        self._session = pinned_session(target)
        self._session.verify = verify  # certifi, or + DYNAFED_FN_CA_BUNDLE / X509_CERT_DIR (runtime/trust.py)
        self._credential = ClientCredential(source.x509)
        self._session.cert = self._credential.path
        try:
            self._first: Any = self._first_get(want_headers(want_digest))
        except BaseException:
            self._credential.remove()
            raise
        headers = self._first.headers
        length = headers.get("Content-Length")
        if length is None or not _CONTENT_LENGTH.fullmatch(length.strip()):
            self.close()
            raise errors.UpstreamError(f"source {self.what} did not state its size (Content-Length)")
        self.size = int(length.strip())
        etag = headers.get("ETag")
        self.etag = etag if etag and not etag.startswith("W/") else None
        self.last_modified = headers.get("Last-Modified")
        self.tag: str | None = self.etag or (f"last-modified:{self.last_modified}" if self.last_modified else None)
        self.stored = _parse_stored(headers)
        self.metadata: dict[str, str] = {}
        self.headers: dict[str, Any] = ({"ContentType": headers["Content-Type"]}
                                        if headers.get("Content-Type") else {})

    def _first_get(self, want: Mapping[str, str]) -> Any:
        """The first GET, asking for the digest the copy verifies by (RFC 3230
        ``Want-Digest`` and RFC 9530 ``Want-Repr-Digest``): a source that
        answers one is compared with what the copy computes. XRootD 5.5
        computes that digest before it checks authorization (500 "Underlying
        filesystem failed to calculate checksum" for a file the caller may
        not read), so a 5xx is asked once more without it, for the real answer."""
        if not want:
            return self._get({})
        try:
            return self._get(want)
        except errors.UpstreamUnavailable:
            return self._get({})

    def _get(self, extra: Mapping[str, str]) -> Any:
        # the source's own headers (its credentials) go to this host only: redirects are refused below
        request_headers = {**self.ref.headers, "Host": self._host_header, "Accept-Encoding": "identity",
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
        self._credential.remove()


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

