"""The gateway's errors: an HTTP status, a stable code and a one-line reason.

Rendered as problem+json by the contract's one renderer
(``dynafed_contract.problem.render``: ``detail`` is the reason), as the
functions and the event receiver answer theirs::

    GatewayError            500 INTERNAL
    ├── BadRequest          400 INVALID_REQUEST       malformed COPY (both/neither Source and Destination, bad scheme)
    ├── Unauthorized        401 UNAUTHORIZED          missing/wrong bearer token (when the gateway requires one)
    ├── Forbidden           403 STORE_NOT_ALLOWED     store not exposed, token scope, push to a non-store
    │   └── SourceForbidden 403 SOURCE_NOT_ALLOWED    a COPY source not allowed, not public, or refusing us
    ├── NotFound            404 NOT_FOUND             unknown store, missing bucket/object/source
    ├── MethodNotAllowed    405 METHOD_NOT_ALLOWED
    ├── Conflict            409 JOB_ID_CONFLICT       an earlier COPY of the same job is still stopping (retryable)
    ├── PreconditionFailed  412 DESTINATION_EXISTS    ``Overwrite: F`` / ``If-None-Match: *`` and it exists
    │                                                 (WebDAV's 412 on the status line and in the body)
    ├── PayloadTooLarge     413 PAYLOAD_TOO_LARGE     a PUT/MOVE larger than the gateway takes
    ├── BadGateway          502 UPSTREAM_ERROR        the storage or a function answered with an error
    └── Unavailable         503 UPSTREAM_UNAVAILABLE  the storage or a function cannot be reached

:func:`from_client_error` and :func:`from_botocore` are the only places
foreign exceptions become these.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dynafed_client import errors as ce
from dynafed_contract.errors import ErrorCode
from dynafed_contract.problem import Problem, render


class GatewayError(Exception):
    """An error answered with ``status`` before any body was sent."""

    status = 500
    code = ErrorCode.INTERNAL
    retryable: bool | None = None  # None: the code's

    def __init__(self, reason: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.headers = dict(headers or {})

    def problem(self) -> Problem:
        """The problem+json answer (status line = body status = :attr:`status`)."""
        return render(self.code, self.reason, status=self.status, retryable=self.retryable, headers=self.headers)


class BadRequest(GatewayError):
    status = 400
    code = ErrorCode.INVALID_REQUEST


class Unauthorized(GatewayError):
    status = 401
    code = ErrorCode.UNAUTHORIZED


class Forbidden(GatewayError):
    status = 403
    code = ErrorCode.STORE_NOT_ALLOWED


class SourceForbidden(Forbidden):
    code = ErrorCode.SOURCE_NOT_ALLOWED


class NotFound(GatewayError):
    status = 404
    code = ErrorCode.NOT_FOUND


class MethodNotAllowed(GatewayError):
    status = 405
    code = ErrorCode.METHOD_NOT_ALLOWED


class Conflict(GatewayError):
    status = 409
    code = ErrorCode.JOB_ID_CONFLICT
    retryable = True  # the earlier COPY is stopping: the same request succeeds later


class PreconditionFailed(GatewayError):
    status = 412
    code = ErrorCode.DESTINATION_EXISTS


class PayloadTooLarge(GatewayError):
    status = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE


class BadGateway(GatewayError):
    status = 502
    code = ErrorCode.UPSTREAM_ERROR


class Unavailable(GatewayError):
    status = 503
    code = ErrorCode.UPSTREAM_UNAVAILABLE


def from_client_error(exc: BaseException) -> GatewayError:
    """Map a ``dynafed_client`` exception (a function's answer) to a gateway error."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ce.NotFoundError):
        return NotFound(exc.detail or "not found")
    if isinstance(exc, ce.NotAllowedError | ce.UnauthorizedError):
        return Forbidden(exc.detail or "not allowed")
    if isinstance(exc, ce.RequestError):
        return BadRequest(exc.detail or "rejected by the function")
    if isinstance(exc, ce.FunctionError):
        return BadGateway(f"{exc.code}: {exc.detail}" if exc.detail else exc.code)
    if isinstance(exc, ce.TransportError):
        return Unavailable("function unreachable")
    if isinstance(exc, ce.ConfigError):
        return Unavailable(f"function not configured: {exc.message}")
    if isinstance(exc, ce.ClientError):
        return BadGateway(exc.message)
    return GatewayError(f"internal error ({type(exc).__name__})")


def from_botocore(exc: BaseException, what: str) -> GatewayError:
    """Map a boto3/botocore exception met while touching ``what``."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    if isinstance(exc, ClientError):
        response: dict[str, Any] = exc.response or {}
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in ("NoSuchKey", "NoSuchBucket", "NotFound", "404") or status == 404:
            return NotFound(f"{what} not found")
        if code in ("AccessDenied", "Forbidden", "403") or status == 403:
            return Forbidden(f"access to {what} denied by the store")
        return BadGateway(f"store error on {what}: {code or status}")
    if isinstance(exc, EndpointConnectionError):
        return Unavailable("store unreachable")
    if isinstance(exc, BotoCoreError):
        return Unavailable(f"store error ({type(exc).__name__})")
    return GatewayError(f"internal error ({type(exc).__name__})")


def found(head: Callable[[], object], what: str) -> bool:
    """Whether ``head`` (a HEAD of an object or a bucket) finds ``what``: False
    on the store's not-found, any other failure raised as :func:`from_botocore` maps it."""
    try:
        head()
    except Exception as exc:
        mapped = from_botocore(exc, what)
        if isinstance(mapped, NotFound):
            return False
        raise mapped from None
    return True
