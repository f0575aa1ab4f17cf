"""Redaction of credentials from the client side's logs (gateway, CLI, hooks).

At DEBUG, botocore logs every request it sends with its headers — the SigV4
``Authorization: AWS4-HMAC-SHA256 Credential=<access key>/…, Signature=…``,
``X-Amz-Security-Token`` — and ``botocore.auth`` logs the signature itself.
:func:`install` adds :class:`RedactingFilter` to the root logger's handlers
(a filter on a logger would not see records from child loggers such as
``botocore.endpoint``): records of ``botocore.auth`` are dropped, and every
other message has authorization values, signatures, credentials and tokens
replaced by ``REDACTED`` before it is formatted.
"""
from __future__ import annotations

import logging
import re
from typing import IO

__all__ = ["RedactingFilter", "configure", "install", "redact"]

#: ``Authorization: <scheme> <value>`` in header dumps, dict reprs and JSON
_AUTHORIZATION = re.compile(
    r"""((?:Proxy-)?Authorization['"]?\s*[:=]\s*(?:b?['"])?)[^'"\r\n]+""", re.IGNORECASE)
#: signed-URL and SigV4 parameters, security tokens, bearer tokens
_SECRET_PARAMETER = re.compile(
    r"""((?:X-Amz-(?:Signature|Credential|Security-Token)|X-Goog-(?:Signature|Credential)|Signature|Credential"""
    r"""|AWSAccessKeyId|sig|x-amz-security-token['"]?\s*:\s*(?:b?['"])?)=?)[^&\s'",]+""", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
#: loggers whose records are nothing but signing material
_DROPPED = ("botocore.auth",)


def redact(text: str) -> str:
    """``text`` with credentials replaced by REDACTED."""
    text = _AUTHORIZATION.sub(r"\1REDACTED", text)
    text = _SECRET_PARAMETER.sub(r"\1REDACTED", text)
    return _BEARER.sub(r"\1REDACTED", text)


class RedactingFilter(logging.Filter):
    """Drops signing records, redacts the message of every other one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_DROPPED):
            return False
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of ``logger`` (default: the root logger), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def configure(level: str | int, stream: IO[str], fmt: str) -> None:
    """``logging.basicConfig`` for an entry point, with the redaction installed."""
    logging.basicConfig(level=level.upper() if isinstance(level, str) else level, stream=stream, format=fmt)
    install()
