"""Named stores: S3 endpoints and their credentials, configured server-side.

Requests name a store; they never carry an endpoint or credentials (the
contract in DESIGN.md). The stores document is JSON::

    {"stores": {"default": {"endpoint_url": "...", "region": "us-east-1",
                            "access_key_id": "...", "secret_access_key": "...",
                            "addressing_style": "path"}}}
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

ADDRESSING_STYLES = ("path", "virtual", "auto")


class StoreConfigError(ValueError):
    """The stores document is invalid (raised at start-up)."""


@dataclasses.dataclass(frozen=True)
class Store:
    name: str
    endpoint_url: str | None
    region: str = "us-east-1"
    access_key_id: str | None = dataclasses.field(default=None, repr=False)
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)
    addressing_style: str = "path"

    def same_backend(self, other: Store) -> bool:
        """True when a server-side copy between the two stores is possible:
        same endpoint and same credentials."""
        return self.endpoint_url == other.endpoint_url and self.access_key_id == other.access_key_id

    def public(self) -> dict[str, Any]:
        """Description without credentials (safe for logs and responses)."""
        return {"name": self.name, "endpoint_url": self.endpoint_url, "region": self.region}


def parse_stores(document: Mapping[str, Any] | str, *, origin: str = "stores") -> dict[str, Store]:
    """Parse and validate the stores document; errors name ``origin`` and the store."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise StoreConfigError(f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict) or not isinstance(document.get("stores"), dict):
        raise StoreConfigError(f"{origin}: expected an object with a 'stores' object")
    stores: dict[str, Store] = {}
    for name, spec in document["stores"].items():
        if not isinstance(spec, dict):
            raise StoreConfigError(f"{origin}: store '{name}' must be an object")
        unknown = set(spec) - {f.name for f in dataclasses.fields(Store)}
        if unknown:
            raise StoreConfigError(f"{origin}: store '{name}' has unknown field(s) {sorted(unknown)}")
        style = spec.get("addressing_style", "path")
        if style not in ADDRESSING_STYLES:
            raise StoreConfigError(f"{origin}: store '{name}' addressing_style must be one of {ADDRESSING_STYLES}")
        endpoint = spec.get("endpoint_url")
        if endpoint is not None and not str(endpoint).startswith(("http://", "https://")):
            raise StoreConfigError(f"{origin}: store '{name}' endpoint_url must be http(s)")
        if bool(spec.get("access_key_id")) != bool(spec.get("secret_access_key")):
            raise StoreConfigError(f"{origin}: store '{name}' needs both access_key_id and secret_access_key")
        stores[name] = Store(**{**spec, "name": name})
    if not stores:
        raise StoreConfigError(f"{origin}: no stores defined")
    return stores
