"""The one S3 client factory.

Clients are built per store, lazily, and shared between threads (boto3
clients are thread-safe). Settings: a connection pool big enough for the
worker's threads and parallel ranges, retries in ``standard`` mode, and
``when_required`` checksum behaviour because botocore >= 1.36 otherwise sends
CRC trailers that several S3-compatible servers reject (PROTOCOLS.md §5).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from dynafed_runtime.stores import Store

ClientFactory = Callable[[Store], Any]


def make_s3_client(store: Store, *, pool_size: int = 32, max_attempts: int = 5,
                   connect_timeout: float = 5.0, read_timeout: float = 60.0, verify: bool | str = True) -> Any:
    """A boto3 S3 client for ``store`` (``verify``: CA bundle path, :mod:`dynafed_net.trust`)."""
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(
        region_name=store.region,
        max_pool_connections=pool_size,
        # botocore's "max_attempts" counts *retries* (N+1 requests); "total_max_attempts"
        # counts requests, which is what DYNAFED_FN_S3_MAX_ATTEMPTS means
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": store.addressing_style},
        tcp_keepalive=True,
    )
    global _SESSION
    # One boto3 Session for every client: a client from a fresh Session reloads
    # botocore's models (~150 ms of CPU here), one from a warm Session takes
    # ~15 ms. That is most of the first request's and each /readyz probe's
    # cost (docs/performance.md). Credentials are per client; the lock because
    # a Session is not thread-safe.
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION.client(
            "s3", endpoint_url=store.endpoint_url, region_name=store.region, config=config,
            aws_access_key_id=store.access_key_id, aws_secret_access_key=store.secret_access_key,
            aws_session_token=store.session_token, verify=verify,
        )


_SESSION: Any = None
_SESSION_LOCK = threading.Lock()


class S3Clients:
    """Lazily built, cached S3 clients by store name."""

    def __init__(self, stores: Mapping[str, Store], factory: ClientFactory | None = None,
                 *, pool_size: int = 32, max_attempts: int = 5, verify: bool | str = True) -> None:
        self._stores = stores
        self._factory = factory or (lambda s: make_s3_client(s, pool_size=pool_size, max_attempts=max_attempts,
                                                             verify=verify))
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, store: Store) -> Any:
        with self._lock:
            client = self._clients.get(store.name)
            if client is None:
                client = self._clients[store.name] = self._factory(store)
            return client
