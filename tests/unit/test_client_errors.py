"""problem+json → typed client errors, for every contract error code."""
from __future__ import annotations

import json

import pytest

from dynafed_client import errors as e
from dynafed_contract.errors import ErrorCode

EXPECTED = {
    "INVALID_REQUEST": e.RequestError, "UNKNOWN_ALGORITHM": e.RequestError, "UNKNOWN_STORE": e.RequestError,
    "UNAUTHORIZED": e.UnauthorizedError, "STORE_NOT_ALLOWED": e.NotAllowedError,
    "SOURCE_NOT_ALLOWED": e.NotAllowedError, "NO_SUCH_BUCKET": e.NotFoundError,
    "NO_SUCH_OBJECT": e.NotFoundError, "METHOD_NOT_ALLOWED": e.RequestError, "NOT_FOUND": e.NotFoundError,
    "DESTINATION_EXISTS": e.ConflictError, "SOURCE_CHANGED": e.ConflictError, "JOB_ID_CONFLICT": e.ConflictError,
    "REQUEST_TIMEOUT": e.RequestError,
    "PAYLOAD_TOO_LARGE": e.RequestError, "UNSUPPORTED_MEDIA_TYPE": e.RequestError,
    "URI_TOO_LONG": e.RequestError, "EXPECTATION_FAILED": e.RequestError, "HEADERS_TOO_LARGE": e.RequestError,
    "NOT_IMPLEMENTED": e.RequestError,
    "CHECKSUM_MISMATCH": e.IntegrityError, "OBJECT_TOO_LARGE": e.IntegrityError,
    "TOO_MANY_REQUESTS": e.TooManyRequestsError, "INTERNAL": e.ServerError,
    "UPSTREAM_ERROR": e.ServerError, "UPSTREAM_UNAVAILABLE": e.ServerError, "SHUTTING_DOWN": e.ServerError,
}


def test_every_code_is_mapped() -> None:
    assert set(EXPECTED) == {c.value for c in ErrorCode}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_problem_maps_to_class(code: ErrorCode) -> None:
    body = json.dumps({"type": "x", "title": "T", "status": code.status, "detail": "what happened",
                       "code": code.value, "retryable": code.retryable}).encode()
    error = e.from_response(code.status, {"Content-Type": "application/problem+json"}, body, retry_after=2.0)
    assert type(error) is EXPECTED[code.value]
    assert isinstance(error, e.FunctionError) and isinstance(error, e.ClientError)
    assert (error.code, error.status, error.retryable, error.detail) == (code.value, code.status, code.retryable,
                                                                         "what happened")
    assert error.retry_after == 2.0
    assert code.value in str(error)


def test_missing_retryable_falls_back_to_contract_default() -> None:
    error = e.from_problem({"status": 503, "code": "UPSTREAM_UNAVAILABLE", "detail": "d"})
    assert error.retryable is True
    assert e.from_problem({"status": 404, "code": "NO_SUCH_OBJECT"}).retryable is False


@pytest.mark.parametrize("status,cls,code", [
    (502, e.ServerError, "UPSTREAM_ERROR"), (503, e.ServerError, "UPSTREAM_UNAVAILABLE"),
    (404, e.NotFoundError, "NOT_FOUND"), (401, e.UnauthorizedError, "UNAUTHORIZED"),
    (418, e.RequestError, "INVALID_REQUEST"),
])
def test_non_problem_bodies_map_by_status(status: int, cls: type, code: str) -> None:
    error = e.from_response(status, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
    assert type(error) is cls
    assert error.code == code
    assert "Bad Gateway" in error.detail


def test_unknown_code_maps_by_status() -> None:
    assert type(e.from_problem({"status": 409, "code": "NEW_CONFLICT"})) is e.ConflictError
    assert type(e.from_problem({"status": 504, "code": "GATEWAY"})) is e.ServerError


def test_requests_exceptions_translate() -> None:
    import requests

    assert isinstance(e.from_requests_exception(requests.ConnectTimeout("x")), e.ConnectError)
    assert isinstance(e.from_requests_exception(requests.ReadTimeout("x")), e.ReadTimeoutError)
    assert isinstance(e.from_requests_exception(requests.ConnectionError("x")), e.ConnectError)
    assert isinstance(e.from_requests_exception(requests.exceptions.ChunkedEncodingError("x")), e.ProtocolError)
    assert isinstance(e.from_requests_exception(requests.exceptions.MissingSchema("x")), e.ConfigError)
