"""Shared gunicorn settings (Knative container contract: bind ``$PORT``).

``timeout = 0`` because long streamed requests are normal here and Knative's
own timeouts bound them; ``graceful_timeout`` lets in-flight work finish after
SIGTERM (Knative sets the pod's grace period to the revision timeout).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Threads beyond ``THREADS`` that never do work: the app admits at most
#: ``DYNAFED_FN_MAX_INFLIGHT`` (default ``THREADS``) requests to ``POST /``, and
#: with no spare thread a saturated worker would leave further requests - and
#: the kubelet's probes - queued in gunicorn instead of answering ``429`` /
#: ``/healthz`` at once (seen with real gunicorn: probes timed out under load).
SPARE_THREADS = 2


def settings(env: Mapping[str, str], *, default_threads: int) -> dict[str, Any]:
    threads = int(env.get("THREADS", default_threads))
    return {
        "bind": f"{env.get('HOST', '0.0.0.0')}:{int(env.get('PORT', '8080'))}",
        "workers": int(env.get("WORKERS", "1")),
        "threads": threads + SPARE_THREADS,
        "worker_class": "gthread",
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
        # gunicorn's worker heartbeat files (not data): tmpfs avoids blocking on disk.
        "worker_tmp_dir": env.get("WORKER_TMP_DIR", "/dev/shm" if _exists("/dev/shm") else None),  # noqa: S108
    }


def _exists(path: str) -> bool:
    import os

    return os.path.isdir(path)
