"""WLCG HTTP third-party copy: what a ``COPY`` request asks for.

PROTOCOLS.md §3: ``Source:`` = pull (we fetch into the request URL),
``Destination:`` = push (we send the request URL's object there); both or
neither, or a scheme other than http/https, is a 400. Every
``TransferHeader<Name>`` header is meant for the remote side as ``<Name>``.
``Credential``, ``X-Number-Of-Streams``, ``Secure-Redirection``,
``X-No-Delegate``, ``RequireChecksumVerification`` are accepted and ignored:
the copy function verifies every copy anyway.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from urllib.parse import urlsplit

from dynafed_client.gateway.errors import BadRequest
from dynafed_contract.url_headers import FORBIDDEN
from dynafed_contract.urlpolicy import UrlRefused, parse_http_url

TRANSFER_HEADER_PREFIX = "transferheader"
MAX_URL_LENGTH = 8192
#: headers a remote transfer must never be given, whatever the client asks
_HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
                         "keep-alive", "proxy-authorization", "trailer"})
#: ... and those the copy function sets itself (dynafed_contract/url_headers.py refuses them)
_NOT_FORWARDED = _HOP_BY_HOP | FORBIDDEN


@dataclasses.dataclass(frozen=True)
class TpcRequest:
    """A parsed COPY."""

    #: ``pull`` (Source header) or ``push`` (Destination header)
    mode: str
    #: the other side's URL
    remote_url: str
    #: ``Overwrite: F`` forbids replacing an existing destination (WebDAV default T)
    overwrite: bool
    #: headers for the remote side (``TransferHeader`` prefix removed)
    transfer_headers: dict[str, str]


def transfer_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``TransferHeaderAuthorization: x`` -> ``{"Authorization": "x"}`` (prefix any case)."""
    out: dict[str, str] = {}
    for name, value in headers:
        if name.lower().startswith(TRANSFER_HEADER_PREFIX):
            stripped = name[len(TRANSFER_HEADER_PREFIX):]
            if stripped and stripped.lower() not in _NOT_FORWARDED and "\n" not in value and "\r" not in value:
                # WSGI servers lose the header's spelling (HTTP_TRANSFERHEADERAUTHORIZATION):
                # names are case-insensitive, but send them in the usual form
                out["-".join(part.capitalize() for part in stripped.split("-"))] = value
    return out


def _remote(url: str, header: str) -> str:
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"{header} URL is too long")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise BadRequest(f"{header} URL must be http:// or https://, not {parts.scheme or 'a relative URL'}")
    try:
        parse_http_url(url)  # the one URL policy: userinfo, backslashes, hidden dot segments... are 400
    except UrlRefused as exc:
        raise BadRequest(f"{header} URL refused: {exc.detail}") from None
    return url


def parse_copy(headers: Iterable[tuple[str, str]]) -> TpcRequest:
    """Parse the COPY headers (raises BadRequest)."""
    items = list(headers)
    lower: dict[str, str] = {}
    for name, value in items:
        lower.setdefault(name.lower(), value)
    source, destination = lower.get("source"), lower.get("destination")
    if source is not None and destination is not None:
        raise BadRequest("COPY with both Source and Destination headers")
    if source is None and destination is None:
        raise BadRequest("COPY needs a Source (pull) or a Destination (push) header")
    mode, remote = ("pull", _remote(source, "Source")) if source is not None \
        else ("push", _remote(destination or "", "Destination"))
    overwrite = lower.get("overwrite", "T").strip().upper() != "F"
    return TpcRequest(mode=mode, remote_url=remote, overwrite=overwrite, transfer_headers=transfer_headers(items))
