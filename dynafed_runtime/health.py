"""Liveness and readiness. Readiness = every configured store answers an S3
call, cached briefly so probes do not hammer the store."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from dynafed_runtime.stores import Store

Probe = Callable[[Store], Any]


def probe_store(client: Any) -> None:
    """One cheap S3 round-trip. Any S3 answer (even AccessDenied) proves the
    endpoint is up; only transport failures mean 'unreachable'."""
    import botocore.exceptions as bce

    try:
        client.list_buckets()
    except bce.ClientError:
        return


class Readiness:
    def __init__(self, stores: Mapping[str, Store], client_for: Probe, *, cache_s: float = 5.0) -> None:
        self._stores = stores
        self._client_for = client_for
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._checked_at = -1e9
        self._result: dict[str, str] = {}

    def check(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at > self._cache_s:
                self._result = {name: self._check_one(store) for name, store in self._stores.items()}
                self._checked_at = now
            result = dict(self._result)
        return all(v == "ok" for v in result.values()), result

    def _check_one(self, store: Store) -> str:
        try:
            probe_store(self._client_for(store))
            return "ok"
        except Exception as exc:  # reported by name only: details may hold endpoints/keys
            return f"unreachable ({type(exc).__name__})"
