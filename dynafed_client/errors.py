"""The client's exception tree, and the one place foreign errors are translated.

::

    ClientError                     every error the library raises
    ├── ConfigError                 no URL for a function, bad state file, bad reference
    ├── TransportError              no HTTP answer at all (retryable)
    │   ├── ConnectError            refused / DNS / connect timeout: cold start, scale from zero
    │   └── ReadTimeoutError        the function accepted the request but went silent
    ├── ProtocolError               an answer that breaks the contract (not JSON, stream cut
    │                               before its result line, …)
    └── FunctionError               a problem+json answer (``code``, ``status``, ``retryable``, ``detail``)
        ├── RequestError            4xx the caller can fix: INVALID_REQUEST, UNKNOWN_ALGORITHM,
        │   │                       UNKNOWN_STORE, PAYLOAD_TOO_LARGE, …
        │   ├── UnauthorizedError   UNAUTHORIZED
        │   ├── NotAllowedError     STORE_NOT_ALLOWED, SOURCE_NOT_ALLOWED
        │   └── TooManyRequestsError TOO_MANY_REQUESTS (retryable)
        ├── NotFoundError           NO_SUCH_BUCKET, NO_SUCH_OBJECT, NOT_FOUND
        ├── ConflictError           DESTINATION_EXISTS, JOB_ID_CONFLICT, SOURCE_CHANGED
        ├── IntegrityError          CHECKSUM_MISMATCH, OBJECT_TOO_LARGE
        └── ServerError             5xx: INTERNAL, UPSTREAM_ERROR, UPSTREAM_UNAVAILABLE, SHUTTING_DOWN

:func:`from_response` turns an HTTP error answer (problem+json or not) into
this tree, :func:`from_requests_exception` does the same for ``requests``
exceptions. Nothing else in the library maps foreign errors.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dynafed_contract.errors import ErrorCode

PROBLEM_JSON = "application/problem+json"


class ClientError(Exception):
    """Base of every error raised by ``dynafed_client``."""

    #: whether sending the same request again may succeed
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ClientError):
    """The client is not configured for what was asked (missing URL, bad state file)."""


class TransportError(ClientError):
    """The function gave no HTTP answer."""

    retryable = True

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError):
    """Connection refused, reset before an answer, DNS failure or connect timeout."""


class ReadTimeoutError(TransportError):
    """Connected, but no byte arrived within the read timeout."""


class CopyCancelled(ClientError):
    """The caller cancelled the copy (e.g. the gateway's COPY client hung up).
    The function was told by closing its stream: a push deletes what it wrote,
    a streamed copy keeps its checkpoint for a re-post with the same job id."""


class ProtocolError(ClientError):
    """An answer that does not follow the wire contract."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FunctionError(ClientError):
    """A function answered with an error (problem+json, RFC 9457).

    ``code`` is the stable machine code (a string, normally an
    :class:`~dynafed_contract.errors.ErrorCode` value); switch on it, never
    on ``title`` or ``detail``.
    """

    def __init__(self, *, code: str, status: int, detail: str, title: str = "",
                 retryable: bool = False, retry_after: float | None = None,
                 problem: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code} ({status}): {detail}" if detail else f"{code} ({status})")
        self.code = code
        self.status = status
        self.detail = detail
        self.title = title
        self.retryable = retryable
        self.retry_after = retry_after
        self.problem: dict[str, Any] = dict(problem or {})


class RequestError(FunctionError):
    """The request was rejected; fix it before sending it again."""


class UnauthorizedError(RequestError):
    """Missing or wrong bearer token."""


class NotAllowedError(RequestError):
    """The store or source is not allowed for this caller/function."""


class TooManyRequestsError(RequestError):
    """The function is saturated; retry later (honour ``retry_after``)."""


class NotFoundError(FunctionError):
    """The bucket or object does not exist."""


class ConflictError(FunctionError):
    """The destination exists, or the source changed while being read."""


class IntegrityError(FunctionError):
    """A checksum did not match, or the object is too large for the operation."""


class ServerError(FunctionError):
    """The function or its storage failed (5xx)."""


_BY_CODE: dict[str, type[FunctionError]] = {
    ErrorCode.UNAUTHORIZED.value: UnauthorizedError,
    ErrorCode.STORE_NOT_ALLOWED.value: NotAllowedError,
    ErrorCode.SOURCE_NOT_ALLOWED.value: NotAllowedError,
    ErrorCode.TOO_MANY_REQUESTS.value: TooManyRequestsError,
    ErrorCode.NO_SUCH_BUCKET.value: NotFoundError,
    ErrorCode.NO_SUCH_OBJECT.value: NotFoundError,
    ErrorCode.NOT_FOUND.value: NotFoundError,
    ErrorCode.DESTINATION_EXISTS.value: ConflictError,
    ErrorCode.JOB_ID_CONFLICT.value: ConflictError,
    ErrorCode.SOURCE_CHANGED.value: ConflictError,
    ErrorCode.CHECKSUM_MISMATCH.value: IntegrityError,
    ErrorCode.OBJECT_TOO_LARGE.value: IntegrityError,
    # a transfer coding gunicorn does not implement: the request's fault, whatever its 5xx status
    ErrorCode.NOT_IMPLEMENTED.value: RequestError,
}

# code to use when an error answer carries no problem document
_CODE_FOR_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.INVALID_REQUEST, 401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.STORE_NOT_ALLOWED,
    404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED, 408: ErrorCode.REQUEST_TIMEOUT,
    409: ErrorCode.DESTINATION_EXISTS,
    412: ErrorCode.SOURCE_CHANGED, 413: ErrorCode.PAYLOAD_TOO_LARGE, 414: ErrorCode.URI_TOO_LONG,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE, 417: ErrorCode.EXPECTATION_FAILED, 422: ErrorCode.CHECKSUM_MISMATCH,
    429: ErrorCode.TOO_MANY_REQUESTS, 431: ErrorCode.HEADERS_TOO_LARGE, 500: ErrorCode.INTERNAL,
    501: ErrorCode.NOT_IMPLEMENTED, 502: ErrorCode.UPSTREAM_ERROR,
    503: ErrorCode.UPSTREAM_UNAVAILABLE, 504: ErrorCode.UPSTREAM_UNAVAILABLE,
}


def _class_for(code: str, status: int) -> type[FunctionError]:
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status >= 500 or status == 0:
        return ServerError
    return RequestError


def from_problem(problem: Mapping[str, Any], *, status: int | None = None,
                 retry_after: float | None = None) -> FunctionError:
    """The exception for a problem document (an error answer, or an ndjson
    ``{"type": "error", ...}`` line)."""
    raw_status = problem.get("status", status)
    try:
        st = int(raw_status) if raw_status is not None else int(status or 500)
    except (TypeError, ValueError):
        st = int(status or 500)
    fallback = _CODE_FOR_STATUS.get(st, ErrorCode.INTERNAL if st >= 500 else ErrorCode.INVALID_REQUEST)
    code = str(problem.get("code") or fallback.value)
    retryable = problem.get("retryable")
    if not isinstance(retryable, bool):
        known = ErrorCode.__members__.get(code)
        retryable = bool(known.retryable) if known is not None else st >= 500 or st == 429
    detail = str(problem.get("detail") or problem.get("title") or "")
    cls = _class_for(code, st)
    return cls(code=code, status=st, detail=detail, title=str(problem.get("title") or ""),
               retryable=retryable, retry_after=retry_after, problem=problem)


def from_response(status: int, headers: Mapping[str, str], body: bytes,
                  *, retry_after: float | None = None) -> FunctionError:
    """The exception for an HTTP error answer. A body that is not problem+json
    (an ingress's HTML 502, a proxy's plain-text 503) still yields the right
    class from the status, with a short excerpt as detail."""
    problem: Mapping[str, Any] | None = None
    try:
        parsed = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        parsed = None
    if isinstance(parsed, dict) and ("code" in parsed or "status" in parsed or "title" in parsed):
        problem = parsed
    if problem is None:
        excerpt = body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
        problem = {"status": status, "detail": f"HTTP {status}" + (f": {excerpt}" if excerpt else "")}
    return from_problem(problem, status=status, retry_after=retry_after)


def from_requests_exception(exc: BaseException, url: str = "") -> ClientError:
    """Map a ``requests``/``urllib3`` exception to the tree (never raises)."""
    import requests

    where = f" ({url})" if url else ""
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, requests.ConnectTimeout):
        return ConnectError(f"connect timeout{where}", url=url)
    if isinstance(exc, requests.ReadTimeout):
        return ReadTimeoutError(f"no answer within the read timeout{where}", url=url)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return ProtocolError(f"response body cut short{where}")
    if isinstance(exc, requests.ConnectionError):
        reason = _root_reason(exc)
        return ConnectError(f"cannot connect{where}: {reason}", url=url)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return ConfigError(f"invalid function URL{where}")
    if isinstance(exc, requests.RequestException):
        return TransportError(f"{type(exc).__name__}{where}", url=url)
    if isinstance(exc, ConnectionError | TimeoutError):
        return ConnectError(f"{type(exc).__name__}{where}", url=url)
    return ClientError(f"unexpected {type(exc).__name__}{where}")


def _root_reason(exc: BaseException) -> str:
    # requests wraps urllib3 wraps socket errors; the innermost says what happened
    seen = exc
    while True:
        nxt = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen or not isinstance(nxt, BaseException):
            break
        seen = nxt
    text = str(seen)
    for marker in ("Connection refused", "Name or service not known", "timed out", "reset by peer"):
        if marker in text:
            return marker
    return type(seen).__name__
