"""Configuration, parsed once from the environment at the edge.

``Config.from_env(os.environ)`` validates everything at start-up and raises
``ConfigError`` naming the offending variable. Nothing else reads os.environ.
"""
from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dynafed_net.trust import TrustError, TrustSettings
from dynafed_runtime.stores import Store, StoreConfigError, parse_stores


class ConfigError(ValueError):
    """A configuration variable is missing or invalid."""


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: CloudEvents 1.0: attribute names are ASCII lowercase letters and digits
#: ("SHOULD NOT exceed 20 characters").
_CE_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
#: Context attributes an override must not replace: they identify the event
#: (receivers de-duplicate on source + id) or describe its data.
_CE_RESERVED = frozenset({"id", "source", "specversion", "type", "datacontenttype", "dataschema",
                          "subject", "time", "data", "data_base64"})


#: gunicorn threads beyond ``THREADS`` that never do work: the app admits at
#: most ``max_inflight`` requests to ``POST /``; with no spare thread a
#: saturated worker would leave further requests - and the kubelet's probes -
#: queued inside gunicorn instead of answering ``429`` / ``/healthz`` at once.
SPARE_THREADS = 2
#: how long a request's headers and body may take to arrive (seconds)
DEFAULT_REQUEST_READ_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class Concurrency:
    """The one source of truth for how much a worker does at once.

    ``threads`` (``THREADS``) is the number of requests that work at once: the
    Knative ``containerConcurrency`` (tests/manifests check it) and the
    default admission limit. ``max_inflight`` (``DYNAFED_FN_MAX_INFLIGHT``,
    at most ``threads``) is what the app admits to ``POST /``; beyond it, 429.
    gunicorn runs ``gunicorn_threads`` = ``threads + SPARE_THREADS``.
    gunicorn (dynafed_runtime/gunicorn.py) and the app's ``Config`` both
    parse it here, and gunicorn passes the result to its workers' environment
    (``raw_env``), so a bare container CMD or the local stack without
    ``THREADS`` gets the same numbers on both sides.
    """

    threads: int
    max_inflight: int
    spare_threads: int = SPARE_THREADS

    @property
    def gunicorn_threads(self) -> int:
        return self.threads + self.spare_threads

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, default_threads: int) -> Concurrency:
        threads = _int(env, "THREADS", default_threads, minimum=1)
        max_inflight = _int(env, "DYNAFED_FN_MAX_INFLIGHT", threads, minimum=1)
        if max_inflight > threads:
            raise ConfigError(f"DYNAFED_FN_MAX_INFLIGHT ({max_inflight}) must not exceed THREADS ({threads}): "
                              "the requests beyond THREADS would queue inside gunicorn instead of a 429")
        return cls(threads=threads, max_inflight=max_inflight)

    def environment(self) -> dict[str, str]:
        """What a worker process must see to agree with this (gunicorn ``raw_env``)."""
        return {"THREADS": str(self.threads), "DYNAFED_FN_MAX_INFLIGHT": str(self.max_inflight)}


def request_read_timeout(env: Mapping[str, str]) -> float:
    """``DYNAFED_FN_REQUEST_READ_TIMEOUT``: seconds a request's headers and body
    may take to arrive before the worker answers 408 (dynafed_runtime/worker.py)."""
    raw = env.get("DYNAFED_FN_REQUEST_READ_TIMEOUT", "")
    if raw == "":
        return DEFAULT_REQUEST_READ_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"DYNAFED_FN_REQUEST_READ_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 3600:
        raise ConfigError("DYNAFED_FN_REQUEST_READ_TIMEOUT must be > 0 and <= 3600")
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    service: str
    revision: str
    configuration: str
    stores: Mapping[str, Store]
    http_sources: tuple[str, ...] = ()
    #: URL prefixes a copy may PUT to (push to an http(s)/WebDAV destination)
    http_destinations: tuple[str, ...] = ()
    allow_private_sources: bool = False
    auth_token: str | None = dataclasses.field(default=None, repr=False)
    sink: str | None = None
    ce_extensions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    log_level: str = "INFO"
    max_inflight: int = 8
    s3_pool_size: int = 32
    s3_max_attempts: int = 5
    ready_cache_s: float = 5.0
    #: The function name (prefix of its ``DYNAFED_FN_<FUNCTION>_*`` settings).
    function: str = ""
    #: Function-specific settings (``DYNAFED_FN_<NAME>_*`` variables), by suffix.
    extra: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: extra CAs for outgoing https (DYNAFED_FN_CA_BUNDLE, X509_CERT_DIR)
    trust: TrustSettings = dataclasses.field(default_factory=TrustSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, function: str, stores_required: bool = True) -> Config:
        """Parse the environment for the function ``function``.

        ``stores_required=False`` is for deployables that never touch S3 (an
        event source adapter): no stores configured is then fine, and none
        are read unless configured.
        """
        stores = _load_stores(env) if stores_required or _stores_configured(env) else {}
        sink = env.get("K_SINK") or None
        if sink and not sink.startswith(("http://", "https://")):
            raise ConfigError("K_SINK must be an http(s) URL")
        concurrency = Concurrency.from_env(env, default_threads=8)
        prefix = f"DYNAFED_FN_{function.upper()}_"
        log_level = env.get("DYNAFED_FN_LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"DYNAFED_FN_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        return cls(
            service=env.get("K_SERVICE") or function,
            revision=env.get("K_REVISION") or f"{function}-local",
            configuration=env.get("K_CONFIGURATION") or function,
            stores=stores,
            http_sources=_http_sources(env.get("DYNAFED_FN_HTTP_SOURCES", "")),
            http_destinations=_http_sources(env.get("DYNAFED_FN_HTTP_DESTINATIONS", ""),
                                            "DYNAFED_FN_HTTP_DESTINATIONS"),
            allow_private_sources=_bool(env, "DYNAFED_FN_ALLOW_PRIVATE_SOURCES", False),
            auth_token=env.get("DYNAFED_FN_AUTH_TOKEN") or None,
            sink=sink,
            ce_extensions=_ce_overrides(env.get("K_CE_OVERRIDES")),
            log_level=log_level,
            max_inflight=concurrency.max_inflight,
            s3_pool_size=_int(env, "DYNAFED_FN_S3_POOL_SIZE", 32, minimum=1),
            s3_max_attempts=_int(env, "DYNAFED_FN_S3_MAX_ATTEMPTS", 5, minimum=1),
            extra={k[len(prefix):]: v for k, v in env.items() if k.startswith(prefix)},
            function=function,
            trust=_trust(env),
        )

    def store(self, name: str) -> Store:
        from dynafed_runtime.errors import UnknownStore

        try:
            return self.stores[name]
        except KeyError:
            raise UnknownStore(f"unknown store '{name[:64]}'") from None

    def setting(self, name: str, default: float) -> float:
        """A numeric function-specific setting (``DYNAFED_FN_<FUNCTION>_<NAME>``)."""
        raw = self.extra.get(name.upper())
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"DYNAFED_FN_{self.function.upper()}_{name.upper()} must be a number, "
                              f"got {raw!r}") from None


def _stores_configured(env: Mapping[str, str]) -> bool:
    return bool(env.get("DYNAFED_FN_STORES_FILE") or env.get("DYNAFED_FN_STORES"))


def _load_stores(env: Mapping[str, str]) -> dict[str, Store]:
    path = env.get("DYNAFED_FN_STORES_FILE")
    try:
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"DYNAFED_FN_STORES_FILE: cannot read {path}: {exc.strerror}") from None
            return parse_stores(text, origin="DYNAFED_FN_STORES_FILE")
        inline = env.get("DYNAFED_FN_STORES")
        if inline:
            return parse_stores(inline, origin="DYNAFED_FN_STORES")
    except StoreConfigError as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError("no stores configured: set DYNAFED_FN_STORES_FILE or DYNAFED_FN_STORES")


def _trust(env: Mapping[str, str]) -> TrustSettings:
    try:
        return TrustSettings.from_env(env)
    except TrustError as exc:
        raise ConfigError(str(exc)) from None


def _ce_overrides(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        doc: Any = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError("K_CE_OVERRIDES is not valid JSON") from None
    extensions = doc.get("extensions", {}) if isinstance(doc, dict) else None
    if not isinstance(extensions, dict):
        raise ConfigError("K_CE_OVERRIDES must look like {\"extensions\": {...}}")
    out = {}
    for name, value in extensions.items():
        if not (isinstance(name, str) and _CE_EXTENSION_NAME.fullmatch(name)):
            raise ConfigError(f"K_CE_OVERRIDES: extension name '{name}' must be 1-20 lowercase ASCII "
                              "letters or digits")
        if name in _CE_RESERVED:
            raise ConfigError(f"K_CE_OVERRIDES: '{name}' is a CloudEvents context attribute, not an extension")
        out[name] = str(value)
    return out


def _http_sources(raw: str, variable: str = "DYNAFED_FN_HTTP_SOURCES") -> tuple[str, ...]:
    prefixes = tuple(p.strip() for p in raw.split(",") if p.strip())
    from dynafed_contract.urlpolicy import AllowList

    try:
        AllowList.parse(prefixes)  # the copy function's URL policy reads them so
    except ValueError as exc:
        raise ConfigError(f"{variable}: {exc} (expected http(s) URL prefixes)") from None
    return prefixes


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be a boolean (1/0/true/false)")
