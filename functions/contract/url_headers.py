"""Request headers that travel with a URL source or destination (pure data).

A URL endpoint may carry the headers its host needs (``Authorization`` from a
client's ``TransferHeaderAuthorization``, a macaroon, a site-specific header).
They are credentials: sent only to that URL's own host, never logged, never
echoed in errors, events, results or metrics (``to_json`` of the endpoint
drops them). Names are HTTP tokens; hop-by-hop and framing headers are
refused because the copy function sets those itself.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from functions.contract import fields

MAX_HEADERS = 32
MAX_HEADER_VALUE = 8192
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
#: set by the transport or meaningless across hops: a caller must not choose them
FORBIDDEN = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
                       "keep-alive", "proxy-authorization", "proxy-connection", "trailer", "expect",
                       "range", "if-match", "if-none-match", "if-unmodified-since", "content-range"})


def parse_headers(value: Any, what: str) -> dict[str, str]:
    """Validate ``{"Name": "value", ...}`` (raises ContractViolation; the
    message names the header, never its value)."""
    if value is None:
        return {}
    headers = fields.require_mapping(value, f"{what} headers")
    if len(headers) > MAX_HEADERS:
        raise fields.invalid(f"{what} carries more than {MAX_HEADERS} headers")
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, raw in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise fields.invalid(f"{what} header name {str(name)[:40]!r} is not an HTTP token")
        if name.lower() in FORBIDDEN:
            raise fields.invalid(f"{what} header {name!r} is set by the copy function itself")
        if name.lower() in seen:
            raise fields.invalid(f"{what} header {name!r} is given twice")
        if not isinstance(raw, str) or len(raw) > MAX_HEADER_VALUE \
                or any(ord(c) < 0x20 and c != "\t" for c in raw) or "\x7f" in raw:
            raise fields.invalid(f"{what} header {name!r} must be a printable string of at most "
                                 f"{MAX_HEADER_VALUE} characters")
        seen.add(name.lower())
        out[name] = raw
    return out


def header_names(headers: Mapping[str, str]) -> list[str]:
    """What may be shown of headers: their names, sorted."""
    return sorted(headers)
