"""Stable machine error codes and the HTTP status each one maps to.

The runtime's exception tree (``dynafed_runtime.errors``) carries these codes;
clients switch on ``code``, never on ``title`` or ``detail``.
"""
from __future__ import annotations

import enum


class ErrorCode(str, enum.Enum):
    """A machine error code with its HTTP status and default retryability."""

    INVALID_REQUEST = ("INVALID_REQUEST", 400, False)
    UNKNOWN_ALGORITHM = ("UNKNOWN_ALGORITHM", 400, False)
    UNKNOWN_STORE = ("UNKNOWN_STORE", 400, False)
    UNAUTHORIZED = ("UNAUTHORIZED", 401, False)
    STORE_NOT_ALLOWED = ("STORE_NOT_ALLOWED", 403, False)
    SOURCE_NOT_ALLOWED = ("SOURCE_NOT_ALLOWED", 403, False)
    NO_SUCH_BUCKET = ("NO_SUCH_BUCKET", 404, False)
    NO_SUCH_OBJECT = ("NO_SUCH_OBJECT", 404, False)
    METHOD_NOT_ALLOWED = ("METHOD_NOT_ALLOWED", 405, False)
    #: the request's headers or body did not arrive within the read deadline
    REQUEST_TIMEOUT = ("REQUEST_TIMEOUT", 408, True)
    NOT_FOUND = ("NOT_FOUND", 404, False)
    DESTINATION_EXISTS = ("DESTINATION_EXISTS", 409, False)
    #: the job id already names another source -> destination
    JOB_ID_CONFLICT = ("JOB_ID_CONFLICT", 409, False)
    SOURCE_CHANGED = ("SOURCE_CHANGED", 412, True)
    PAYLOAD_TOO_LARGE = ("PAYLOAD_TOO_LARGE", 413, False)
    UNSUPPORTED_MEDIA_TYPE = ("UNSUPPORTED_MEDIA_TYPE", 415, False)
    #: answered by gunicorn itself (dynafed_runtime/gunicorn_errors.py): a request line
    #: over ``limit_request_line``, headers over ``limit_request_fields``/``_field_size``,
    #: an ``Expect`` other than 100-continue, a transfer coding it does not implement
    URI_TOO_LONG = ("URI_TOO_LONG", 414, False)
    EXPECTATION_FAILED = ("EXPECTATION_FAILED", 417, False)
    HEADERS_TOO_LARGE = ("HEADERS_TOO_LARGE", 431, False)
    NOT_IMPLEMENTED = ("NOT_IMPLEMENTED", 501, False)
    CHECKSUM_MISMATCH = ("CHECKSUM_MISMATCH", 422, False)
    OBJECT_TOO_LARGE = ("OBJECT_TOO_LARGE", 422, False)
    TOO_MANY_REQUESTS = ("TOO_MANY_REQUESTS", 429, True)
    INTERNAL = ("INTERNAL", 500, True)
    UPSTREAM_ERROR = ("UPSTREAM_ERROR", 502, True)
    UPSTREAM_UNAVAILABLE = ("UPSTREAM_UNAVAILABLE", 503, True)
    SHUTTING_DOWN = ("SHUTTING_DOWN", 503, True)

    def __new__(cls, code: str, status: int, retryable: bool) -> ErrorCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status  # type: ignore[attr-defined]
        member.retryable = retryable  # type: ignore[attr-defined]
        return member

    status: int
    retryable: bool


class ContractViolation(ValueError):
    """A request that breaks the contract. Raised by the parsers in this
    package; the runtime renders it as problem+json with ``code``."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
