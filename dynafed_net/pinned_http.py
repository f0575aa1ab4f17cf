"""A ``requests`` session that connects to the address the URL policy checked.

``dynafed_contract.urlpolicy.pin`` says where to connect (an IP literal) and
which name the server expects; this module is the transport half, kept out
of the contract (which does no I/O). The one copy for both sides: the copy
function's http(s) sources and destinations and the gateway's pre-flight
probe and push destinations connect through it.

* TLS sends SNI for, and verifies the certificate against, the *name*;
* proxies, ``.netrc`` and other environment settings are ignored;
* no retries (the callers decide), redirects are the caller's to refuse.
"""
from __future__ import annotations

from typing import Any

from dynafed_contract.urlpolicy import PinnedTarget


def pinned_session(target: PinnedTarget, *, pool_maxsize: int = 2) -> Any:
    """A ``requests.Session`` for requests to ``target.url`` (send ``Host: target.host_header``)."""
    import requests
    from requests.adapters import HTTPAdapter

    hostname = target.server_hostname

    class PinnedHostAdapter(HTTPAdapter):
        """Connect to an IP literal but verify TLS for (and send SNI of) the checked name."""

        def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
            if host_params.get("scheme") == "https" and hostname:
                pool_kwargs["server_hostname"] = hostname
                pool_kwargs["assert_hostname"] = hostname
            return host_params, pool_kwargs

    session = requests.Session()
    session.trust_env = False  # no proxies/netrc from the environment
    adapter = PinnedHostAdapter(max_retries=0, pool_connections=1, pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (empty when it does not resolve)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return [str(info[4][0]) for info in infos]
