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

from dynafed_contract import fields

MAX_HEADERS = 32
MAX_HEADER_VALUE = 8192
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
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
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
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


#: a grid proxy (certificate chain + key) is a few KiB; the whole request body is capped at 64 KiB
MAX_CERTIFICATE_BYTES = 32 * 1024
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")
_PEM_KEY = re.compile(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[A-Za-z0-9+/=\s]+"
                      r"-----END (?:RSA |EC )?PRIVATE KEY-----")


def parse_client_certificate(value: Any, what: str) -> str | None:
    """Validate an X.509 client credential for a URL: PEM text holding at
    least one certificate and one unencrypted private key (a grid proxy file
    as Dynafed delegates it, or a certificate + key). A secret: the message
    never quotes it."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value.encode("utf-8", "replace")) > MAX_CERTIFICATE_BYTES:
        raise fields.invalid(f"{what} x509 must be PEM text of at most {MAX_CERTIFICATE_BYTES} bytes")
    if not _PEM_CERT.search(value) or not _PEM_KEY.search(value):
        raise fields.invalid(f"{what} x509 must hold a PEM certificate and an unencrypted PEM private key")
    return value
