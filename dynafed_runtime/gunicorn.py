"""Shared gunicorn settings (Knative container contract: bind ``$PORT``).

``timeout = 0`` because long streamed requests are normal here and Knative's
own timeouts bound them; ``graceful_timeout`` lets in-flight work finish after
SIGTERM (Knative sets the pod's grace period to the revision timeout).

Threads and the in-flight limit come from ``config.Concurrency`` (the one
place they are parsed); ``raw_env`` hands the numbers to the workers, so the
app admits exactly what gunicorn has threads for even when ``THREADS`` is
not set. The worker class (``worker.py``) reads each request completely,
within ``DYNAFED_FN_REQUEST_READ_TIMEOUT``, before a thread handles it.

Reading the settings checks the digest engine first
(``digests.require_accelerated``): an image whose accelerators did not load
stops here, in the arbiter, with the reason, before binding the port.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from dynafed_runtime import digests, gunicorn_errors
from dynafed_runtime.config import SPARE_THREADS, Concurrency, request_read_timeout

__all__ = ["SPARE_THREADS", "settings"]


def settings(env: Mapping[str, str], *, default_threads: int) -> dict[str, Any]:
    """gunicorn's settings for a function whose ``THREADS`` default is ``default_threads``.

    Exits (``SystemExit`` with the reason: gunicorn prints it and stops with
    status 1, no traceback) if an accelerator the images ship is missing.
    """
    try:
        shortfalls = digests.require_accelerated(env)
    except digests.SlowDigests as exc:
        raise SystemExit(f"dynafed_runtime: {exc}") from None
    for shortfall in shortfalls:  # only with DYNAFED_FN_ALLOW_SLOW_DIGESTS=1
        print(f"WARNING: slower digests than the images ship: {shortfall}", file=sys.stderr)
    concurrency = Concurrency.from_env(env, default_threads=default_threads)
    read_timeout = request_read_timeout(env)  # validated here, at start-up, and read again by each worker
    worker_env = {**concurrency.environment(), "DYNAFED_FN_REQUEST_READ_TIMEOUT": str(read_timeout)}
    return {
        "bind": f"{env.get('HOST', '0.0.0.0')}:{int(env.get('PORT', '8080'))}",
        "workers": int(env.get("WORKERS", "1")),
        "threads": concurrency.gunicorn_threads,
        "worker_class": "dynafed_runtime.worker.BufferingThreadWorker",
        "raw_env": [f"{name}={value}" for name, value in worker_env.items()],
        "timeout": 0,
        "graceful_timeout": int(env.get("GRACEFUL_TIMEOUT", "30")),
        "keepalive": 75,  # longer than typical proxy idle timeouts (queue-proxy, Kourier)
        "accesslog": None,  # the app logs each request as JSON
        "errorlog": "-",
        "loglevel": env.get("DYNAFED_FN_LOG_LEVEL", "info").lower(),
        "forwarded_allow_ips": "*",
        # gunicorn >= 23 opens a control socket at one per-user path that every
        # gunicorn on the machine would share; functions do not use it.
        "control_socket_disable": True,
        # gunicorn's own refusals (bad request line, 414, 431, ...) as problem+json, not HTML
        "post_worker_init": gunicorn_errors.install,
        # gunicorn's worker heartbeat files (not data): tmpfs avoids blocking on disk.
        "worker_tmp_dir": env.get("WORKER_TMP_DIR", "/dev/shm" if _exists("/dev/shm") else None),  # noqa: S108
    }


def _exists(path: str) -> bool:
    import os

    return os.path.isdir(path)
