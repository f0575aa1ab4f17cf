"""Named stores: S3 endpoints and their credentials, configured server-side.

Requests name a store; they never carry an endpoint or credentials (the
contract in DESIGN.md). The stores document is JSON::

    {"stores": {"default": {"endpoint_url": "...", "region": "us-east-1",
                            "access_key_id": "...", "secret_access_key": "...",
                            "addressing_style": "path"}}}

This is the one parser of that document, for the functions and the client
side alike (pure: the caller reads the file). Its rules are the functions':
``endpoint_url`` and the credentials may be absent (AWS's default endpoint,
the pod's ambient credentials). A reader that needs more says so explicitly
with :func:`require_fields` (the gateway: it signs URLs and reaches the
store itself, so it needs an endpoint and a key pair).
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
    endpoint_url: str | None = None
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

    def entry(self) -> dict[str, str]:
        """The stores-document entry of this store (the fields that are set)."""
        return {f.name: value for f in dataclasses.fields(self)
                if f.name != "name" and (value := getattr(self, f.name)) is not None}


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


def require_fields(stores: Mapping[str, Store], fields: tuple[str, ...], *, origin: str, why: str) -> None:
    """Refuse stores lacking any of ``fields``; the error names the store, the
    field and ``why`` this reader needs it (credentials are never echoed)."""
    for name, store in stores.items():
        for field in fields:
            if not getattr(store, field):
                raise StoreConfigError(f"{origin}: store '{name}' lacks '{field}' ({why})")
