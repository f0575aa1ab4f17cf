"""Object references as people type them: ``[store:]bucket/key`` or an http(s) URL."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynafed_client.errors import ConfigError
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlDestination, UrlSource

DEFAULT_STORE = "default"

Source = ObjectRef | UrlSource


def parse_object_ref(text: str, *, default_store: str = DEFAULT_STORE) -> ObjectRef:
    """``bucket/key`` or ``store:bucket/key`` → ObjectRef (the key may contain ``/`` and ``:``)."""
    store = default_store
    head, slash, _ = text.partition("/")
    if ":" in head:  # bucket names cannot hold ':', so a colon before the first '/' ends a store name
        store, _, text = text.partition(":")
    bucket, slash, key = text.partition("/")
    if not store or not bucket or not slash or not key:
        raise ConfigError(f"expected [store:]bucket/key, got {text!r}")
    return ObjectRef(store=store, bucket=bucket, key=key)


def parse_source(text: str, *, default_store: str = DEFAULT_STORE) -> Source:
    """Like :func:`parse_object_ref`, but an ``http://`` / ``https://`` URL is a URL source."""
    if text.lower().startswith(("http://", "https://")):
        return UrlSource(text)
    return parse_object_ref(text, default_store=default_store)


def as_source(value: Source | str | Mapping[str, Any]) -> Source:
    """Accept an ObjectRef, UrlSource, text, or a request-shaped mapping."""
    if isinstance(value, ObjectRef | UrlSource):
        return value
    if isinstance(value, str):
        return parse_source(value)
    if isinstance(value, Mapping):
        if "url" in value:
            return UrlSource(str(value["url"]))
        return ObjectRef(store=str(value.get("store", DEFAULT_STORE)), bucket=str(value["bucket"]),
                         key=str(value["key"]))
    raise TypeError(f"cannot use {type(value).__name__} as an object reference")


def as_object_ref(value: ObjectRef | str | Mapping[str, Any]) -> ObjectRef:
    """Like :func:`as_source` but URLs are refused (destinations, checksums)."""
    ref = as_source(value)
    if not isinstance(ref, ObjectRef):
        raise ConfigError("a URL cannot be used here; expected [store:]bucket/key")
    return ref


def source_json(source: Source) -> dict[str, Any]:
    """The request form of a source: the full URL with its headers and X.509
    credential (secrets, for the copy function only; UrlSource.to_json
    redacts the URL and leaves them out, for logs and results)."""
    if isinstance(source, UrlSource):
        return _url_request_form(source)
    return source.to_json()


Destination = ObjectRef | UrlDestination


def as_destination(value: Destination | str | Mapping[str, Any]) -> Destination:
    """Like :func:`as_object_ref`, but an http(s) URL (or a ``{"url", "headers"}``
    mapping, or a UrlDestination) is a push destination."""
    if isinstance(value, UrlDestination):
        return value
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        return UrlDestination(value)
    if isinstance(value, Mapping) and "url" in value:
        return UrlDestination(str(value["url"]), dict(value.get("headers") or {}))
    return as_object_ref(value)  # type: ignore[arg-type]


def destination_json(destination: Destination) -> dict[str, Any]:
    """The request form of a destination: a URL's headers included (secrets,
    for the copy function only)."""
    if isinstance(destination, UrlDestination):
        return _url_request_form(destination)
    return destination.to_json()


def _url_request_form(ref: UrlSource | UrlDestination) -> dict[str, Any]:
    """A URL with its headers and X.509 credential, unredacted (sources and destinations alike)."""
    body: dict[str, Any] = {"url": ref.url}
    if ref.headers:
        body["headers"] = dict(ref.headers)
    if ref.x509:
        body["x509"] = ref.x509
    return body


def display(ref: Source | Destination) -> str:
    """Short human form; URLs without their query (presigned signatures)."""
    if isinstance(ref, UrlSource | UrlDestination):
        return ref.redacted()
    prefix = "" if ref.store == DEFAULT_STORE else f"{ref.store}:"
    return f"{prefix}{ref.bucket}/{ref.key}"
