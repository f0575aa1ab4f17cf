"""The pre-flight of an HTTP-TPC pull ``Source``: checked and probed before
the gateway answers 202, with the one URL policy
(:mod:`dynafed_contract.urlpolicy`) the copy function applies too.

Order: parse and normalise (400 for userinfo, backslashes, hidden dot
segments, …), the allow-list on the parsed parts (403), resolve once and
judge every address (403 for a non-public one, 502 if it does not resolve),
then one GET of the first byte *to the checked address* (the name goes in
Host and TLS SNI), no redirect followed, no environment proxy. Nothing is
contacted before every check has passed.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from dynafed_client.gateway import errors
from dynafed_contract.errors import ErrorCode
from dynafed_contract.urlpolicy import AllowList, HttpUrl, PinnedTarget, UrlRefused, parse_http_url, pin
from dynafed_net.pinned_http import pinned_session, resolve_addresses

Resolver = Callable[[str, int], Sequence[str]]
#: the reasons OpenSSL gives for a refused certificate (nothing else of the message is shown)
_TLS_REASON = re.compile(r"certificate verify failed: [a-z0-9 ,-]{1,80}|hostname mismatch|wrong version number"
                         r"|handshake failure|certificate required|unknown ca|certificate has expired")


def tls_reason(exc: BaseException) -> str:
    """A short, secret-free reason for a TLS failure."""
    match = _TLS_REASON.search(str(exc))
    return match.group(0).strip() if match else "TLS error"


def parse_source(url: str) -> HttpUrl:
    """The parsed, normalised URL (BadRequest when the policy finds it malformed)."""
    try:
        return parse_http_url(url)
    except UrlRefused as exc:
        raise errors.BadRequest(f"Source URL refused: {exc.detail}") from None


def check_source(url: str, allow: AllowList, *, allow_private: bool,
                 resolver: Resolver = resolve_addresses) -> PinnedTarget:
    """Apply the URL policy; where to connect, or the gateway error to answer."""
    parsed = parse_source(url)
    if not allow.allows(parsed):
        raise errors.SourceForbidden("source URL is not in the gateway's allowed http sources")
    return pin_resolved(parsed, resolver, allow_private=allow_private, side="source",
                        forbidden=errors.SourceForbidden)


def pin_resolved(parsed: HttpUrl, resolver: Resolver, *, allow_private: bool, side: str,
                 forbidden: type[errors.GatewayError]) -> PinnedTarget:
    """Resolve once and judge every address (a pull source's and a push
    destination's last check): ``forbidden`` for a non-public one, BadGateway
    when the ``side`` ("source", "destination") host does not resolve."""
    try:
        return pin(parsed, resolver(parsed.host, parsed.port), allow_private=allow_private)
    except UrlRefused as exc:
        if exc.code is ErrorCode.UPSTREAM_UNAVAILABLE:
            raise errors.BadGateway(f"cannot resolve the {side} host") from None
        raise forbidden(f"{side} host resolves to a non-public address") from None


def probe_http_source(url: str, headers: Mapping[str, str], *, allow: AllowList, allow_private: bool = False,
                      resolver: Resolver = resolve_addresses, verify: bool | str = True) -> None:
    """Check ``url`` (:func:`check_source`), then GET its first byte (a HEAD
    would break presigned GET URLs: the signature covers the method).
    BadRequest/Forbidden/NotFound/BadGateway on failure."""
    import requests

    target = check_source(url, allow, allow_private=allow_private, resolver=resolver)
    session = pinned_session(target, pool_maxsize=1)
    session.verify = verify  # certifi, or + DYNAFED_FN_CA_BUNDLE / X509_CERT_DIR (dynafed_net/trust.py)
    try:
        resp = session.get(target.url, headers={**headers, "Host": target.host_header, "Range": "bytes=0-0"},
                           stream=True, timeout=(5, 30), allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        raise errors.BadGateway(f"TLS with the source failed ({tls_reason(exc)}); a source signed by a site or "
                                "grid CA needs DYNAFED_FN_CA_BUNDLE or X509_CERT_DIR") from None
    except requests.RequestException as exc:
        raise errors.BadGateway(f"source unreachable ({type(exc).__name__})") from None
    finally:
        session.close()
    try:
        status = resp.status_code
    finally:
        resp.close()
    if status in (404, 410):
        raise errors.NotFound("source not found")
    if status in (401, 403):
        raise errors.SourceForbidden(f"source refused access (HTTP {status})")
    if 300 <= status < 400:
        raise errors.BadGateway(f"source answered a redirect (HTTP {status}); redirects are not followed")
    if status >= 400 and status != 416:  # 416: a 0-byte object exists
        raise errors.BadGateway(f"source answered HTTP {status}")
