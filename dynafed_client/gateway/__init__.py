"""The WLCG-facing gateway: ``Want-Digest`` → ``Digest``, HTTP-TPC ``COPY`` → Perf Markers.

It stands where Dynafed's own front end answers these requests, and hands
the work to the functions through :class:`dynafed_client.Client` (or the
``local`` legacy backend). Modules: :mod:`.app` (the WSGI app),
:mod:`.digests` (RFC 3230), :mod:`.tpc` (COPY headers), :mod:`.preflight`
(the URL policy and probe of a pull Source), :mod:`.transfers`
(the marker stream), :mod:`.perfmarkers`, :mod:`.webdav` (PROPFIND),
:mod:`.storage` (S3 metadata, presigned redirects), :mod:`.config`,
:mod:`.server`, :mod:`.cli`.
"""
from __future__ import annotations

from dynafed_client.gateway.app import Dispatcher, GatewayApp
from dynafed_client.gateway.config import GatewayConfig
from dynafed_client.gateway.preflight import probe_http_source
from dynafed_client.gateway.server import GatewayServer
from dynafed_client.gateway.storage import Storage

__all__ = ["Dispatcher", "GatewayApp", "GatewayConfig", "GatewayServer", "Storage", "probe_http_source"]
