"""The gateway's errors: an HTTP status and a one-line reason.

::

    GatewayError            status + reason (rendered as text/plain)
    ├── BadRequest          400  malformed COPY (both/neither Source and Destination, bad scheme)
    ├── Unauthorized        401  missing/wrong bearer token (when the gateway requires one)
    ├── Forbidden           403  store not exposed, remote source refused us, push to a non-store
    ├── NotFound            404  unknown store, missing bucket/object/source
    ├── MethodNotAllowed    405
    ├── Conflict            409  an earlier COPY of the same job is still stopping
    ├── PreconditionFailed  412  ``Overwrite: F`` and the destination exists
    ├── PayloadTooLarge     413  a PUT/MOVE larger than the gateway takes
    ├── BadGateway          502  the storage or a function answered with an error
    └── Unavailable         503  the storage or a function cannot be reached

:func:`from_client_error` and :func:`from_botocore` are the only places
foreign exceptions become these.
"""
from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """An error answered with ``status`` before any body was sent."""

    status = 500

    def __init__(self, reason: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.headers = dict(headers or {})


class BadRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401


class Forbidden(GatewayError):
    status = 403


class NotFound(GatewayError):
    status = 404


class MethodNotAllowed(GatewayError):
    status = 405


class Conflict(GatewayError):
    status = 409


class PreconditionFailed(GatewayError):
    status = 412


class PayloadTooLarge(GatewayError):
    status = 413


class BadGateway(GatewayError):
    status = 502


class Unavailable(GatewayError):
    status = 503


def from_client_error(exc: BaseException) -> GatewayError:
    """Map a ``dynafed_client`` exception (a function's answer) to a gateway error."""
    from dynafed_client import errors as ce

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
