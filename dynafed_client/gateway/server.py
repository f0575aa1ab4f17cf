"""GatewayServer: the gateway app served in this process (tests, embedding).

The foreground gateway (``dynafed-fn gateway``, the local stack's) runs under
gunicorn through :func:`dynafed_client.serving.serve`; both share the one
serving layer in :mod:`dynafed_client.serving`.
"""
from __future__ import annotations

from dynafed_client.serving import READ_TIMEOUT_S, LocalServer, WsgiApp


class GatewayServer(LocalServer):
    """A gateway app bound to ``host:port`` (port 0 = a free one), served from a thread."""

    def __init__(self, app: WsgiApp, *, host: str = "127.0.0.1", port: int = 0,
                 read_timeout: float = READ_TIMEOUT_S) -> None:
        super().__init__(app, host=host, port=port, read_timeout=read_timeout, name="gateway")
