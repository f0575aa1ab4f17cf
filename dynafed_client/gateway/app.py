"""The gateway's WSGI app: WLCG HTTP in front of the functions.

Namespace: ``/<store>/<bucket>/<key>``.

=========  ===============================================================
HEAD/GET   with ``Want-Digest`` / ``Want-Repr-Digest``: synchronous ``Digest`` / ``Repr-Digest`` (RFC 3230 / 9530)
           plus Content-Length, ETag, Last-Modified; GET then streams the
           content. Plain GET: 302 to a presigned URL of the store.
PROPFIND   Depth 0 / 1 multistatus (gfal2 stats the destination first); Depth 1
           lists every child (paged, streamed: no cut at 1000) and a store's
           buckets where its credentials may list them
PUT        201/204: the body streamed into the store (gateway/upload.py)
DELETE     204 (gfal2 ``overwrite`` deletes before COPY)
MOVE       201/204 within one store, up to 5 GiB (gateway/moves.py)
MKCOL      201 inside an existing bucket (S3 has no directories)
COPY       HTTP-TPC pull (``Source``) / push (``Destination``: a store here or
           an allowed http(s) URL): checks, then 202 and a Perf Marker stream
           fed by the copy function. One job per (source, destination)
           (gateway/jobs.py); a client hanging up cancels it
OPTIONS    Allow / DAV

Authentication (gateway/auth.py): off, a static bearer token, and/or WLCG
JWTs with storage.read/create/modify scopes; HEAD/OPTIONS of collections
stay open for health probes.
=========  ===============================================================
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from dynafed_client.gateway import auth, digests, errors, listing, moves, tpc, upload, webdav
from dynafed_client.gateway.config import GatewayConfig
from dynafed_client.gateway.destinations import probe_destination
from dynafed_client.gateway.jobs import RunningCopies, job_id_for
from dynafed_client.gateway.preflight import probe_http_source
from dynafed_client.gateway.storage import Storage, default_client_factory
from dynafed_client.gateway.transfers import TransferStream
from dynafed_client.mapping import StoreMapping, collapse_slashes
from dynafed_contract import fields
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlDestination, UrlSource
from dynafed_contract.digest_fields import format_repr_digest, parse_want_repr_digest
from dynafed_contract.problem import MEDIA_TYPE

log = logging.getLogger("dynafed_client.gateway")

ALLOW = "OPTIONS, HEAD, GET, PROPFIND, PUT, DELETE, MOVE, MKCOL, COPY"
#: the request environ key holding the authenticated caller (auth.Principal)
PRINCIPAL = "dynafed.principal"
STREAM_CHUNK = 1024 * 1024
OCTETS = "application/octet-stream"


class Dispatcher(Protocol):
    """What the gateway needs of :class:`dynafed_client.Client` (or the ``local`` backend)."""

    def checksum(self, obj: ObjectRef, algorithms: Sequence[str], *, cache: str = ...) -> Any: ...

    def copy(self, source: ObjectRef | UrlSource, destination: ObjectRef | UrlDestination, *,
             job_id: str | None = ..., verify: str = ..., overwrite: bool = ..., on_progress: Any = ...,
             cancel: Any = ...) -> Any: ...


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


def _problem(exc: errors.GatewayError) -> Response:
    problem = exc.problem()
    return Response(problem.payload(), status=problem.status, mimetype=MEDIA_TYPE, headers=list(problem.headers))


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
        self._verify_tls = verify
        self._clock = clock
        self._auth = auth.Authenticator(token=config.token, jwt_settings=config.jwt)
        self._running = RunningCopies()
        self._handlers: dict[str, Callable[[Request], Response]] = {
            "OPTIONS": self.options, "HEAD": self.get, "GET": self.get, "PROPFIND": self.propfind,
            "PUT": self.put, "DELETE": self.delete, "MOVE": self.move, "MKCOL": self.mkcol, "COPY": self.copy,
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
            response = _problem(exc)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = _problem(errors.GatewayError("internal gateway error"))
        log.info("%s %s -> %d (%.3fs)", request.method, request.path, response.status_code,
                 self._clock() - started)
        return response(environ, start_response)

    def _authorize(self, request: Request) -> None:
        """Authenticate the caller and check the activity on the request path
        (gateway/auth.py); other paths a request touches (a MOVE or push
        destination here) are checked by their handler with :meth:`_allow`."""
        if not self._auth.enabled:
            return
        path = collapse_slashes(request.path)
        if request.method in ("HEAD", "OPTIONS") and _is_collection(path):
            return  # health probes (Dynafed's location plugin HEADs the endpoint's base URL)
        principal = self._auth.authenticate(request.headers.get("Authorization"))
        request.environ[PRINCIPAL] = principal
        method = request.method
        if method in ("DELETE", "MOVE"):
            self._auth.authorize(principal, auth.MODIFY, path)
        elif method in ("PUT", "MKCOL") or (method == "COPY" and "Source" in request.headers):
            self._auth.authorize(principal, auth.CREATE, path)
        else:  # HEAD, GET, PROPFIND, OPTIONS, push COPY (this path is read)
            self._auth.authorize(principal, auth.READ, path)

    def _allow(self, request: Request, activity: str, path: str) -> None:
        principal = request.environ.get(PRINCIPAL)
        if principal is not None:
            self._auth.authorize(principal, activity, collapse_slashes(path))

    def _may_replace(self, request: Request, path: str) -> bool:
        """Whether the caller may overwrite (storage.create alone only creates)."""
        principal = request.environ.get(PRINCIPAL)
        return principal is None or principal.may(auth.MODIFY, collapse_slashes(path))

    # -- namespace ------------------------------------------------------------------

    def _target(self, path: str) -> Target | None:
        """The namespace target of a path; None for the root; 404/403 for stores."""
        # a Dynafed endpoint URL ending in "/" sends "//key" (mapping.collapse_slashes)
        parts = collapse_slashes(path).lstrip("/").split("/", 2)
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
        if request.method == "HEAD" and not ({"Want-Digest", "Want-Repr-Digest"} & set(request.headers.keys())):
            target = self._target(request.path)
            if target is None or not target.key or target.key.endswith("/"):
                return self._head_collection(target)
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

    def _head_collection(self, target: Target | None) -> Response:
        """HEAD of the root, a store or a bucket: 200 when it exists (the health
        check of Dynafed's HTTP location plugin is a HEAD on the endpoint's base URL)."""
        if target is not None and target.bucket:
            self._stat(target)  # 404 when the bucket or prefix does not exist
        return Response(status=200, headers={"Content-Length": "0"})

    def propfind(self, request: Request) -> Response:
        depth = request.headers.get("Depth", "1").strip()
        target = self._target(request.path)
        resources = self._stat(target)
        if depth != "0" and resources[0].collection:
            children = self._children(target)  # errors known now (403, 404) are still a status
            return Response(webdav.multistatus_chunks(_chain(resources, children)), status=207,
                            content_type=webdav.MULTISTATUS, direct_passthrough=True)
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

    def _children(self, target: Target | None) -> Iterator[webdav.Resource]:
        if target is None:
            return iter([webdav.Resource(f"/{name}", collection=True) for name in self.config.exposed_names])
        client = self.storage.client(target.store)
        if not target.bucket:
            return iter([webdav.Resource(f"{target.path}/{e.name}", collection=True, last_modified=e.last_modified)
                         for e in listing.list_buckets(client, target.store)])
        base = target.path.rstrip("/")
        entries = listing.iter_children(client, target.bucket, target.key.rstrip("/"))
        first = next(entries, None)  # the first page's errors are a status, not a cut body
        return (webdav.Resource(f"{base}/{e.name}", collection=e.is_collection, size=e.size,
                                last_modified=e.last_modified, etag=e.etag)
                for e in _chain([first] if first is not None else [], entries))

    def put(self, request: Request) -> Response:
        """Store the body (gateway/upload.py): 201 Created, or 204 when it replaced an object."""
        ref = self._object(request.path)
        length = request.content_length
        if length is None:
            raise errors.BadRequest("PUT needs a Content-Length (chunked uploads are not taken)")
        if not self.storage.bucket_exists(ref.store, ref.bucket):
            raise errors.NotFound("no such bucket")  # S3 has no directories to create: the bucket must exist
        existed = self.storage.exists(ref)
        if existed and (request.headers.get("If-None-Match", "").strip() == "*"
                        or not self._may_replace(request, request.path)):
            raise errors.PreconditionFailed("the object exists (If-None-Match: *, or a create-only token)")
        stated = upload.stated_digests(dict(request.headers.items()))
        result = upload.receive(self.storage.client(ref.store), ref, request.stream, length=length,
                                content_type=request.headers.get("Content-Type"), stated=stated, existed=existed)
        return Response(status=201 if result.created else 204,
                        headers={"ETag": result.etag, "Digest": f"adler32={result.adler32}",
                                 "Content-Length": "0"})

    def move(self, request: Request) -> Response:
        """Rename within a store (gateway/moves.py)."""
        source = self._object(request.path)
        location = request.headers.get("Destination", "")
        destination = self._namespace(request).resolve(location) if location else None
        if destination is None:
            raise errors.BadGateway("MOVE needs a Destination in a store served here")
        if not self.config.is_exposed(destination.store):
            raise errors.Forbidden(f"store {destination.store!r} is not served here")
        _check_names(destination.bucket, destination.key)
        self._allow(request, auth.CREATE, f"/{destination.store}/{destination.bucket}/{destination.key}")
        overwrite = request.headers.get("Overwrite", "T").strip().upper() != "F"
        created = moves.move_object(self.storage.client(source.store), source, destination, overwrite=overwrite)
        return Response(status=201 if created else 204, headers={"Content-Length": "0"})

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
        destination: ObjectRef | UrlDestination
        if tpc_request.mode == "pull":
            destination = here
            # the TransferHeader* set travels with the source, for its host only (never shown)
            source = remote if remote is not None else UrlSource(tpc_request.remote_url,
                                                                 tpc_request.transfer_headers)
        else:
            source = here
            if remote is None:
                # another site's storage: the TransferHeader* set are its credentials (for its host only)
                probe_destination(tpc_request.remote_url, tpc_request.transfer_headers,
                                  allow=self.config.destination_allow_list,
                                  allow_private=self.config.allow_private_sources,
                                  overwrite=tpc_request.overwrite, verify=self._verify_tls)
                destination = UrlDestination(tpc_request.remote_url, tpc_request.transfer_headers)
            else:
                destination = remote
                self._allow(request, auth.CREATE, f"/{remote.store}/{remote.bucket}/{remote.key}")
        if isinstance(destination, ObjectRef) and not self._may_replace(
                request, f"/{destination.store}/{destination.bucket}/{destination.key}"):
            tpc_request = dataclasses.replace(tpc_request, overwrite=False)  # a create-only token
        self._check_copy(source, destination, tpc_request)
        job_id = job_id_for(source, destination)
        handle = self._running.begin(job_id)  # a COPY of the same job still running is cancelled first
        log.info("COPY %s job %s: %s -> %s", tpc_request.mode, job_id, _show(source), _show(destination))
        stream = TransferStream(self._copy_run(source, destination, tpc_request, job_id, handle.cancel),
                                heartbeat_s=self.config.marker_interval_s,
                                min_gap_s=self.config.marker_min_gap_s,
                                timeout_s=self.config.copy_timeout_s, name=job_id, cancel=handle.cancel,
                                on_end=lambda: self._running.end(job_id, handle))
        # no Content-Length: the server sends it chunked, each block as it comes
        return Response(_Encoded(stream), status=202, mimetype="text/plain", direct_passthrough=True,
                        headers={"X-Copy-Job": job_id, "Cache-Control": "no-cache"})

    def _check_copy(self, source: ObjectRef | UrlSource, destination: ObjectRef | UrlDestination,
                    request: tpc.TpcRequest) -> None:
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
                raise errors.SourceForbidden("source URL is not in the gateway's allowed http sources")
            self._probe(source.url, request.transfer_headers)
        if isinstance(destination, UrlDestination):
            return  # checked by probe_destination
        if not self.storage.bucket_exists(destination.store, destination.bucket):
            raise errors.NotFound("destination bucket does not exist")
        if not request.overwrite and self.storage.exists(destination):
            raise errors.PreconditionFailed("destination exists and Overwrite is F")

    def _copy_run(self, source: ObjectRef | UrlSource, destination: ObjectRef | UrlDestination,
                  request: tpc.TpcRequest, job_id: str,
                  cancel: Any) -> Callable[[Callable[[int], None]], int | None]:
        def run(report: Callable[[int], None]) -> int | None:
            result = self.dispatcher.copy(source, destination, job_id=job_id, verify=self.config.verify,
                                          overwrite=request.overwrite,
                                          on_progress=lambda update: report(int(update.bytes)), cancel=cancel)
            log.info("COPY job %s: %s, %s bytes", job_id, getattr(result, "status", "done"),
                     getattr(result, "bytes", "?"))
            return int(result.bytes) if getattr(result, "bytes", None) is not None else None

        return run


def _check_names(bucket: str, key: str) -> None:
    """The functions' own bucket and key rules (dynafed_contract.fields), so a
    name no store takes is a 400 here, never a store error (or a 5xx) later."""
    if bucket and not fields.is_bucket_name(bucket):
        raise errors.BadRequest("not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
    problem = fields.key_problem(key) if key else None
    if problem:
        raise errors.BadRequest(f"the object key {problem}")


def _show(ref: ObjectRef | UrlSource | UrlDestination) -> str:
    return ref.redacted() if isinstance(ref, UrlSource | UrlDestination) else f"{ref.store}/{ref.bucket}/{ref.key}"


def _is_collection(path: str) -> bool:
    """The root, ``/<store>`` or ``/<store>/<bucket>`` (what a health probe HEADs)."""
    return len([part for part in path.split("/") if part]) <= 2


def _chain(*parts: Iterable[Any]) -> Iterator[Any]:
    for part in parts:
        yield from part


class _Encoded:
    """The COPY body as bytes; ``close`` (the WSGI server's, also when the
    client is gone before the first chunk) reaches the TransferStream."""

    def __init__(self, stream: TransferStream) -> None:
        self._stream = stream
        self._chunks = iter(stream)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            yield chunk.encode("utf-8")

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        self._stream.close()


def _stream_body(body: Any) -> Iterator[bytes]:
    try:
        while True:
            chunk = body.read(STREAM_CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()
