"""``dynafed-fn gateway`` / ``python -m dynafed_client.gateway``: run the WLCG-facing gateway.

Typical uses::

    # next to the local stack (what `dynafed-fn stack up` starts)
    python -m dynafed_client.gateway --port 8443 --state .stack

    # in front of Knative functions
    DYNAFED_FN_CHECKSUM_URL=https://checksum.fn.example.org \\
    DYNAFED_FN_COPY_URL=https://copy.fn.example.org \\
    DYNAFED_FN_STORES_FILE=/etc/dynafed-fn/stores.json \\
    DYNAFED_FN_GATEWAY_TOKEN=… dynafed-fn gateway --port 8443 --store default

Binds 127.0.0.1 unless ``--host`` says otherwise (put TLS and the public
name in a reverse proxy in front of it; give that name with --public-url).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dynafed_client import Client, ClientConfig, logredact
from dynafed_client.errors import ClientError, ConfigError
from dynafed_client.gateway.app import GatewayApp
from dynafed_client.gateway.auth import JwtSettings
from dynafed_client.gateway.config import (
    STACK_HTTP_SOURCES,
    GatewayConfig,
    read_state,
    split_list,
)
from dynafed_client.legacy import LocalBackend
from dynafed_client.mapping import MappingError, StoreMapping, load_mapping
from dynafed_client.serving import add_serving_arguments, options_from_args, serve
from dynafed_client.storefile import read_stores_file
from dynafed_net.trust import TrustError, TrustSettings

log = logging.getLogger("dynafed_client.gateway")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The gateway's options (shared by ``dynafed-fn gateway`` and ``python -m``)."""
    add_serving_arguments(parser, default_port=8080)
    parser.add_argument("--state", metavar="DIR",
                        help="local stack state dir: stores file, function URLs, loopback sources allowed")
    parser.add_argument("--stores-file", metavar="PATH",
                        help="stores JSON (default $DYNAFED_FN_STORES_FILE, else the stack's)")
    parser.add_argument("--store", action="append", metavar="NAME",
                        help="expose this store (repeatable; default $DYNAFED_FN_GATEWAY_STORES or all)")
    parser.add_argument("--checksum-url", metavar="URL", help="checksum function (default $DYNAFED_FN_CHECKSUM_URL)")
    parser.add_argument("--copy-url", metavar="URL", help="copy function (default $DYNAFED_FN_COPY_URL)")
    parser.add_argument("--backend", choices=("functions", "local"), default="functions",
                        help="'local': the legacy fresh-process workers instead of the functions")
    parser.add_argument("--token-file", metavar="PATH",
                        help="bearer token WLCG clients must present (default $DYNAFED_FN_GATEWAY_TOKEN; none)")
    parser.add_argument("--function-token-file", metavar="PATH",
                        help="bearer token sent to the functions (default $DYNAFED_FN_TOKEN)")
    parser.add_argument("--http-source", action="append", metavar="PREFIX",
                        help="URL prefix allowed as a COPY source (repeatable; default $DYNAFED_FN_HTTP_SOURCES)")
    parser.add_argument("--http-destination", action="append", metavar="PREFIX",
                        help="URL prefix allowed as a push COPY destination that is not a store here "
                             "(repeatable; default $DYNAFED_FN_HTTP_DESTINATIONS)")
    parser.add_argument("--jwt-keys", metavar="PATH",
                        help="JWKS or PEM public keys of accepted WLCG token issuers "
                             "(default $DYNAFED_FN_GATEWAY_JWT_KEYS)")
    parser.add_argument("--jwt-issuer", action="append", metavar="URL",
                        help="accepted token issuer (repeatable; default $DYNAFED_FN_GATEWAY_JWT_ISSUERS)")
    parser.add_argument("--jwt-audience", action="append", metavar="AUD",
                        help="accepted token audience (repeatable; default $DYNAFED_FN_GATEWAY_JWT_AUDIENCES)")
    parser.add_argument("--mapping", metavar="PATH",
                        help="mapping file of more URL prefixes that are our stores (default $DYNAFED_FN_MAPPING)")
    parser.add_argument("--public-url", action="append", metavar="URL", default=[],
                        help="a URL clients use for this gateway (behind a proxy); repeatable")
    parser.add_argument("--checksum-cache", choices=("none", "use", "write", "refresh"), default="use",
                        help="Want-Digest answers from stored checksums ('use', default) or always computed")
    parser.add_argument("--verify", default="adler32", help="algorithm the copy function verifies with")
    parser.add_argument("--marker-interval", type=float, default=2.0, metavar="S",
                        help="longest gap between Perf Markers (default 2)")
    parser.add_argument("--marker-min-gap", type=float, default=0.5, metavar="S",
                        help="shortest gap between progress-driven Perf Markers (default 0.5)")
    parser.add_argument("--copy-timeout", type=float, default=None, metavar="S",
                        help="report failure for a COPY still running after S seconds (default: none)")
    parser.add_argument("--presign-expires", type=int, default=3600, metavar="S",
                        help="lifetime of the presigned URLs of GET redirects (default 3600)")
    parser.add_argument("--log-level", default=os.environ.get("DYNAFED_FN_LOG_LEVEL", "INFO"))


def _read_secret(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror or exc}") from None


def build_config(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[GatewayConfig, dict[str, Any]]:
    """(gateway config, facts for the dispatcher: function URLs, token, stores) from flags, env, state."""
    state = read_state(args.state) if args.state else {}
    stores_file = args.stores_file or env.get("DYNAFED_FN_STORES_FILE") or state.get("stores_file")
    if not stores_file:
        raise ConfigError("no stores: pass --stores-file, set DYNAFED_FN_STORES_FILE, or --state of a stack")
    stores = read_stores_file(stores_file)
    exposed = tuple(args.store or ()) or split_list(env.get("DYNAFED_FN_GATEWAY_STORES")) or None
    http_sources = tuple(args.http_source or ()) or split_list(env.get("DYNAFED_FN_HTTP_SOURCES")) \
        or (STACK_HTTP_SOURCES if state else ())
    http_destinations = tuple(args.http_destination or ()) or split_list(env.get("DYNAFED_FN_HTTP_DESTINATIONS")) \
        or (STACK_HTTP_SOURCES if state else ())
    try:
        mapping = load_mapping(args.mapping, env) or StoreMapping()
    except MappingError as exc:
        raise ConfigError(str(exc)) from None
    config = GatewayConfig(
        stores=stores, exposed=exposed, mapping=mapping, public_urls=tuple(args.public_url),
        http_sources=http_sources, http_destinations=http_destinations, jwt=_jwt(args, env),
        # The local stack's sources are loopback servers; elsewhere opt in explicitly.
        allow_private_sources=bool(state) or env.get("DYNAFED_FN_ALLOW_PRIVATE_SOURCES", "0").lower() in
        ("1", "true", "yes", "on"),
        token=_read_secret(args.token_file) or env.get("DYNAFED_FN_GATEWAY_TOKEN") or None,
        checksum_cache=args.checksum_cache, verify=args.verify, presign_expires_s=args.presign_expires,
        marker_interval_s=args.marker_interval, marker_min_gap_s=args.marker_min_gap,
        copy_timeout_s=args.copy_timeout, trust=_trust(env))
    functions = dict(state.get("functions") or {})
    facts = {"functions": functions, "stores_file": stores_file, "stores": stores,
             "function_token": _read_secret(args.function_token_file)}
    return config, facts


def _jwt(args: argparse.Namespace, env: Mapping[str, str]) -> JwtSettings | None:
    keys = args.jwt_keys or env.get("DYNAFED_FN_GATEWAY_JWT_KEYS")
    if not keys:
        return None
    issuers = tuple(args.jwt_issuer or ()) or split_list(env.get("DYNAFED_FN_GATEWAY_JWT_ISSUERS"))
    audiences = tuple(args.jwt_audience or ()) or split_list(env.get("DYNAFED_FN_GATEWAY_JWT_AUDIENCES"))
    return JwtSettings.from_files(keys, issuers=issuers, audiences=audiences)


def _trust(env: Mapping[str, str]) -> TrustSettings:
    try:
        return TrustSettings.from_env(env)
    except TrustError as exc:
        raise ConfigError(str(exc)) from None


def build_dispatcher(args: argparse.Namespace, env: Mapping[str, str], facts: Mapping[str, Any]) -> Any:
    """The Client (functions) or the LocalBackend (legacy fresh-process workers)."""
    if args.backend == "local":
        return LocalBackend(facts["stores"])
    config = ClientConfig.from_env(env)
    for name, url in facts["functions"].items():
        if name not in config.functions and url:
            config = config.with_function(name, url)
    for name, url in (("checksum", args.checksum_url), ("copy", args.copy_url)):
        if url:
            config = config.with_function(name, url)
    if facts.get("function_token"):
        config = config.replace(token=facts["function_token"])
    missing = [name for name in ("checksum", "copy") if name not in config.functions]
    if missing:
        # serve what we can: the requests needing a missing function answer 503
        log.warning("no URL for function(s) %s: set DYNAFED_FN_<NAME>_URL or --<name>-url", ", ".join(missing))
    return Client(config)


def run(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    """Check the configuration, then serve under gunicorn until SIGTERM/SIGINT (which drain)."""
    env = os.environ if env is None else env
    logredact.configure(str(args.log_level), sys.stderr, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = options_from_args(args, log_level=str(args.log_level))
        config, facts = build_config(args, env)
        dispatcher = build_dispatcher(args, env, facts)
    except (ClientError, ValueError) as exc:
        print(f"dynafed-fn gateway: {exc}", file=sys.stderr)
        return 2

    def ready(url: str) -> None:
        log.info("gateway on %s (stores: %s; backend: %s)", url, ", ".join(config.exposed_names), args.backend)

    # the app (its stores' clients, its running COPYs) is built in the worker
    return serve(lambda: GatewayApp(config, dispatcher), options, on_ready=ready)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dynafed-fn gateway", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_gateway_command(subparsers: Any) -> None:
    """Register ``dynafed-fn gateway`` (see :mod:`dynafed_client.commands`)."""
    parser = subparsers.add_parser("gateway", help="WLCG-facing HTTP front (Want-Digest, HTTP-TPC COPY)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)
