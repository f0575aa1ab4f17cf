"""The one problem+json (RFC 9457) renderer of the three web faces.

The functions (``functions.runtime.errors.problem``), the gateway
(``dynafed_client.gateway.app``) and the event receiver
(``dynafed_client.events.app``) each turn their own errors into a stable
:class:`~functions.contract.errors.ErrorCode`, a status, a title and a
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

from functions.contract.errors import ErrorCode

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


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
