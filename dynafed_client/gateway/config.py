"""GatewayConfig: what the gateway serves and how, read once at start-up.

Sources (the CLI's order): flags; the environment; the local stack's
``state.json`` (``--state``: its stores file, function URLs and loopback as
the allowed http source, like the stack's functions).

Environment::

    DYNAFED_FN_STORES_FILE      stores JSON (as the functions read it)
    DYNAFED_FN_GATEWAY_STORES   comma-separated store names to expose (default: all)
    DYNAFED_FN_GATEWAY_TOKEN    static bearer token (full access; default: none)
    DYNAFED_FN_GATEWAY_JWT_KEYS     JWKS or PEM public keys that sign accepted WLCG tokens
    DYNAFED_FN_GATEWAY_JWT_ISSUERS  comma-separated accepted token issuers (``iss``)
    DYNAFED_FN_GATEWAY_JWT_AUDIENCES comma-separated accepted audiences (``aud``; the WLCG "any" always is)
    DYNAFED_FN_HTTP_DESTINATIONS    comma-separated URL prefixes allowed as push COPY destinations
    DYNAFED_FN_HTTP_SOURCES     comma-separated URL prefixes allowed as COPY sources
    DYNAFED_FN_MAPPING          mapping file: more URL prefixes that are our stores
    DYNAFED_FN_<NAME>_URL, DYNAFED_FN_TOKEN, …   the functions (dynafed_client.config)
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from dynafed_client import statefile
from dynafed_client.errors import ConfigError
from dynafed_client.gateway.auth import JwtSettings
from dynafed_client.mapping import StoreMapping
from dynafed_contract.urlpolicy import AllowList, UrlRefused, parse_http_url
from dynafed_net.trust import TrustSettings

CACHE_MODES = ("none", "use", "write", "refresh")
#: the local stack's functions accept loopback sources (stack/services.py); so does its gateway
STACK_HTTP_SOURCES = ("http://127.0.0.1",)


@dataclasses.dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway app needs besides its collaborators."""

    #: store name -> store entry (endpoint, credentials): the stores JSON's "stores"
    stores: Mapping[str, Mapping[str, str]]
    #: store names served under ``/<store>/…``; None = every configured store
    exposed: tuple[str, ...] | None = None
    #: more URL prefixes that name our objects (Source/Destination resolution)
    mapping: StoreMapping = dataclasses.field(default_factory=StoreMapping)
    #: extra base URLs of this gateway (behind a proxy or a DNS name)
    public_urls: tuple[str, ...] = ()
    #: URL prefixes allowed as http(s) COPY sources (checked before answering 202)
    http_sources: tuple[str, ...] = ()
    #: URL prefixes allowed as push COPY destinations that are not our stores
    http_destinations: tuple[str, ...] = ()
    #: let http(s) sources and destinations resolve to loopback/private addresses (local stack only)
    allow_private_sources: bool = False
    #: static bearer token (full access); None = no static token
    token: str | None = dataclasses.field(default=None, repr=False)
    #: WLCG JWT verification (keys, issuers, audiences); None = no JWTs
    jwt: JwtSettings | None = dataclasses.field(default=None, repr=False)
    #: checksum cache mode for ``Want-Digest`` (``use``: stored x-amz-meta values answer)
    checksum_cache: str = "use"
    #: verification algorithm asked of the copy function
    verify: str = "adler32"
    presign_expires_s: int = 3600
    #: longest silence between two Perf Markers
    marker_interval_s: float = 2.0
    #: shortest gap between two progress-driven Perf Markers
    marker_min_gap_s: float = 0.5
    #: a COPY still running after this many seconds ends with ``failure:``; None = never
    copy_timeout_s: float | None = None
    #: extra CAs for outgoing https: source probes, S3 (DYNAFED_FN_CA_BUNDLE, X509_CERT_DIR)
    trust: TrustSettings = dataclasses.field(default_factory=TrustSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stores", {k: dict(v) for k, v in self.stores.items()})
        if self.exposed is not None:
            missing = [s for s in self.exposed if s not in self.stores]
            if missing:
                raise ConfigError(f"exposed store(s) not configured: {', '.join(missing)} "
                                  f"(configured: {', '.join(self.stores) or 'none'})")
        if self.checksum_cache not in CACHE_MODES:
            raise ConfigError(f"checksum cache must be one of {', '.join(CACHE_MODES)}")
        if not 0 < self.marker_interval_s <= 30:
            raise ConfigError("marker interval must be in (0, 30] seconds (HTTP-TPC asks for <= 30 s)")
        if self.marker_min_gap_s < 0:
            raise ConfigError("marker min gap must be >= 0")
        try:
            AllowList.parse(self.http_sources)
        except ValueError as exc:
            raise ConfigError(f"http sources: {exc}") from None
        try:
            AllowList.parse(self.http_destinations)
        except ValueError as exc:
            raise ConfigError(f"http destinations: {exc}") from None

    def is_exposed(self, store: str) -> bool:
        return store in self.stores and (self.exposed is None or store in self.exposed)

    @property
    def exposed_names(self) -> tuple[str, ...]:
        return tuple(self.exposed) if self.exposed is not None else tuple(self.stores)

    @property
    def allow_list(self) -> AllowList:
        """``http_sources`` parsed by the URL policy (dynafed_contract.urlpolicy)."""
        return AllowList.parse(self.http_sources)

    @property
    def destination_allow_list(self) -> AllowList:
        """``http_destinations`` parsed by the URL policy."""
        return AllowList.parse(self.http_destinations)

    def source_allowed(self, url: str) -> bool:
        """Whether an http(s) source URL matches the allow-list on its parsed
        parts (scheme, host, port, path segments), never as a string prefix."""
        try:
            return self.allow_list.allows(parse_http_url(url))
        except UrlRefused:
            return False


def read_state(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The local stack's state.json as a mapping, read by its one reader
    (:func:`dynafed_client.statefile.require`)."""
    return statefile.require(state_dir).to_dict()


def split_list(value: str | None) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def env_lookup(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None
