"""The exception tree, and the one place foreign errors are translated.

::

    FunctionError                 (code, status, retryable: from ErrorCode)
    ├── RequestRejected           4xx the caller can fix
    │   ├── InvalidRequest, UnknownAlgorithm, UnknownStore, Unauthorized,
    │   ├── StoreNotAllowed, SourceNotAllowed, PayloadTooLarge, TooManyRequests,
    │   ├── EndpointNotFound, MethodNotAllowed, UnsupportedMediaType, RequestTimeout
    │   └── UriTooLong, ExpectationFailed, HeadersTooLarge, NotImplementedByServer (gunicorn's own)
    ├── NotFoundError             NoSuchBucket, NoSuchObject
    ├── ConflictError             DestinationExists, JobIdConflict, SourceChanged
    ├── IntegrityError            ChecksumMismatch, ObjectTooLarge
    ├── UpstreamError             UpstreamUnavailable (retryable)
    ├── ShuttingDown              503, retryable: the worker is draining
    └── InternalError             anything unexpected (detail never shown)

Every ``ErrorCode`` has exactly one class here (``error_for``), so a problem's
``title`` always agrees with its ``code``.

``translate(exc)`` turns botocore / requests / Werkzeug / contract exceptions
into this tree; ``problem(exc)`` renders the RFC 9457 body. Nothing else in the
code base maps foreign exceptions.
"""
from __future__ import annotations

import re
from typing import Any

from dynafed_contract.errors import ContractViolation, ErrorCode
from dynafed_contract.problem import render


class FunctionError(Exception):
    """Base of every error a function reports to its caller."""

    code: ErrorCode = ErrorCode.INTERNAL
    title = "Internal error"

    def __init__(self, detail: str, *, code: ErrorCode | None = None, retryable: bool | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.detail = detail
        self.retryable = self.code.retryable if retryable is None else retryable
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return self.code.status


class RequestRejected(FunctionError):
    code = ErrorCode.INVALID_REQUEST
    title = "Invalid request"


class InvalidRequest(RequestRejected):
    pass


class UnknownAlgorithm(RequestRejected):
    code = ErrorCode.UNKNOWN_ALGORITHM
    title = "Unknown checksum algorithm"


class UnknownStore(RequestRejected):
    code = ErrorCode.UNKNOWN_STORE
    title = "Unknown store"


class Unauthorized(RequestRejected):
    code = ErrorCode.UNAUTHORIZED
    title = "Unauthorized"


class StoreNotAllowed(RequestRejected):
    code = ErrorCode.STORE_NOT_ALLOWED
    title = "Store not allowed"


class SourceNotAllowed(RequestRejected):
    code = ErrorCode.SOURCE_NOT_ALLOWED
    title = "Source not allowed"


class PayloadTooLarge(RequestRejected):
    code = ErrorCode.PAYLOAD_TOO_LARGE
    title = "Request body too large"


class TooManyRequests(RequestRejected):
    code = ErrorCode.TOO_MANY_REQUESTS
    title = "Too many requests"


class EndpointNotFound(RequestRejected):
    code = ErrorCode.NOT_FOUND
    title = "No such endpoint"


class MethodNotAllowed(RequestRejected):
    code = ErrorCode.METHOD_NOT_ALLOWED
    title = "Method not allowed"


class UnsupportedMediaType(RequestRejected):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE
    title = "Unsupported media type"


class RequestTimeout(RequestRejected):
    code = ErrorCode.REQUEST_TIMEOUT
    title = "Request timeout"


class UriTooLong(RequestRejected):
    code = ErrorCode.URI_TOO_LONG
    title = "Request line too long"


class ExpectationFailed(RequestRejected):
    code = ErrorCode.EXPECTATION_FAILED
    title = "Expectation failed"


class HeadersTooLarge(RequestRejected):
    code = ErrorCode.HEADERS_TOO_LARGE
    title = "Request header fields too large"


class NotImplementedByServer(RequestRejected):
    code = ErrorCode.NOT_IMPLEMENTED
    title = "Not implemented"


class NotFoundError(FunctionError):
    code = ErrorCode.NO_SUCH_OBJECT
    title = "Not found"


class NoSuchBucket(NotFoundError):
    code = ErrorCode.NO_SUCH_BUCKET
    title = "No such bucket"


class NoSuchObject(NotFoundError):
    code = ErrorCode.NO_SUCH_OBJECT
    title = "No such object"


class ConflictError(FunctionError):
    code = ErrorCode.DESTINATION_EXISTS
    title = "Conflict"


class DestinationExists(ConflictError):
    title = "Destination exists"


class JobIdConflict(ConflictError):
    code = ErrorCode.JOB_ID_CONFLICT
    title = "Job id names another copy"


class SourceChanged(ConflictError):
    code = ErrorCode.SOURCE_CHANGED
    title = "Source changed during the operation"


class IntegrityError(FunctionError):
    code = ErrorCode.CHECKSUM_MISMATCH
    title = "Checksum mismatch"


class ChecksumMismatch(IntegrityError):
    pass


class ObjectTooLarge(IntegrityError):
    code = ErrorCode.OBJECT_TOO_LARGE
    title = "Object too large for this operation"


class UpstreamError(FunctionError):
    code = ErrorCode.UPSTREAM_ERROR
    title = "Storage error"


class UpstreamUnavailable(UpstreamError):
    code = ErrorCode.UPSTREAM_UNAVAILABLE
    title = "Storage unavailable"


class ShuttingDown(FunctionError):
    code = ErrorCode.SHUTTING_DOWN
    title = "Shutting down"


class InternalError(FunctionError):
    pass


_BY_CODE: dict[ErrorCode, type[FunctionError]] = {
    ErrorCode.INVALID_REQUEST: InvalidRequest,
    ErrorCode.UNKNOWN_ALGORITHM: UnknownAlgorithm,
    ErrorCode.UNKNOWN_STORE: UnknownStore,
    ErrorCode.UNAUTHORIZED: Unauthorized,
    ErrorCode.STORE_NOT_ALLOWED: StoreNotAllowed,
    ErrorCode.SOURCE_NOT_ALLOWED: SourceNotAllowed,
    ErrorCode.NOT_FOUND: EndpointNotFound,
    ErrorCode.METHOD_NOT_ALLOWED: MethodNotAllowed,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: UnsupportedMediaType,
    ErrorCode.URI_TOO_LONG: UriTooLong,
    ErrorCode.EXPECTATION_FAILED: ExpectationFailed,
    ErrorCode.HEADERS_TOO_LARGE: HeadersTooLarge,
    ErrorCode.NOT_IMPLEMENTED: NotImplementedByServer,
    ErrorCode.PAYLOAD_TOO_LARGE: PayloadTooLarge,
    ErrorCode.TOO_MANY_REQUESTS: TooManyRequests,
    ErrorCode.NO_SUCH_BUCKET: NoSuchBucket,
    ErrorCode.NO_SUCH_OBJECT: NoSuchObject,
    ErrorCode.DESTINATION_EXISTS: DestinationExists,
    ErrorCode.JOB_ID_CONFLICT: JobIdConflict,
    ErrorCode.REQUEST_TIMEOUT: RequestTimeout,
    ErrorCode.SOURCE_CHANGED: SourceChanged,
    ErrorCode.CHECKSUM_MISMATCH: ChecksumMismatch,
    ErrorCode.OBJECT_TOO_LARGE: ObjectTooLarge,
    ErrorCode.UPSTREAM_ERROR: UpstreamError,
    ErrorCode.UPSTREAM_UNAVAILABLE: UpstreamUnavailable,
    ErrorCode.SHUTTING_DOWN: ShuttingDown,
    ErrorCode.INTERNAL: InternalError,
}


def error_for(code: ErrorCode, detail: str, **kwargs: Any) -> FunctionError:
    """The exception class of ``code``, instantiated."""
    cls = _BY_CODE.get(code, FunctionError)
    return cls(detail, code=code, **kwargs)


# --- translation of foreign exceptions (the only place) ---------------------

_S3_NOT_FOUND_OBJECT = {"NoSuchKey", "404", "NotFound"}
_S3_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "503", "RequestTimeout", "RequestTimeTooSkewed",
                   "InternalError", "500", "Throttling", "ThrottlingException"}
_S3_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
_S3_PRECONDITION = {"PreconditionFailed", "412"}
_S3_BAD_NAME = {"KeyTooLongError", "InvalidBucketName", "InvalidObjectName", "XMinioInvalidObjectName"}
#: query parameters and header fields that carry signatures or credentials: S3
#: SigV4 and SigV2 presigned URLs (``Signature=`` is what Ceph RGW and older
#: tools hand out), GCS, SAS-style ``sig=``, and Authorization header values
_SECRETISH = re.compile(
    r"(?<![\w-])((?:X-Amz-(?:Signature|Credential|Security-Token)|X-Goog-(?:Signature|Credential)"
    r"|Signature|Credential|AWSAccessKeyId|sig)=)[^&\s\"',]+", re.I)
_AUTH_VALUE = re.compile(r"(Authorization[\"']?\s*[:=]\s*[\"']?(?:(?:Bearer|Basic|AWS4-HMAC-SHA256|AWS)\s+)?)"
                         r"[^\s\"',]+", re.I)
#: configured secret values (store keys, session tokens, the auth token), in
#: the forms they can take in text: raw, JSON-escaped, URL-encoded
_SECRET_VALUES: set[str] = set()
_MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words


def register_secrets(*values: str | None) -> None:
    """Redact these exact values from everything ``scrub`` cleans (process-wide).

    The app factory registers the configured credentials, so a secret quoted
    by an unexpected exception is redacted from logs and problem details too.
    """
    import json
    from urllib.parse import quote

    for value in values:
        if value and len(value) >= _MIN_SECRET_LENGTH:
            _SECRET_VALUES.update({value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value)})


def scrub(text: str) -> str:
    """Remove presigned-URL signatures and credentials from text meant for callers/logs."""
    text = _AUTH_VALUE.sub(r"\1REDACTED", _SECRETISH.sub(r"\1REDACTED", text))
    for value in _SECRET_VALUES:
        if value in text:
            text = text.replace(value, "REDACTED")
    return text


def translate(exc: BaseException, *, what: str = "") -> FunctionError:
    """Map any exception to the tree. ``what`` names the object concerned
    (e.g. ``"s3://bucket/key"``) for the detail message."""
    if isinstance(exc, FunctionError):
        return exc
    if isinstance(exc, ContractViolation):
        return error_for(exc.code, exc.detail)
    try:
        import botocore.exceptions as bce
    except ImportError:  # pragma: no cover - runtime always has botocore
        bce = None
    if bce is not None:
        if isinstance(exc, bce.ClientError):
            return _translate_client_error(exc, what)
        # the bases, not a list of leaves: SSLError and ProxyConnectionError are
        # ConnectionError subclasses, ConnectionClosedError/ReadTimeoutError HTTPClientError ones
        if isinstance(exc, (bce.ConnectionError, bce.HTTPClientError, bce.ResponseStreamingError,
                            bce.IncompleteReadError)):
            return UpstreamUnavailable(f"storage did not answer{_for(what)}")
        if isinstance(exc, bce.NoCredentialsError):
            return InternalError("store credentials are not configured")
        if isinstance(exc, bce.BotoCoreError):
            return UpstreamError(f"storage client error{_for(what)}: {type(exc).__name__}")
    try:
        import requests
    except ImportError:  # pragma: no cover
        requests = None  # type: ignore[assignment]
    if requests is not None and isinstance(exc, requests.RequestException):
        if isinstance(exc, requests.exceptions.SSLError):
            # not retried: a certificate nobody trusts stays untrusted (runtime/trust.py)
            return UpstreamError(f"TLS with the source failed{_for(what)}: {tls_reason(exc)}; a source signed "
                                 "by a site or grid CA needs DYNAFED_FN_CA_BUNDLE or X509_CERT_DIR", retryable=False)
        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return UpstreamUnavailable(f"source did not answer{_for(what)}")
        response = getattr(exc, "response", None)
        if response is not None:
            return translate_http_status(response.status_code, what)
        return UpstreamError(f"source error{_for(what)}")
    try:
        from werkzeug.exceptions import HTTPException
    except ImportError:  # pragma: no cover
        HTTPException = None  # type: ignore[assignment,misc]
    if HTTPException is not None and isinstance(exc, HTTPException):
        return _translate_werkzeug(exc)
    try:
        import urllib3.exceptions as u3
    except ImportError:  # pragma: no cover
        u3 = None  # type: ignore[assignment]
    if u3 is not None and isinstance(exc, (u3.ProtocolError, u3.ReadTimeoutError, u3.IncompleteRead)):
        return UpstreamUnavailable(f"connection to storage failed{_for(what)}")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return UpstreamUnavailable(f"connection failed{_for(what)}")
    return InternalError("unexpected internal error")


#: the reasons OpenSSL gives for a refused certificate (nothing else of the message is shown)
_TLS_REASON = re.compile(r"certificate verify failed: [a-z0-9 ,-]{1,80}|hostname mismatch|wrong version number"
                         r"|handshake failure|certificate required|unknown ca|certificate has expired")


def tls_reason(exc: BaseException) -> str:
    """A short, secret-free reason for a TLS failure (``certificate verify
    failed: unable to get local issuer certificate``, ``hostname mismatch``)."""
    match = _TLS_REASON.search(str(exc))
    return match.group(0).strip() if match else "TLS error"


def translate_http_status(status: int, what: str = "") -> FunctionError:
    """An error status from an http(s) source."""
    if status == 404 or status == 410:
        return NoSuchObject(f"source not found{_for(what)}")
    if status in (401, 403):
        return SourceNotAllowed(f"source refused access ({status}){_for(what)}")
    if status == 412:
        return SourceChanged(f"source changed{_for(what)}")
    if status in (429, 500, 502, 503, 504):
        return UpstreamUnavailable(f"source unavailable ({status}){_for(what)}")
    return UpstreamError(f"source answered {status}{_for(what)}")


def _for(what: str) -> str:
    return f" for {scrub(what)}" if what else ""


def _translate_client_error(exc: Any, what: str) -> FunctionError:
    error = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code == "NoSuchBucket":
        return NoSuchBucket(f"no such bucket{_for(what)}")
    if code in _S3_NOT_FOUND_OBJECT or status == 404:
        return NoSuchObject(f"no such object{_for(what)}")
    if code in _S3_PRECONDITION or status == 412:
        return SourceChanged(f"object changed while being read{_for(what)}")
    if code in _S3_DENIED or status == 403:
        return StoreNotAllowed(f"storage refused access{_for(what)}")
    if code in {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"}:
        return ChecksumMismatch(f"storage reported a checksum mismatch{_for(what)}")
    if code == "EntityTooLarge" or (code == "InvalidRequest" and "size" in str(error.get("Message", "")).lower()):
        return ObjectTooLarge(f"object too large for this operation{_for(what)}")
    if code in _S3_BAD_NAME:
        # the store refuses the name (e.g. SeaweedFS: a path segment over its filer's limit):
        # the caller's to fix, so a 400 that is not retried, never a retryable 502
        return InvalidRequest(f"storage refused the bucket or key name ({code}){_for(what)}")
    if code in _S3_UNAVAILABLE or status >= 500:
        return UpstreamUnavailable(f"storage unavailable ({code or status}){_for(what)}")
    if code == "InvalidRequest":
        # the store refuses the request as such (SeaweedFS answers it to keys with '.'/'..'
        # segments, which the contract refuses first): asking again cannot help
        return UpstreamError(f"storage refused the request ({code}){_for(what)}", retryable=False)
    return UpstreamError(f"storage error {code or status}{_for(what)}")


def _translate_werkzeug(exc: Any) -> FunctionError:
    status = getattr(exc, "code", 500) or 500
    if status == 413:
        return PayloadTooLarge("request body is too large")
    if status == 404:
        return EndpointNotFound("no such endpoint")
    if status == 405:
        # RFC 9110 §15.5.6: a 405 carries Allow (Werkzeug knows the route's methods)
        allowed = sorted(getattr(exc, "valid_methods", None) or ())
        return MethodNotAllowed("method not allowed on this endpoint",
                                headers={"Allow": ", ".join(allowed)} if allowed else None)
    if status == 415:
        return UnsupportedMediaType("unsupported content type")
    if status == 401:
        return Unauthorized("missing or invalid credentials")
    if status == 429:
        return TooManyRequests("too many requests; retry later")
    if 400 <= status < 500:
        return InvalidRequest(f"malformed request ({status})")
    return InternalError("unexpected internal error")


def problem(exc: FunctionError, *, instance: str | None = None) -> dict[str, Any]:
    """RFC 9457 problem body for ``exc`` (never a traceback, never a secret), rendered by the
    contract's one renderer (``dynafed_contract.problem``) that the gateway and receiver use too."""
    return render(exc.code, scrub(exc.detail), status=exc.status, title=exc.title, retryable=exc.retryable,
                  instance=instance).body
