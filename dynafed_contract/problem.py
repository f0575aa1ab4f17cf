"""The one problem+json (RFC 9457) renderer of the three web faces.

The functions (``dynafed_runtime.errors.problem``), the gateway
(``dynafed_client.gateway.app``) and the event receiver
(``dynafed_client.events.app``) each turn their own errors into a stable
:class:`~dynafed_contract.errors.ErrorCode`, a status, a title and a
detail; :func:`render` builds the body, status and headers from those, so
every face answers the same document shape. Pure: no framework, no I/O
(scrubbing secrets out of a detail is the caller's job: each face knows
what its details may hold).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from dynafed_contract.errors import ErrorCode

MEDIA_TYPE = "application/problem+json"
#: ``type`` of a problem: this base + the code in lower case with dashes
TYPE_BASE = "https://dynafed-fn.invalid/problems/"


@dataclasses.dataclass(frozen=True)
class Problem:
    """A rendered problem: the HTTP status, the JSON body and extra response headers."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()

    def payload(self) -> bytes:
        """The body as sent (UTF-8 JSON)."""
        return json.dumps(self.body).encode()

    def response_headers(self) -> list[tuple[str, str]]:
        """Content-Type and Content-Length of :meth:`payload`, then the extra headers."""
        return [("Content-Type", MEDIA_TYPE), ("Content-Length", str(len(self.payload()))), *self.headers]


def render(code: ErrorCode, detail: str, *, status: int | None = None, title: str | None = None,
           retryable: bool | None = None, instance: str | None = None,
           headers: Mapping[str, str] | None = None) -> Problem:
    """The problem for ``code``: ``status``/``retryable`` default to the code's, ``title`` to the
    status's reason phrase; a face whose status line differs from the code's (the gateway's
    WebDAV 412) passes its own ``status`` so body and status line agree."""
    status = code.status if status is None else status
    body: dict[str, Any] = {
        "type": TYPE_BASE + code.value.lower().replace("_", "-"),
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
        "code": code.value,
        "retryable": code.retryable if retryable is None else retryable,
    }
    if instance:
        body["instance"] = instance
    return Problem(status=status, body=body, headers=tuple((headers or {}).items()))


#: the status a server answers by itself, before any app (gunicorn's ``Worker.handle_error``:
#: bad request line or header 400, request line over its limit 414, an ``Expect`` it does not
#: meet 417, headers over their limits 431, a transfer coding it lacks 501) -> the stable code;
#: any other 4xx is INVALID_REQUEST, 5xx INTERNAL
SERVER_REFUSALS = {400: ErrorCode.INVALID_REQUEST, 414: ErrorCode.URI_TOO_LONG, 417: ErrorCode.EXPECTATION_FAILED,
                   431: ErrorCode.HEADERS_TOO_LARGE, 501: ErrorCode.NOT_IMPLEMENTED}


def refusal_code(status: int) -> ErrorCode:
    """The code of a server's own refusal with ``status`` (:data:`SERVER_REFUSALS`)."""
    return SERVER_REFUSALS.get(status, ErrorCode.INVALID_REQUEST if status < 500 else ErrorCode.INTERNAL)


def http_message(problem: Problem, reason: str) -> bytes:
    """The whole HTTP/1.1 response of ``problem``, closing the connection (for a server
    answering before any app, on a connection it will not read further)."""
    payload = problem.payload()
    head = (f"HTTP/1.1 {problem.status} {reason}\r\nConnection: close\r\nContent-Type: {MEDIA_TYPE}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode("latin-1") + payload


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
