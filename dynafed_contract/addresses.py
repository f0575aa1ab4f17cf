"""Which network addresses an http(s) copy source may resolve to (pure rules).

Shared by the copy function, which fetches sources, and the gateway, which
probes them before accepting an HTTP-TPC COPY: both must refuse the same
addresses (SSRF: loopback, private, link-local, shared, multicast,
unspecified, reserved, deprecated site-local ``fec0::/10`` (RFC 3879: Python's
``is_global`` counts it as global), and IPv6 forms that embed an IPv4 address).
Used through :mod:`dynafed_contract.urlpolicy`.
"""
from __future__ import annotations

import ipaddress


def is_forbidden_address(address: str) -> bool:
    """True for addresses a source must not resolve to (unless private sources
    are explicitly allowed, as on the local stack)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped is not None or ip.sixtofour is not None
                                                 or ip.teredo is not None):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return True
    return (not ip.is_global or ip.is_multicast or ip.is_loopback or ip.is_private or ip.is_link_local
            or ip.is_unspecified or ip.is_reserved)
