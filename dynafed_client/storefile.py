"""The stores file as the dynafed_client tools read it, and an S3 client for one of its entries.

The gateway, the hooks, the legacy backend and the load test all reach the
stores with their own key pairs; they share this module, which sits below
all of them (none reaches into another's internals for it). The document
itself is parsed by the contract's one parser (dynafed_contract/stores.py).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dynafed_client.errors import ConfigError
from dynafed_contract.stores import StoreConfigError, parse_stores, require_fields

#: what these readers need of every store beyond the contract's rules: they
#: presign URLs and reach the store themselves, so no ambient credentials
STORE_FIELDS = ("endpoint_url", "access_key_id", "secret_access_key")


def read_stores_file(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """The store entries of a stores JSON file, parsed by the contract's one
    parser, each with an endpoint and a key pair (STORE_FIELDS)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read stores file {p}: {exc.strerror or exc}") from None
    origin = f"stores file {p}"
    try:
        stores = parse_stores(text, origin=origin)
        require_fields(stores, STORE_FIELDS, origin=origin,
                       why="the gateway signs URLs and reaches the store with its own key pair")
    except StoreConfigError as exc:
        raise ConfigError(str(exc)) from None
    return {name: store.entry() for name, store in stores.items()}


def s3_client(store: Mapping[str, str], *, verify: bool | str = True) -> Any:
    """A boto3 S3 client for a store entry (path style unless configured;
    flexible checksums only when required, as the functions do; ``verify``:
    CA bundle path from :mod:`dynafed_net.trust`)."""
    import boto3  # ~0.3 s: only the commands that reach a store pay for it
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=store["endpoint_url"], region_name=store.get("region", "us-east-1"),
        aws_access_key_id=store["access_key_id"], aws_secret_access_key=store["secret_access_key"],
        config=Config(s3={"addressing_style": store.get("addressing_style", "path")},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required",
                      retries={"max_attempts": 3, "mode": "standard"},
                      connect_timeout=5, read_timeout=60, max_pool_connections=32),
        verify=verify)
