"""The pre-flight of an HTTP-TPC push ``Destination`` that is not one of our
stores: checked before the gateway answers 202, so what can be known early
is an HTTP status (PROTOCOLS.md §3), not a ``failure:`` line.

The one URL policy (:mod:`dynafed_contract.urlpolicy`): parsed and
normalised (400), under the allowed http destinations (403), every resolved
address judged (403 for a non-public one, 502 when it does not resolve);
then one ``HEAD`` *to the checked address* with the client's
``TransferHeader*`` set (its credentials for that host): 401/403 is a 403
here, an existing file with ``Overwrite: F`` a 412. The copy function
applies the same policy again before its PUT (functions/copy/push.py).
"""
from __future__ import annotations

from collections.abc import Mapping

from dynafed_client.gateway import errors
from dynafed_client.gateway.preflight import Resolver, pin_resolved
from dynafed_contract.urlpolicy import AllowList, PinnedTarget, UrlRefused, parse_http_url
from dynafed_net.pinned_http import pinned_session, resolve_addresses


def check_destination(url: str, allow: AllowList, *, allow_private: bool,
                      resolver: Resolver = resolve_addresses) -> PinnedTarget:
    """Apply the URL policy to a push destination; where to connect, or the error."""
    try:
        parsed = parse_http_url(url)
    except UrlRefused as exc:
        raise errors.BadRequest(f"Destination URL refused: {exc.detail}") from None
    if not allow.allows(parsed):
        raise errors.Forbidden("push destination is neither a store served here nor under the gateway's "
                               "allowed http destinations")
    return pin_resolved(parsed, resolver, allow_private=allow_private, side="destination",
                        forbidden=errors.Forbidden)


def probe_destination(url: str, headers: Mapping[str, str], *, allow: AllowList, allow_private: bool,
                      overwrite: bool, resolver: Resolver = resolve_addresses, verify: bool | str = True) -> None:
    """:func:`check_destination`, then a HEAD with the client's headers."""
    import requests

    target = check_destination(url, allow, allow_private=allow_private, resolver=resolver)
    session = pinned_session(target, pool_maxsize=1)
    session.verify = verify
    try:
        resp = session.head(target.url, headers={**headers, "Host": target.host_header}, timeout=(5, 30),
                            allow_redirects=False)
        resp.close()
    except requests.RequestException as exc:
        raise errors.BadGateway(f"destination unreachable ({type(exc).__name__})") from None
    finally:
        session.close()
    status = resp.status_code
    if status in (401, 403):
        raise errors.Forbidden(f"destination refused access (HTTP {status})")
    if status < 300 and not overwrite:
        raise errors.PreconditionFailed("destination exists and Overwrite is F")
    if 300 <= status < 400:
        raise errors.BadGateway(f"destination answered a redirect (HTTP {status}); redirects are not followed")
    if status >= 500:
        raise errors.BadGateway(f"destination answered HTTP {status}")
