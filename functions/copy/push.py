"""Push: a copy into an http(s)/WebDAV destination, as one streamed PUT.

The destination URL goes through the one URL policy
(:mod:`dynafed_contract.urlpolicy`, as http sources do: normalised, an
allow-list of prefixes — here ``DYNAFED_FN_HTTP_DESTINATIONS`` —, no private
addresses unless allowed, the host resolved once and the connection pinned
to the checked address; no redirects, no proxies from the environment). Its headers (``Authorization``
…) go to that host only.

One job, one request: a PUT cannot be resumed, so a push ignores the slice
time and runs to its end (the revision timeout bounds it) — at the rate of
the destination.

Steps:

1. ``HEAD`` (with ``Want-Digest``/``Want-Repr-Digest``): 401/403 fail before
   any byte moves; an existing destination is ``already-present`` when its
   size and stated digest equal the source's, a conflict unless
   ``overwrite``, and deleted first when overwriting (as gfal2 does before a
   copy: cern-fts/gfal2 src/plugins/http/gfal_http_copy.cpp,
   ``gfal_http_copy_overwrite``).
2. ``PUT`` with ``Content-Length``, the body read part by part from the
   source (pinned as for any copy) and digested in order as it is sent.
3. Verification: the digest of the bytes sent must equal the source's stored
   checksum (when it has one); the destination's own ``Repr-Digest`` /
   ``Digest`` (in the PUT answer, else a ``HEAD`` asking for it) must equal
   the digest sent when the destination offers one; ``verify_mode: full``
   reads the destination back and digests it.
4. Atomicity: whatever fails once the PUT started (a broken connection, a
   refused PUT, a mismatch, a cancel because the caller went away) ends with
   a ``DELETE`` of the destination, so it is left absent or complete.
"""
from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from dynafed_contract.copy import COMPLETED, Strategy, UrlDestination
from dynafed_contract.digest_fields import encode_member, stated_digests, want_headers
from dynafed_contract.errors import ErrorCode
from dynafed_contract.urlpolicy import AllowList, PinnedTarget, UrlRefused, parse_http_url, pin
from dynafed_net.hangup import HangUpOnCancel, shut_down
from dynafed_net.pinned_http import pinned_session, resolve_addresses
from dynafed_runtime import errors
from dynafed_runtime.credentials import ClientCredential
from dynafed_runtime.digests import DigestSet
from dynafed_runtime.objects import BufferPool
from functions.copy.engine import Outcome
from functions.copy.parts import PartPlan
from functions.copy.progress import ProgressReporter
from functions.copy.source import CopySource
from functions.copy.verify import require_equal

log = logging.getLogger("dynafed_fn.copy.push")

READ_CHUNK = 1024 * 1024


class PushCancelled(Exception):
    """The caller went away: the PUT is abandoned and its destination deleted."""


def _status_error(status: int, what: str, action: str) -> errors.FunctionError:
    """An error answer of the destination, in the error tree."""
    if status in (401, 403):
        return errors.StoreNotAllowed(f"destination {what} refused the {action} ({status})")
    if 300 <= status < 400:
        return errors.UpstreamError(f"destination {what} answered a redirect ({status}) to the {action}; "
                                    "redirects are not followed (headers would go to another host)")
    if status in (404, 409):
        return errors.NoSuchBucket(f"destination {what}: its parent collection does not exist ({status})")
    if status == 412:
        return errors.DestinationExists(f"destination {what} exists ({status})")
    if status in (408, 429, 500, 502, 503, 504):
        return errors.UpstreamUnavailable(f"destination {what} unavailable ({status})")
    return errors.UpstreamError(f"destination {what} answered {status} to the {action}")


def check_destination(url: str, prefixes: tuple[str, ...], *, allow_private: bool) -> PinnedTarget:
    """The URL policy for a destination: where to connect, or the error
    (INVALID_REQUEST, STORE_NOT_ALLOWED, UPSTREAM_UNAVAILABLE)."""
    try:
        parsed = parse_http_url(url)
        if not AllowList.parse(prefixes).allows(parsed):
            raise errors.StoreNotAllowed("destination url is not under an allowed prefix "
                                         "(DYNAFED_FN_HTTP_DESTINATIONS)")
        return pin(parsed, resolve_addresses(parsed.host, parsed.port), allow_private=allow_private)
    except UrlRefused as exc:
        if exc.code == ErrorCode.SOURCE_NOT_ALLOWED:  # the policy's words are about sources
            raise errors.StoreNotAllowed("destination host resolves to a non-public address") from None
        if exc.code == ErrorCode.UPSTREAM_UNAVAILABLE:
            raise errors.UpstreamUnavailable("cannot resolve the destination host") from None
        raise errors.InvalidRequest(f"destination {exc.detail}") from None
    except ValueError:
        raise errors.InternalError("DYNAFED_FN_HTTP_DESTINATIONS holds an invalid entry") from None


class HttpDestination:
    """An http(s) destination: pinned address, the caller's headers, no redirects."""

    def __init__(self, destination: UrlDestination, *, prefixes: tuple[str, ...], allow_private: bool,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0, verify: bool | str = True) -> None:
        self.ref = destination
        self.what = destination.redacted()
        target = check_destination(destination.url, prefixes, allow_private=allow_private)
        self._pinned = target
        self._verify = verify
        self._target = target.url
        self._host_header = target.host_header
        self._timeout = (connect_timeout, read_timeout)
        self._session = pinned_session(target)
        self._session.verify = verify  # certifi, or + DYNAFED_FN_CA_BUNDLE / X509_CERT_DIR (runtime/trust.py)
        self._credential = ClientCredential(destination.x509)  # a 0600 temp file while this lives
        self._session.cert = self._credential.path
        self._headers = dict(destination.headers)

    def request(self, method: str, *, extra: Mapping[str, str] | None = None, data: Any = None,
                stream: bool = False) -> Any:
        headers = {**self._headers, **(extra or {}), "Host": self._host_header,
                   "User-Agent": "dynafed-fn-copy", "Accept-Encoding": "identity"}
        try:
            return self._session.request(method, self._target, headers=headers, data=data, stream=stream,
                                         allow_redirects=False, timeout=self._timeout)
        except PushCancelled:
            raise
        except Exception as exc:
            error = errors.translate(exc, what=self.what)
            if isinstance(error, errors.InternalError):
                raise errors.UpstreamUnavailable(f"{method} to destination {self.what} failed") from None
            raise error from None

    def _connect(self) -> http.client.HTTPConnection:
        """A connection to the checked address (TLS: SNI and certificate for the name)."""
        parts = urlsplit(self._pinned.url)
        address, port = self._pinned.address, parts.port or 443
        connect_timeout, read_timeout = self._timeout
        try:
            sock = socket.create_connection((address, port), timeout=connect_timeout)
            sock.settimeout(read_timeout)
            if parts.scheme == "https":
                context = ssl.create_default_context(
                    cafile=self._verify if isinstance(self._verify, str) else _default_cafile())
                if self._credential.path is not None:
                    context.load_cert_chain(self._credential.path)
                sock = context.wrap_socket(sock, server_hostname=self._pinned.server_hostname or address)
        except ssl.SSLError as exc:
            raise errors.UpstreamError(f"TLS with destination {self.what} failed ({exc.reason or exc}); "
                                       "a site CA goes in DYNAFED_FN_CA_BUNDLE or X509_CERT_DIR") from None
        except OSError:
            raise errors.UpstreamUnavailable(f"cannot connect to destination {self.what}") from None
        connection = http.client.HTTPConnection(address, port, timeout=read_timeout)
        connection.sock = sock
        return connection

    def put(self, body: SourceBody | None, size: int, extra: Mapping[str, str],
            cancel: threading.Event) -> tuple[int, dict[str, str]]:
        """One PUT of ``size`` bytes: (status, response headers). The body goes
        out part by part with ``sendall`` (no small-block copying); a cancel
        shuts the socket down (PushCancelled)."""
        connection = self._connect()
        assert connection.sock is not None
        sock = connection.sock
        hang_up = HangUpOnCancel(cancel, lambda: shut_down(sock), name="push-cancel")
        path = urlsplit(self._pinned.url)
        try:
            connection.putrequest("PUT", (path.path or "/") + (f"?{path.query}" if path.query else ""),
                                  skip_host=True, skip_accept_encoding=True)
            headers = {**self._headers, **extra, "Host": self._host_header, "User-Agent": "dynafed-fn-copy",
                       "Content-Length": str(size)}
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            for view in body.parts() if body is not None else ():
                if cancel.is_set():
                    raise PushCancelled()
                connection.sock.sendall(view)
            response = connection.getresponse()
            response.read()
            return response.status, {name: value for name, value in response.getheaders()}
        except PushCancelled:
            raise
        except (OSError, http.client.HTTPException):
            if hang_up.fired or cancel.is_set():
                raise PushCancelled() from None
            raise errors.UpstreamUnavailable(f"PUT to destination {self.what} broke off") from None
        finally:
            hang_up.stop()
            connection.close()

    def head(self, algorithm: str) -> Any | None:
        """The HEAD answer, or None when the destination does not exist."""
        response = self.request("HEAD", extra=want_headers(algorithm))
        response.close()
        if response.status_code in (404, 410):
            return None
        if response.status_code >= 300:
            raise _status_error(response.status_code, self.what, "HEAD")
        return response

    def delete(self) -> bool:
        """DELETE the destination; True when it is gone (never raises)."""
        try:
            response = self.request("DELETE")
            response.close()
        except Exception as exc:  # the failure being reported matters more
            log.warning("could not delete the destination %s: %s", self.what, type(exc).__name__)
            return False
        if response.status_code in (200, 202, 204, 404, 410):
            return True
        log.warning("destination %s answered %d to DELETE", self.what, response.status_code)
        return False

    def digest(self, algorithm: str, on_bytes: Callable[[int], Any]) -> str:
        """GET the destination and digest it (``verify_mode: full``)."""
        response = self.request("GET", stream=True)
        try:
            if response.status_code != 200:
                raise _status_error(response.status_code, self.what, "read-back GET")
            digests = DigestSet([algorithm])
            for chunk in response.iter_content(READ_CHUNK):
                digests.update(chunk)
                on_bytes(len(chunk))
            return digests.hexdigests()[algorithm]
        finally:
            response.close()

    def close(self) -> None:
        self._session.close()
        self._credential.remove()


def present_at(destination: HttpDestination, *, size: int, algorithm: str, reference: str | None,
               pushed: str | None = None) -> tuple[bool, str | None]:
    """(exists, the checksum it provably holds): the source's when the
    destination states it; ``pushed`` — what this job's own completed PUT
    sent, here — when the size matches and no other digest is stated (a
    re-post of a job that finished meanwhile is already-present, not a conflict)."""
    head = destination.head(algorithm)
    if head is None:
        return False, None
    length = head.headers.get("Content-Length")
    stated = stated_digests(head.headers).get(algorithm)
    same_size = length is not None and length.isdigit() and int(length) == size
    if reference is not None and stated == reference and same_size:
        return True, stated
    if pushed is not None and same_size and stated in (None, pushed):
        return True, pushed
    return True, None


class SourceBody:
    """The source's bytes for the PUT: parts read in order into one recycled
    buffer, each digested before it is sent."""

    def __init__(self, source: CopySource, plan: PartPlan, digests: DigestSet, *, reporter: ProgressReporter,
                 on_read: Callable[[int], Any]) -> None:
        self._plan = plan
        self._pool = BufferPool(1, plan.part_size)
        self._reader = source.reader(self._pool, 0)
        self._digests = digests
        self._reporter = reporter
        self._on_read = on_read
        self.sent = 0

    def parts(self) -> Iterator[memoryview]:
        """Each part's bytes (a view valid until the next one is asked for)."""
        for part in self._plan.parts():
            view = self._reader.read(part)
            try:
                self._on_read(len(view))
                self._digests.update(view)
                yield view
                self.sent += len(view)
                self._reporter.advance(len(view))
            finally:
                self._pool.put(view.obj)  # type: ignore[arg-type]

    def close(self) -> None:
        self._reader.close()
        self._pool.close()


def copy_push(*, source: CopySource, destination: HttpDestination, plan: PartPlan | None, algorithm: str,
              reference: str | None, reporter: ProgressReporter, cancel: threading.Event, full: bool,
              on_read: Callable[[int], Any], on_written: Callable[[int], Any],
              content_type: str | None) -> Outcome:
    """PUT the source to the destination and verify; DELETE it on any failure.
    ``plan`` is None for a zero-byte source (nothing to read: a ranged GET of
    an empty S3 object is a 416)."""
    digests = DigestSet([algorithm])
    size = plan.size if plan is not None else 0
    body = SourceBody(source, plan, digests, reporter=reporter, on_read=on_read) if plan is not None else None
    extra = {"Content-Type": content_type or "application/octet-stream"}
    stated_reference = _repr_digest(algorithm, reference) if reference is not None else None
    if stated_reference is not None:
        # the destination may check what it receives (XRootD compares a pushed Repr-Digest)
        extra["Repr-Digest"] = stated_reference
    try:
        status, answer = destination.put(body, size, extra, cancel)
        if status not in (200, 201, 204):
            raise _status_error(status, destination.what, "PUT")
        sent = body.sent if body is not None else 0
        if sent != size:
            raise errors.UpstreamError(f"PUT to {destination.what} ended after {sent} of {size} bytes")
        on_written(size)
        checksum = digests.hexdigests()[algorithm]
        verified_by = []
        require_equal(algorithm, checksum, reference, source.what)
        if reference is not None:
            verified_by.append("source-checksum")
        stated = stated_digests(answer).get(algorithm)
        if stated is None:
            head = destination.head(algorithm)
            stated = stated_digests(head.headers).get(algorithm) if head is not None else None
        if stated is not None:
            if stated != checksum:
                raise errors.ChecksumMismatch(f"destination {destination.what} states {algorithm} {stated}, "
                                              f"the bytes sent have {checksum}")
            verified_by.append("destination-digest")
        if full:
            stored = destination.digest(algorithm, on_read)
            if stored != checksum:
                raise errors.ChecksumMismatch(f"destination {destination.what} reads back with {algorithm} "
                                              f"{stored}, the bytes sent have {checksum}")
            verified_by.append("reread")
        etag = next((value for name, value in answer.items() if name.lower() == "etag"), None)
    except errors.DestinationExists:
        raise  # someone else's object appeared meanwhile: not ours to delete
    except PushCancelled:
        _remove(destination)
        raise errors.UpstreamUnavailable(f"push to {destination.what} cancelled: the caller went away; "
                                         "the destination was deleted") from None
    except BaseException:
        _remove(destination)
        raise
    finally:
        if body is not None:
            body.close()
    parts = plan.count if plan is not None else 0
    return Outcome(COMPLETED, Strategy.HTTP_PUT, size, checksum=checksum, etag=etag, parts_done=parts,
                   parts_total=parts, part_size=plan.part_size if plan is not None else 0, verified_by=verified_by,
                   written=False)


def _remove(destination: HttpDestination) -> None:
    """The PUT may have left bytes (a partial or unverified file): delete them."""
    gone = destination.delete()
    log.info("push failed; destination %s", "deleted" if gone else "could not be deleted",
             extra={"destination": destination.what})


def _repr_digest(algorithm: str, hex_value: str) -> str | None:
    """``Repr-Digest`` for the body (RFC 9530 name and byte-sequence form)."""
    from dynafed_contract.digest_fields import NAMES

    return encode_member(NAMES[algorithm], algorithm, hex_value) if algorithm in NAMES else None


def _default_cafile() -> str:
    import certifi

    return str(certifi.where())
