"""Errors gunicorn answers itself, as problem+json like every other error.

gunicorn refuses some requests before the app sees them (``Worker.handle_error``
in gunicorn/workers/base.py: a bad request line or header, a request line over
``limit_request_line`` → 414, headers over ``limit_request_fields`` /
``limit_request_field_size`` → 431, an unsupported transfer coding → 501, a bad
chunk) and writes an HTML page with ``gunicorn.util.write_error``.
:func:`write_problem` takes its place (installed in each worker by
``dynafed_runtime.gunicorn.settings``' ``post_worker_init`` hook): the same
status line and ``Connection: close``, an RFC 9457 body from the runtime's one
renderer (``errors.problem``: scrubbed detail, stable ``code``).
"""
from __future__ import annotations

import json
from typing import Any

from dynafed_contract.errors import ErrorCode
from dynafed_contract.problem import refusal_code
from dynafed_runtime import errors

_MAX_DETAIL = 200  # gunicorn quotes the offending line: never echo much of it


def problem_bytes(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP response for one of gunicorn's own errors."""
    code = refusal_code(status)  # the contract's table: the gateway and receiver answer the same
    detail = message[:_MAX_DETAIL] if code is not ErrorCode.INTERNAL else "unexpected internal error"
    body = errors.problem(errors.error_for(code, detail or reason))
    body["status"] = status  # the status line is gunicorn's; the body must agree with it
    payload = json.dumps(body).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode("latin-1") + payload


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for ``gunicorn.util.write_error``."""
    from gunicorn import util

    util.write_nonblock(sock, problem_bytes(int(status_int), str(reason), str(mesg)))


def install(worker: Any = None) -> None:
    """Make gunicorn's error pages problem+json (a ``post_worker_init`` hook)."""
    from gunicorn import util

    util.write_error = write_problem
