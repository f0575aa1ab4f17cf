"""Answers of the loopback HTTP fakes built on ``http.server`` (fake
functions, a fake Kubernetes API): one complete response with a body."""
from __future__ import annotations

import json
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any


def send_body(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str,
              headers: Mapping[str, str] | None = None) -> None:
    """``status`` with ``headers``, then Content-Type and Content-Length, and ``data``."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def send_json(handler: BaseHTTPRequestHandler, status: int, document: Any) -> None:
    """``document`` as an application/json body."""
    send_body(handler, status, json.dumps(document).encode(), "application/json")
