"""Copy request, progress lines, events data and result (the copy function's wire format).

One copy *job* (named by ``job_id``, the idempotency key) may take several
requests: each request works for at most the function's slice time and then
answers ``"status": "in-progress"``; the caller re-posts the same request
(same ``job_id``) until the status is ``completed`` or ``already-present``.
The destination's open multipart upload is the checkpoint between requests.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from dynafed_contract import fields, urlpolicy
from dynafed_contract.checksum import OBJECT, ObjectRef, object_ref
from dynafed_contract.fieldspec import Body, Choice, Flag, Number, OneOf, Rule, Text, anchored
from dynafed_contract.url_headers import HEADERS, X509, distinct_names, parse_client_certificate, parse_headers

#: ``auto`` verifies by the best means available; ``full`` also re-reads the
#: destination after the copy and compares its digest.
VERIFY_MODES = ("auto", "full")


class Strategy(enum.StrEnum):
    """How a copy moves its bytes (the result's and the started event's ``strategy``)."""

    #: one CopyObject within a store
    SERVER_SIDE = "server-side"
    #: UploadPartCopy parts within a store
    SERVER_SIDE_MULTIPART = "server-side-multipart"
    #: bytes through the function into a multipart upload
    STREAM = "stream"
    #: a zero-byte object (one PutObject)
    PUT_EMPTY = "put-empty"
    #: one streamed PUT to an http(s)/WebDAV destination (push)
    HTTP_PUT = "http-put"


STRATEGIES = tuple(strategy.value for strategy in Strategy)
COMPLETED = "completed"
ALREADY_PRESENT = "already-present"
IN_PROGRESS = "in-progress"
STATUSES = (COMPLETED, ALREADY_PRESENT, IN_PROGRESS)
MAX_URL_LENGTH = 8192

#: User metadata the copy writes on every destination object (S3 shows them as
#: ``x-amz-meta-<name>``); the verified checksum goes to ``x-amz-meta-<algorithm>``.
JOB_ID_METADATA = "dynafed-job-id"
SOURCE_ETAG_METADATA = "dynafed-source-etag"

#: ndjson line types (``"type"`` of each line of an ``application/x-ndjson`` answer).
LINE_PROGRESS = "progress"
LINE_RESULT = "result"
LINE_ERROR = "error"


@dataclasses.dataclass(frozen=True)
class UrlSource:
    """An http(s) source (e.g. a presigned URL). Never logged in full.

    ``headers`` (e.g. ``Authorization: Bearer <token>`` from a client's
    ``TransferHeaderAuthorization``) and ``x509`` (a PEM client certificate
    with its key, e.g. a grid proxy) are credentials for that URL's host
    only: never sent elsewhere (redirects are not followed), never shown
    (``repr`` and ``to_json`` leave them out)."""

    url: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    x509: str | None = dataclasses.field(default=None, repr=False, compare=False)

    def redacted(self) -> str:
        """scheme://host[:port]/path: no query (signatures), no userinfo."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"

    def to_json(self) -> dict[str, str]:
        return {"url": self.redacted()}


@dataclasses.dataclass(frozen=True)
class UrlDestination:
    """An http(s)/WebDAV destination, written with one PUT (push). ``headers``
    and ``x509`` (as for a UrlSource) go to that URL's host only and are never
    shown (``repr`` and ``to_json`` leave them out)."""

    url: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    x509: str | None = dataclasses.field(default=None, repr=False, compare=False)

    def redacted(self) -> str:
        return UrlSource(self.url).redacted()

    def to_json(self) -> dict[str, str]:
        return {"url": self.redacted()}


@dataclasses.dataclass(frozen=True)
class CopyRequest:
    source: ObjectRef | UrlSource
    destination: ObjectRef | UrlDestination
    job_id: str | None = None
    verify: str = "adler32"
    verify_mode: str = "auto"
    overwrite: bool = False


def parse_url(obj: Mapping[str, Any], what: str) -> str:
    """The ``url`` of a source or destination: http(s), with a host, no
    userinfo, no whitespace or control characters (raises ContractViolation)."""
    url = fields.string_field(obj, "url")
    try:
        urlpolicy.parse_http_url(url)  # the one URL policy (dynafed_contract/urlpolicy.py)
    except urlpolicy.UrlRefused as exc:
        raise fields.invalid(f"{what} url: {exc.detail}") from None
    return url


def _url_allowed(url: str) -> bool:
    try:
        urlpolicy.parse_http_url(url)
    except urlpolicy.UrlRefused:
        return False
    return True


def _urls(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [body[end] for end in ("source", "destination") if "url" in body[end]]


def _ref(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return obj.get("store", fields.STORE.default), obj["bucket"], obj["key"]


URL = Text(max_length=MAX_URL_LENGTH, format="uri")
#: an http(s) source or destination, with the credentials for its host
URL_ENDPOINT = Body({"url": URL, "headers": HEADERS, "x509": X509}, required=("url",))
VERIFY_MODE = Choice(VERIFY_MODES, default="auto")
VERIFY: dict[str, Any] = {"anyOf": [{"const": "full"}, {"type": "string",
                                                         "pattern": anchored(fields.ALGORITHM_NAMES.name_pattern())}],
                          "default": "adler32", "description": "an algorithm, or 'full': adler32 with verify_mode full"}
REQUEST = Body(
    {"source": OneOf((OBJECT, URL_ENDPOINT)),
     "destination": OneOf((OBJECT, URL_ENDPOINT), description=(
         "an object, or push: an http(s)/WebDAV URL under DYNAFED_FN_HTTP_DESTINATIONS, written with one "
         "streamed PUT (strategy http-put); a failed push deletes what it wrote")),
     "job_id": fields.JOB_ID, "verify": VERIFY, "verify_mode": VERIFY_MODE, "overwrite": Flag()},
    required=("source", "destination"),
    rules=(
        Rule("source and destination are not the same object",
             lambda body: bool(_urls(body)) or _ref(body["source"]) != _ref(body["destination"])),
        Rule("a url passes the URL policy (http or https, a host, no userinfo, no control characters: "
             "dynafed_contract/urlpolicy.py)", lambda body: all(_url_allowed(e["url"]) for e in _urls(body))),
        Rule("a header is not given twice (names compare case-insensitively)",
             lambda body: all(distinct_names(e.get("headers")) for e in _urls(body))),
    ),
)


def parse_copy_request(body: Any) -> CopyRequest:
    """Validate a JSON copy request (raises ContractViolation)."""
    body = fields.require_mapping(body, "request body")
    fields.reject_unknown(body, REQUEST.names, "copy request")
    source_json = fields.require_mapping(body.get("source"), "field 'source'")
    source: ObjectRef | UrlSource
    if "url" in source_json:
        fields.reject_unknown(source_json, URL_ENDPOINT.names, "source")
        source = UrlSource(parse_url(source_json, "source"), parse_headers(source_json.get("headers"), "source"),
                           parse_client_certificate(source_json.get("x509"), "source"))
    else:
        fields.reject_unknown(source_json, OBJECT.names, "source")
        source = object_ref(source_json, "source")
    dest_json = fields.require_mapping(body.get("destination"), "field 'destination'")
    destination: ObjectRef | UrlDestination
    if "url" in dest_json:
        fields.reject_unknown(dest_json, URL_ENDPOINT.names, "destination")
        destination = UrlDestination(parse_url(dest_json, "destination"),
                                     parse_headers(dest_json.get("headers"), "destination"),
                                     parse_client_certificate(dest_json.get("x509"), "destination"))
    else:
        fields.reject_unknown(dest_json, OBJECT.names, "destination")
        destination = object_ref(dest_json, "destination")
    verify_raw = body.get("verify", "adler32")
    verify_mode = body.get("verify_mode", VERIFY_MODE.default)
    if not VERIFY_MODE.accepts(verify_mode):  # also beside verify "full", which sets it
        raise fields.invalid(f"field 'verify_mode' must be one of {', '.join(VERIFY_MODES)}")
    if verify_raw == "full":  # shorthand: default algorithm, full re-read
        verify_raw, verify_mode = "adler32", "full"
    if not isinstance(verify_raw, str):
        raise fields.invalid("field 'verify' must be an algorithm name or 'full'")
    (verify,) = fields.algorithm_list([verify_raw], default=("adler32",))[:1]
    if isinstance(source, ObjectRef) and source == destination:
        raise fields.invalid("source and destination are the same object")
    return CopyRequest(
        source=source,
        destination=destination,
        job_id=fields.job_id(body.get("job_id")),
        verify=verify,
        verify_mode=verify_mode,
        overwrite=fields.boolean(body, "overwrite", False),
    )


def progress_line(job_id: str, bytes_done: int, total: int | None, rate_bps: float,
                  elapsed_s: float) -> dict[str, Any]:
    """One ndjson progress line (``"type": "progress"``); also the data of a
    ``ch.cern.dynafed.copy.progress`` event (without ``type``). ``bytes`` never
    decreases within a job, across all of its requests."""
    return {
        "type": LINE_PROGRESS,
        "job_id": job_id,
        "bytes": bytes_done,
        "total": total,
        "rate_bps": round(rate_bps, 1),
        "elapsed_s": round(elapsed_s, 3),
    }


def copy_result(
    *,
    job_id: str,
    status: str,
    strategy: str,
    bytes_: int,
    checksums: Mapping[str, str],
    verified: bool,
    elapsed_s: float,
    source: ObjectRef | UrlSource,
    destination: ObjectRef | UrlDestination,
    total: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The final result (the 200 body, or the last ndjson line with ``"type": "result"``).

    ``status: in-progress`` means "re-post the same request": ``bytes`` is what
    is durably copied so far, ``resume`` describes the checkpoint (informative:
    the function finds the checkpoint itself from the job id)."""
    return {
        "type": LINE_RESULT,
        "job_id": job_id,
        "status": status,
        "strategy": strategy,
        "bytes": bytes_,
        "total": bytes_ if total is None else total,
        "checksums": dict(checksums),
        "verified": verified,
        "elapsed_s": round(elapsed_s, 6),
        "source": source.to_json(),
        "destination": destination.to_json(),
        **extra,
    }


def started_data(*, job_id: str, strategy: str, total: int, source: ObjectRef | UrlSource,
                 destination: ObjectRef | UrlDestination, resumed: bool, bytes_done: int = 0,
                 **extra: Any) -> dict[str, Any]:
    """Data of ``ch.cern.dynafed.copy.started``."""
    return {"job_id": job_id, "strategy": strategy, "total": total, "bytes": bytes_done,
            "resumed": resumed, "source": source.to_json(), "destination": destination.to_json(), **extra}


def failed_data(*, job_id: str, problem: Mapping[str, Any], bytes_done: int, total: int | None) -> dict[str, Any]:
    """Data of ``ch.cern.dynafed.copy.failed``: the problem's code, status,
    detail and retryable flag, and how far the job got."""
    return {"job_id": job_id, "code": problem.get("code"), "status": problem.get("status"),
            "title": problem.get("title"), "detail": problem.get("detail"),
            "retryable": problem.get("retryable"), "bytes": bytes_done, "total": total}


def error_line(job_id: str, problem: Mapping[str, Any]) -> dict[str, Any]:
    """The last ndjson line when the job failed after the answer had started
    (the HTTP status is already 200 by then): the problem document with
    ``"type": "error"`` (its URI moves to ``problem_type``)."""
    line = {k: v for k, v in problem.items() if k != "type"}
    return {"type": LINE_ERROR, "job_id": job_id, "problem_type": problem.get("type"), **line}


@dataclasses.dataclass(frozen=True)
class CleanupRequest:
    """Abort multipart uploads in one bucket initiated more than ``older_than_s`` ago."""

    store: str
    bucket: str
    older_than_s: float
    prefix: str = ""
    dry_run: bool = False


OLDER_THAN = Number(minimum=0)
CLEANUP = Body({"store": fields.STORE, "bucket": fields.BUCKET, "older_than_s": OLDER_THAN,
                        "prefix": fields.PREFIX, "dry_run": Flag()}, required=("bucket", "older_than_s"))


def parse_cleanup_request(body: Any) -> CleanupRequest:
    """Validate a ``POST /cleanup`` body (raises ContractViolation)."""
    body = fields.require_mapping(body, "request body")
    fields.reject_unknown(body, CLEANUP.names, "cleanup request")
    older = body.get("older_than_s")
    if not OLDER_THAN.accepts(older):
        raise fields.invalid("field 'older_than_s' must be a number of seconds >= 0")
    prefix = body.get("prefix", fields.PREFIX.default)
    if not fields.PREFIX.accepts(prefix):
        raise fields.invalid("field 'prefix' must be a string of at most 1024 bytes")
    return CleanupRequest(store=fields.store_name(body), bucket=fields.bucket_name(body),
                          older_than_s=float(older), prefix=prefix,
                          dry_run=fields.boolean(body, "dry_run", False))
