"""Structured JSON logs carrying the Knative identity and the request id."""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from dynafed_runtime.errors import scrub

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, revision: str) -> None:
        super().__init__()
        self.service = service
        self.revision = revision

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            # exception texts and messages may quote presigned URLs: scrub them here,
            # the one place every log line passes through
            "msg": scrub(record.getMessage()),
            "service": self.service,
            "revision": self.revision,
            "request_id": request_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            # Tracebacks stay in the server log, never in responses.
            doc["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            doc["exc"] = scrub(self.formatException(record.exc_info))
        # extra fields (detail, object names, ...) pass through the scrubber as well
        return scrub(json.dumps(doc, default=str))


def configure_logging(service: str, revision: str, level: str = "INFO") -> None:
    """Send every log record to stderr as one JSON line (idempotent)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_dynafed_fn", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._dynafed_fn = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter(service, revision))
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
