"""The gateway's WSGI app: WLCG HTTP in front of the functions.

Namespace: ``/<store>/<bucket>/<key>``.

=========  ===============================================================
HEAD/GET   with ``Want-Digest`` / ``Want-Repr-Digest``: synchronous ``Digest`` / ``Repr-Digest`` (RFC 3230 / 9530)
           plus Content-Length, ETag, Last-Modified; GET then streams the
           content. Plain GET: 302 to a presigned URL of the store.
PROPFIND   Depth 0 / 1 multistatus (gfal2 stats the destination first)
DELETE     204 (gfal2 ``overwrite`` deletes before COPY)
MKCOL      201 inside an existing bucket (S3 has no directories)
COPY       HTTP-TPC pull (``Source``) / push (``Destination``): checks, then
           202 and a Perf Marker stream fed by the copy function
OPTIONS    Allow / DAV
=========  ===============================================================
"""
from __future__ import annotations

import dataclasses
import functools
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from dynafed_client.gateway import digests, errors, tpc, webdav
from dynafed_client.gateway.config import GatewayConfig
from dynafed_client.gateway.preflight import probe_http_source
from dynafed_client.gateway.storage import Storage, default_client_factory
from dynafed_client.gateway.transfers import TransferStream
from dynafed_client.mapping import StoreMapping
from functions.contract import fields
from functions.contract.checksum import ObjectRef
from functions.contract.copy import UrlSource
from functions.contract.digest_fields import format_repr_digest, parse_want_repr_digest

log = logging.getLogger("dynafed_client.gateway")

ALLOW = "OPTIONS, HEAD, GET, PROPFIND, DELETE, MKCOL, COPY"
STREAM_CHUNK = 1024 * 1024
OCTETS = "application/octet-stream"


class Dispatcher(Protocol):
    """What the gateway needs of :class:`dynafed_client.Client` (or the ``local`` backend)."""

    def checksum(self, obj: ObjectRef, algorithms: Sequence[str], *, cache: str = ...) -> Any: ...

    def copy(self, source: ObjectRef | UrlSource, destination: ObjectRef, *, job_id: str | None = ...,
             verify: str = ..., overwrite: bool = ..., on_progress: Any = ...) -> Any: ...


#: ``probe(url, headers)`` checks an http(s) source before a COPY is accepted
#: (``preflight.probe_http_source``: the URL policy, then one GET of a byte)
SourceProbe = Callable[[str, Mapping[str, str]], None]


@dataclasses.dataclass(frozen=True)
class Target:
    """A request path split into our namespace (later parts may be empty)."""

    store: str
    bucket: str = ""
    key: str = ""

    @property
    def path(self) -> str:
        return "/" + "/".join(p for p in (self.store, self.bucket, self.key) if p)

    def object_ref(self) -> ObjectRef:
        if not self.bucket or not self.key or self.key.endswith("/"):
            raise errors.NotFound("not an object path (expected /<store>/<bucket>/<key>)")
        return ObjectRef(self.store, self.bucket, self.key)


def _text(status: int, reason: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(reason.rstrip("\n") + "\n", status=status, mimetype="text/plain", headers=dict(headers or {}))


class GatewayApp:
    """WSGI callable; thread-safe (one instance serves every request)."""

    def __init__(self, config: GatewayConfig, dispatcher: Dispatcher, *, storage: Storage | None = None,
                 probe: SourceProbe | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.dispatcher = dispatcher
        verify = config.trust.verify()
        self.storage = storage or Storage(config.stores,
                                          client_factory=functools.partial(default_client_factory, verify=verify))
        self._probe = probe or functools.partial(probe_http_source, allow=config.allow_list,
                                                 allow_private=config.allow_private_sources, verify=verify)
        self._clock = clock
        self._handlers: dict[str, Callable[[Request], Response]] = {
            "OPTIONS": self.options, "HEAD": self.get, "GET": self.get, "PROPFIND": self.propfind,
            "DELETE": self.delete, "MKCOL": self.mkcol, "COPY": self.copy,
        }

    # -- WSGI ---------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        started = self._clock()
        try:
            self._authorize(request)
            handler = self._handlers.get(request.method)
            if handler is None:
                raise errors.MethodNotAllowed(f"{request.method} is not supported", headers={"Allow": ALLOW})
            response = handler(request)
        except errors.GatewayError as exc:
            response = _text(exc.status, exc.reason, exc.headers)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = _text(500, "internal gateway error")
        log.info("%s %s -> %d (%.3fs)", request.method, request.path, response.status_code,
                 self._clock() - started)
        return response(environ, start_response)

    def _authorize(self, request: Request) -> None:
        token = self.config.token
        if not token:
            return
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            raise errors.Unauthorized("missing or invalid bearer token",
                                      headers={"WWW-Authenticate": 'Bearer realm="dynafed-fn-gateway"'})

    # -- namespace ------------------------------------------------------------------

    def _target(self, path: str) -> Target | None:
        """The namespace target of a path; None for the root; 404/403 for stores."""
        parts = path.lstrip("/").split("/", 2)
        if not parts[0]:
            return None
        store = parts[0]
        if not self.config.stores.get(store):
            raise errors.NotFound(f"no store named {store!r}")
        if not self.config.is_exposed(store):
            raise errors.Forbidden(f"store {store!r} is not served here")
        target = Target(store, parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "")
        _check_names(target.bucket, target.key)
        return target

    def _object(self, path: str) -> ObjectRef:
        target = self._target(path)
        if target is None:
            raise errors.NotFound("not an object path (expected /<store>/<bucket>/<key>)")
        return target.object_ref()

    def _namespace(self, request: Request) -> StoreMapping:
        own = StoreMapping.namespace([request.host_url, *self.config.public_urls])
        return own.merged(self.config.mapping)

    # -- handlers ---------------------------------------------------------------------

    def options(self, request: Request) -> Response:
        return Response(status=200, headers={"Allow": ALLOW, "DAV": "1", "Content-Length": "0"})

    def get(self, request: Request) -> Response:
        ref = self._object(request.path)
        want_header = request.headers.getlist("Want-Digest")
        want_repr = request.headers.getlist("Want-Repr-Digest")
        info = self.storage.head(ref)
        headers = {"Content-Length": str(info.size), "ETag": info.etag, "Accept-Ranges": "bytes"}
        if info.last_modified is not None:
            headers["Last-Modified"] = webdav.http_date(info.last_modified)
        if not want_header and not want_repr:
            if request.method == "HEAD":
                return Response(status=200, headers=headers, mimetype=OCTETS)
            location = self.storage.presign_get(ref, expires_s=self.config.presign_expires_s)
            return Response(status=302, headers={"Location": location, "Content-Length": "0"})
        # RFC 3230 Want-Digest -> Digest, RFC 9530 Want-Repr-Digest -> Repr-Digest; one checksum call for both
        wanted = digests.parse_want_digest(want_header)
        wanted_repr = parse_want_repr_digest(want_repr)
        algorithms = list(dict.fromkeys([*digests.algorithms_for(wanted), *(w.algorithm for w in wanted_repr)]))
        if algorithms:
            try:
                result = self.dispatcher.checksum(ref, algorithms, cache=self.config.checksum_cache)
            except Exception as exc:
                raise errors.from_client_error(exc) from None
            value = digests.format_digest(wanted, result.checksums)
            if value:
                headers["Digest"] = value
            repr_value = format_repr_digest(wanted_repr, result.checksums)
            if repr_value:
                headers["Repr-Digest"] = repr_value
            if result.etag and result.size is not None:
                # the digests describe this version: answer its size and ETag
                headers["ETag"], headers["Content-Length"] = str(result.etag), str(result.size)
        if request.method == "HEAD":
            return Response(status=200, headers=headers, mimetype=OCTETS)
        _, body = self.storage.open(ref)
        return Response(_stream_body(body), status=200, headers=headers, mimetype=OCTETS,
                        direct_passthrough=True)

    def propfind(self, request: Request) -> Response:
        depth = request.headers.get("Depth", "1").strip()
        target = self._target(request.path)
        resources = self._stat(target)
        if depth != "0" and resources[0].collection:
            resources += self._children(target)
        return Response(webdav.multistatus(resources), status=207, content_type=webdav.MULTISTATUS)

    def _stat(self, target: Target | None) -> list[webdav.Resource]:
        if target is None:
            return [webdav.Resource("/", collection=True)]
        if not target.bucket:
            return [webdav.Resource(target.path, collection=True)]
        if not self.storage.bucket_exists(target.store, target.bucket):
            raise errors.NotFound("no such bucket")
        key = target.key.rstrip("/")
        if not key:
            return [webdav.Resource(target.path, collection=True)]
        if not target.key.endswith("/"):
            try:
                info = self.storage.head(ObjectRef(target.store, target.bucket, key))
            except errors.NotFound:
                pass
            else:
                return [webdav.Resource(target.path, collection=False, size=info.size,
                                        last_modified=info.last_modified, etag=info.etag)]
        if self.storage.is_prefix(target.store, target.bucket, key):
            return [webdav.Resource(target.path, collection=True)]
        raise errors.NotFound("no such object")

    def _children(self, target: Target | None) -> list[webdav.Resource]:
        if target is None:
            return [webdav.Resource(f"/{name}", collection=True) for name in self.config.exposed_names]
        if not target.bucket:
            return []  # listing a store's buckets needs ListAllMyBuckets: not offered
        base = target.path.rstrip("/")
        return [webdav.Resource(f"{base}/{e.name}", collection=e.is_collection, size=e.size,
                                last_modified=e.last_modified, etag=e.etag)
                for e in self.storage.list(target.store, target.bucket, target.key.rstrip("/"))]

    def delete(self, request: Request) -> Response:
        ref = self._object(request.path)
        self.storage.delete(ref)
        return Response(status=204)

    def mkcol(self, request: Request) -> Response:
        target = self._target(request.path)
        if target is None or not target.bucket:
            raise errors.Forbidden("buckets and stores are not created through the gateway")
        if not self.storage.bucket_exists(target.store, target.bucket):
            raise errors.NotFound("no such bucket")
        # S3 has no directories: a prefix exists once an object is written under it
        return Response(status=201, headers={"Content-Length": "0"})

    # -- COPY (HTTP-TPC) ------------------------------------------------------------

    def copy(self, request: Request) -> Response:
        here = self._object(request.path)
        tpc_request = tpc.parse_copy(request.headers.items())
        remote = self._namespace(request).resolve(tpc_request.remote_url)
        source: ObjectRef | UrlSource
        if tpc_request.mode == "pull":
            destination = here
            # the TransferHeader* set travels with the source, for its host only (never shown)
            source = remote if remote is not None else UrlSource(tpc_request.remote_url,
                                                                 tpc_request.transfer_headers)
        else:
            source = here
            if remote is None:
                raise errors.Forbidden("push destination is not a store served here; "
                                       "only copies into configured stores are possible")
            destination = remote
        self._check_copy(source, destination, tpc_request)
        job_id = f"gw-{uuid.uuid4().hex}"
        log.info("COPY %s job %s: %s -> %s", tpc_request.mode, job_id, _show(source), _show(destination))
        stream = TransferStream(self._copy_run(source, destination, tpc_request, job_id),
                                heartbeat_s=self.config.marker_interval_s,
                                min_gap_s=self.config.marker_min_gap_s,
                                timeout_s=self.config.copy_timeout_s, name=job_id)
        # no Content-Length: the server sends it chunked, each block as it comes
        return Response(_encode(stream), status=202, mimetype="text/plain", direct_passthrough=True,
                        headers={"X-Copy-Job": job_id, "Cache-Control": "no-cache"})

    def _check_copy(self, source: ObjectRef | UrlSource, destination: ObjectRef, request: tpc.TpcRequest) -> None:
        for ref in (source, destination):
            if isinstance(ref, ObjectRef):
                _check_names(ref.bucket, ref.key)
                if ref.store not in self.config.stores:
                    raise errors.NotFound(f"no store named {ref.store!r}")
                if not self.config.is_exposed(ref.store):
                    raise errors.Forbidden(f"store {ref.store!r} is not served here")
        if source == destination:
            raise errors.BadRequest("source and destination are the same object")
        if isinstance(source, ObjectRef):
            self.storage.head(source)  # NotFound before the body
        else:
            if not self.config.source_allowed(source.url):
                raise errors.Forbidden("source URL is not in the gateway's allowed http sources")
            self._probe(source.url, request.transfer_headers)
        if not self.storage.bucket_exists(destination.store, destination.bucket):
            raise errors.NotFound("destination bucket does not exist")
        if not request.overwrite and self.storage.exists(destination):
            raise errors.PreconditionFailed("destination exists and Overwrite is F")

    def _copy_run(self, source: ObjectRef | UrlSource, destination: ObjectRef, request: tpc.TpcRequest,
                  job_id: str) -> Callable[[Callable[[int], None]], int | None]:
        def run(report: Callable[[int], None]) -> int | None:
            result = self.dispatcher.copy(source, destination, job_id=job_id, verify=self.config.verify,
                                          overwrite=request.overwrite,
                                          on_progress=lambda update: report(int(update.bytes)))
            log.info("COPY job %s: %s, %s bytes", job_id, getattr(result, "status", "done"),
                     getattr(result, "bytes", "?"))
            return int(result.bytes) if getattr(result, "bytes", None) is not None else None

        return run


def _check_names(bucket: str, key: str) -> None:
    """The functions' own bucket and key rules (functions.contract.fields), so a
    name no store takes is a 400 here, never a store error (or a 5xx) later."""
    if bucket and not fields.is_bucket_name(bucket):
        raise errors.BadRequest("not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
    problem = fields.key_problem(key) if key else None
    if problem:
        raise errors.BadRequest(f"the object key {problem}")


def _show(ref: ObjectRef | UrlSource) -> str:
    return ref.redacted() if isinstance(ref, UrlSource) else f"{ref.store}/{ref.bucket}/{ref.key}"


def _encode(chunks: Iterable[str]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.encode("utf-8")


def _stream_body(body: Any) -> Iterator[bytes]:
    try:
        while True:
            chunk = body.read(STREAM_CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()
