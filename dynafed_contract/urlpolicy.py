"""The one URL policy for every http(s) URL fetched on a client's behalf (pure rules).

Used by the copy function (its http(s) sources), the gateway (the pre-flight
of an HTTP-TPC ``Source``, before anything is contacted) and the hooks (which
refuse early what the copy function would refuse). The order is the policy::

    parse_http_url(text)        -> HttpUrl        400 INVALID_REQUEST
    AllowList.allows(url)       -> bool           403 SOURCE_NOT_ALLOWED
    pin(url, addresses, ...)    -> PinnedTarget   403 SOURCE_NOT_ALLOWED (forbidden address)
                                                  503 UPSTREAM_UNAVAILABLE (no address)
    connect to PinnedTarget.url with Host: PinnedTarget.host_header (the caller's transport)

* **Parse and normalise** the way the sending side (urllib3) and the servers
  will read the URL, so the check and the fetch see one URL: scheme and host
  lower-cased, a trailing dot dropped, legacy IPv4 forms (``2130706433``,
  ``0x7f.1``) and IPv6 literals canonical, the default port made explicit,
  ``.`` / ``..`` segments (also ``%2e``) removed (RFC 3986 §5.2.4), the
  fragment dropped (it is never sent). Refused outright: userinfo
  (``user:pw@``, ``127.0.0.1:@host``: urllib3 sends it as Basic auth to the
  host after the ``@``), a backslash (WHATWG parsers read it as ``/``),
  whitespace/control characters, zone ids, encoded separators that would hide
  a dot segment (``..%2f``), non-http(s) schemes, a missing host, a bad port.
* **Allow-list** entries are parsed with the same parser and matched on the
  parsed parts, never as a string prefix: same scheme and host; the entry's
  port if it names one, any port for a bare ``scheme://host``, else the
  default port; the path under the entry's path on a segment boundary.
* **Addresses**: every resolved address must pass
  :func:`dynafed_contract.addresses.is_forbidden_address` (unless private
  addresses are explicitly allowed), and the connection goes to the address
  that was checked (:class:`PinnedTarget`): a second DNS answer cannot
  redirect it (DNS rebinding). Resolution itself is the caller's I/O; this
  module only judges the answers.

Nothing here does I/O: the transport that connects to a ``PinnedTarget``
(TLS SNI and certificate checked for the name) lives with each side's HTTP
stack (``dynafed_net/pinned_http.py``, ``dynafed_net/pinned_http.py``).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from dynafed_contract.addresses import is_forbidden_address
from dynafed_contract.errors import ContractViolation, ErrorCode

__all__ = ["AllowList", "HttpUrl", "PinnedTarget", "UrlRefused", "check_addresses", "parse_http_url", "pin"]

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 8192
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
#: RFC 3986 reg-name characters we accept in a host (after IDNA); '%' (encoded
#: hosts) and everything else are refused rather than interpreted
_HOST_RE = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9_])?(?:\.[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9_])?)*")
_LEGACY_IPV4_RE = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")
_DOT = re.compile(r"%2e", re.IGNORECASE)
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c)", re.IGNORECASE)


class UrlRefused(ContractViolation):
    """A URL the policy refuses; ``code`` says why (INVALID_REQUEST: malformed
    or ambiguous; SOURCE_NOT_ALLOWED: not allowed or a forbidden address;
    UPSTREAM_UNAVAILABLE: the host does not resolve)."""


def _invalid(detail: str) -> UrlRefused:
    return UrlRefused(ErrorCode.INVALID_REQUEST, detail)


@dataclasses.dataclass(frozen=True)
class HttpUrl:
    """A parsed, normalised http(s) URL (no userinfo, no fragment)."""

    scheme: str
    #: lower-case name, canonical IPv4 dotted quad, or canonical IPv6 (no brackets)
    host: str
    #: the port connected to (the default one when the URL names none)
    port: int
    #: the path after dot-segment removal, still percent-encoded; at least "/"
    path: str
    query: str = ""
    #: whether the URL named the port
    explicit_port: bool = False

    @property
    def is_ip_literal(self) -> bool:
        return _ip_or_none(self.host) is not None

    @property
    def netloc(self) -> str:
        """``host[:port]`` as the Host header states it (the port only if not the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The normalised URL: what is fetched (and what is passed on to another component)."""
        return f"{self.scheme}://{self.netloc}{self.path}{'?' + self.query if self.query else ''}"

    def redacted(self) -> str:
        """scheme://host[:port]/path: no query (signatures)."""
        return f"{self.scheme}://{self.netloc}{self.path}"


def parse_http_url(text: str) -> HttpUrl:
    """Parse and normalise an http(s) URL (module doc); raises :class:`UrlRefused`
    with INVALID_REQUEST for anything malformed or ambiguous."""
    if not isinstance(text, str) or not text:
        raise _invalid("URL must be a non-empty string")
    if len(text) > MAX_URL_LENGTH:
        raise _invalid("URL is too long")
    if _CONTROL_OR_SPACE.search(text):
        raise _invalid("URL contains whitespace or control characters")
    if "\\" in text:
        raise _invalid("URL contains a backslash (parsers disagree on what it means)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _invalid("URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _invalid("URL must be http:// or https://")
    if "@" in parts.netloc:
        raise _invalid("URL must not carry credentials (user:password@)")
    if port == 0:
        raise _invalid("URL names port 0")
    host = _canonical_host(parts.hostname or "", bracketed=parts.netloc.startswith("["))
    path = _normalise_path(parts.path)
    return HttpUrl(scheme=scheme, host=host, port=port or DEFAULT_PORTS[scheme], path=path, query=parts.query,
                   explicit_port=port is not None)


def _canonical_host(raw: str, *, bracketed: bool) -> str:
    if not raw:
        raise _invalid("URL has no host")
    if bracketed:
        if "%" in raw:
            raise _invalid("URL host has an IPv6 zone id")
        try:
            return str(ipaddress.IPv6Address(raw))
        except ValueError:
            raise _invalid("URL host is not a valid IPv6 address") from None
    host = raw.rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise _invalid("URL host is not a valid host name") from None
    if _LEGACY_IPV4_RE.fullmatch(host):
        return _legacy_ipv4(host)
    if re.fullmatch(r"[0-9]+|0x[0-9a-f]*", host.rsplit(".", 1)[-1]):
        # WHATWG URL: a host ending in a number is an IPv4 address or invalid
        raise _invalid("URL host ends in a number but is not an IPv4 address")
    if not _HOST_RE.fullmatch(host) or len(host) > 253:
        raise _invalid("URL host is not a valid host name")
    return host


def _legacy_ipv4(host: str) -> str:
    """The WHATWG IPv4 parser: what ``inet_aton`` (and so ``getaddrinfo``) makes
    of ``2130706433``, ``0x7f.1`` or ``0177.0.0.1`` — read it here, so the
    allow-list and the address check see the address that will be connected to."""
    numbers: list[int] = []
    for piece in host.split("."):
        try:
            if piece.startswith("0x"):
                numbers.append(int(piece[2:] or "0", 16))
            elif len(piece) > 1 and piece.startswith("0"):
                numbers.append(int(piece, 8))
            else:
                numbers.append(int(piece, 10))
        except ValueError:
            raise _invalid("URL host is not a valid IPv4 address") from None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise _invalid("URL host is not a valid IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))


def _normalise_path(path: str) -> str:
    """RFC 3986 §5.2.4 remove_dot_segments, with ``%2e`` read as ``.`` (RFC 3986
    §6.2.2.2: servers decode it); a segment that would still read as a dot
    segment once ``%2f``/``%5c`` are decoded is refused (ambiguous)."""
    out: list[str] = []
    segments = path.split("/")[1:] if path.startswith("/") else path.split("/")
    for index, segment in enumerate(segments):
        plain = _DOT.sub(".", segment)
        last = index == len(segments) - 1
        if plain == ".":
            if last:
                out.append("")
            continue
        if plain == "..":
            if out:
                out.pop()
            if last:
                out.append("")
            continue
        hidden = re.split(r"[/\\]", _ENCODED_SEPARATOR.sub("/", plain))
        if len(hidden) > 1 and any(piece in (".", "..") for piece in hidden):
            raise _invalid("URL path hides a dot segment behind an encoded separator")
        out.append(segment)
    return "/" + "/".join(out)


def _ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# --- the allow-list ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry, parsed. ``port`` None: any port (a bare ``scheme://host``)."""

    scheme: str
    host: str
    port: int | None
    #: path prefix, normalised ("/" for the whole host); matched on a segment boundary
    path: str

    def allows(self, url: HttpUrl) -> bool:
        if (url.scheme, url.host) != (self.scheme, self.host):
            return False
        if self.port is not None and url.port != self.port:
            return False
        under = self.path if self.path.endswith("/") else self.path + "/"
        return url.path == self.path or url.path.startswith(under)


@dataclasses.dataclass(frozen=True)
class AllowList:
    """The http(s) URL prefixes a deployment allows (``DYNAFED_FN_HTTP_SOURCES``)."""

    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, prefixes: Iterable[str]) -> AllowList:
        """Parse prefixes (raises ValueError naming a bad one: check at start-up).

        ``http://h`` allows every port and path of ``h``; ``http://h:8080``
        only port 8080; ``https://h/pub/`` (or ``/pub``) only the default port
        and paths under ``/pub/``."""
        entries = []
        for prefix in prefixes:
            try:
                url = parse_http_url(prefix)
            except UrlRefused as exc:
                raise ValueError(f"{prefix[:80]!r}: {exc.detail}") from None
            if url.query:
                raise ValueError(f"{prefix[:80]!r}: an allow-list entry has no query")
            bare = not url.explicit_port and url.path == "/" and not prefix.rstrip().endswith("/")
            entries.append(AllowEntry(url.scheme, url.host, None if bare else url.port, url.path))
        return cls(tuple(entries))

    def allows(self, url: HttpUrl) -> bool:
        """Whether a parsed URL falls under one of the entries."""
        return any(entry.allows(url) for entry in self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)


# --- addresses and pinning ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PinnedTarget:
    """Where to connect for a checked URL: ``url`` names the checked address
    (an IP literal), ``host_header`` the name the server expects, and
    ``server_hostname`` the name TLS must send (SNI) and verify the
    certificate for (None: plain http, or a URL that named an IP)."""

    url: str
    address: str
    host_header: str
    server_hostname: str | None


def check_addresses(url: HttpUrl, addresses: Sequence[str], *, allow_private: bool) -> str:
    """The address to connect to, after every resolved one is judged: a single
    forbidden answer refuses the URL (403 SOURCE_NOT_ALLOWED); none at all is
    503 UPSTREAM_UNAVAILABLE."""
    if not addresses:
        raise UrlRefused(ErrorCode.UPSTREAM_UNAVAILABLE, f"cannot resolve the source host {url.host[:100]}")
    if not allow_private:
        for address in addresses:
            try:
                forbidden = is_forbidden_address(address)
            except ValueError:
                forbidden = True
            if forbidden:
                raise UrlRefused(ErrorCode.SOURCE_NOT_ALLOWED,
                                 f"source host {url.host[:100]} resolves to a non-public address")
    return addresses[0].split("%", 1)[0]


def pin(url: HttpUrl, addresses: Sequence[str], *, allow_private: bool) -> PinnedTarget:
    """Judge the resolved ``addresses`` of ``url`` and say where to connect (the checked one)."""
    address = check_addresses(url, addresses, allow_private=allow_private)
    literal = f"[{address}]" if ":" in address else address
    target = f"{url.scheme}://{literal}:{url.port}{url.path}{'?' + url.query if url.query else ''}"
    server_hostname = url.host if url.scheme == "https" and not url.is_ip_literal else None
    return PinnedTarget(url=target, address=address, host_header=url.netloc, server_hostname=server_hostname)
