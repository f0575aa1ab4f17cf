"""Canary secrets and a capture of everything a function lets out.

The canaries are configured as real credentials (stores config, bearer token)
and planted in presigned URLs; after exercising error paths, every byte the
function produced (responses and their headers, JSON log lines at DEBUG with
tracebacks, CloudEvents sent to the sink, stdout/stderr) is searched for them.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dynafed_runtime.logs import JsonFormatter

ACCESS_KEY = "AKIACANARY7F3K2Q9ZX1"
SECRET_KEY = "canary/SECRET+key/wJalrXUtnFEMI/K7MDENG/bPxRfiCY"
SESSION_TOKEN = "canarySESSIONtokenFwoGZXIvYXdzEJr//////////wEaDM"
AUTH_TOKEN = "canary-bearer-4f1c9a7e2b6d"
#: the signature part of a presigned URL (X-Amz-Signature / Signature / sig)
SIGNATURE = "c4n4ry5164a7e0b2d9f1e8a3b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7"
SECRETS = (SECRET_KEY, SESSION_TOKEN, AUTH_TOKEN, SIGNATURE)
#: fragments long enough to be unmistakable if a secret is cut or re-encoded
FRAGMENTS = tuple(s[i:i + 12] for s in SECRETS for i in (0, len(s) - 12)) + (
    "canary%2FSECRET", "Y2FuYXJ5L1NFQ1JFVC", "c4n4ry5164a7")  # URL-encoded, base64 of the key


def canary_store(endpoint_url: str | None) -> dict[str, Any]:
    return {"endpoint_url": endpoint_url, "region": "us-east-1", "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY, "session_token": SESSION_TOKEN}


def presigned(url: str) -> str:
    """``url`` with the query of an S3 SigV4 presigned URL carrying the canary signature."""
    return (f"{url}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS_KEY}%2F20260101%2Fus-east-1%2Fs3"
            f"%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host"
            f"&X-Amz-Security-Token={SESSION_TOKEN}&X-Amz-Signature={SIGNATURE}")


def presigned_v2(url: str) -> str:
    """An S3 SigV2 presigned URL (still what Ceph RGW and many tools hand out)."""
    return f"{url}?AWSAccessKeyId={ACCESS_KEY}&Expires=1893456000&Signature={SIGNATURE}"


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.append(self.format(record))
        except Exception as exc:  # a formatting failure is itself a finding
            self.sink.append(f"<unformattable record: {exc!r}>")


@dataclass
class Capture:
    """Everything observed leaving the function during a test."""

    logs: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def response(self, response: Any) -> Any:
        """Record a Flask/requests response (status line, headers, body)."""
        headers = getattr(response, "headers", {})
        body = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
        self.responses.append(f"{response.status_code}\n{json.dumps(dict(headers.items()))}\n{body}")
        return response

    def sink(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """A CloudEvents sink transport that records every delivery."""
        self.events.append(f"{url}\n{json.dumps(headers)}\n{body.decode('utf-8', 'replace')}")
        return 202

    def all_text(self) -> str:
        return "\n".join([*self.logs, *self.responses, *self.events, *self.other])

    def leaks(self) -> list[str]:
        text = self.all_text()
        return sorted({f for f in (*SECRETS, *FRAGMENTS) if f in text})

    def assert_clean(self) -> None:
        leaks = self.leaks()
        assert not leaks, f"secret material found in output: {leaks}\n" + "\n".join(
            line for line in self.all_text().splitlines() if any(f in line for f in leaks))[:4000]


def capture_logs(capture: Capture, service: str = "test") -> Iterator[None]:
    """Route every log record through the function's own JSON formatter into ``capture``."""
    root = logging.getLogger()
    handler = _Collect(capture.logs)
    handler.setFormatter(JsonFormatter(service, f"{service}-local"))
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
