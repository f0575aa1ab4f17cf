"""Request headers that travel with a URL source or destination (pure data).

A URL endpoint may carry the headers its host needs (``Authorization`` from a
client's ``TransferHeaderAuthorization``, a macaroon, a site-specific header).
They are credentials: sent only to that URL's own host, never logged, never
echoed in errors, events, results or metrics (``to_json`` of the endpoint
drops them). Names are HTTP tokens; hop-by-hop and framing headers are
refused because the copy function sets those itself.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynafed_contract import fields
from dynafed_contract.fieldspec import Text, anchored, caseless

MAX_HEADERS = 32
MAX_HEADER_VALUE = 8192
#: a value is printable: no control characters but TAB
HEADER_VALUE = Text(pattern=r"[^\u0000-\u0008\u000a-\u001f\u007f]*", min_length=0, max_length=MAX_HEADER_VALUE)
#: set by the transport or meaningless across hops: a caller must not choose them
FORBIDDEN = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
                       "keep-alive", "proxy-authorization", "proxy-connection", "trailer", "expect",
                       "range", "if-match", "if-none-match", "if-unmodified-since", "content-range"})


#: a header name: an HTTP token (RFC 9110 §5.6.2), none the copy function sets itself
_SET_BY_US = "is set by the copy function itself"
HEADER_NAME = Text(pattern=r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}",
                   refuse=((anchored("|".join(caseless(n) for n in sorted(FORBIDDEN))), _SET_BY_US),))
HEADERS: dict[str, Any] = {
    "type": ["object", "null"], "maxProperties": MAX_HEADERS,
    "description": ("Request headers sent to this URL's host only (e.g. Authorization: Bearer <token>, the "
                    "TransferHeader* set of an HTTP-TPC COPY with the prefix removed). Secrets: never "
                    "followed across a redirect, never logged, never shown in results, errors or events. "
                    "Host, framing, hop-by-hop, Range and If-* headers are refused (the function sets them)."),
    "propertyNames": HEADER_NAME.schema(),
    "additionalProperties": HEADER_VALUE.schema(),
}


def distinct_names(headers: Mapping[str, Any] | None) -> bool:
    """No header given twice (names compare case-insensitively)."""
    names = [name.lower() for name in headers or {}]
    return len(set(names)) == len(names)


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
        problem = HEADER_NAME.problem(name) if isinstance(name, str) else HEADER_NAME.invalid
        if problem is not None and problem != _SET_BY_US:
            raise fields.invalid(f"{what} header name {str(name)[:40]!r} is not an HTTP token")
        if problem is not None:
            raise fields.invalid(f"{what} header {name!r} is set by the copy function itself")
        if name.lower() in seen:
            raise fields.invalid(f"{what} header {name!r} is given twice")
        if not HEADER_VALUE.accepts(raw):
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
_PEM_CERT = r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----"
_PEM_KEY = r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END (?:RSA |EC )?PRIVATE KEY-----"
_PEM = "holds no PEM certificate and unencrypted PEM private key"
X509 = Text(min_length=0, max_bytes=MAX_CERTIFICATE_BYTES, contains=(_PEM_CERT, _PEM_KEY), invalid=_PEM,
            nullable=True, description=(
                "An X.509 client credential for this URL's host, PEM: certificate(s) and the unencrypted "
                "private key, e.g. the delegated grid proxy Dynafed hands a hook. A secret, as headers."))


def parse_client_certificate(value: Any, what: str) -> str | None:
    """Validate an X.509 client credential for a URL: PEM text holding at
    least one certificate and one unencrypted private key (a grid proxy file
    as Dynafed delegates it, or a certificate + key). A secret: the message
    never quotes it."""
    if value is None:
        return None
    problem = X509.problem(value) if isinstance(value, str) else "is not a string"
    if problem is not None and problem != _PEM:
        raise fields.invalid(f"{what} x509 must be PEM text of at most {MAX_CERTIFICATE_BYTES} bytes")
    if problem is not None:
        raise fields.invalid(f"{what} x509 must hold a PEM certificate and an unencrypted PEM private key")
    return value
