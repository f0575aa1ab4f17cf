"""URL prefix -> store/bucket mapping: which URLs Dynafed hands us are which objects.

Dynafed passes the hook commands replica URLs (``glb.filepullhook.usereplicaurl``
true: the location plugin's URL, e.g. ``https://s3.example.org/atlas/f``) or
federation paths (``/myfed/atlas/f``), and WLCG clients name objects by the
gateway's URLs. A mapping file says which prefixes are which store and
bucket. TOML or JSON, the same shape::

    # mapping.toml
    [[prefix]]
    url = "https://s3.example.org/atlas/"      # the S3 endpoint + bucket
    store = "default"
    bucket = "atlas"

    [[prefix]]
    url = "/myfed/scratch/"                     # a bare path matches any host
    store = "archive"
    bucket = "scratch"
    key_prefix = "fed/"                         # prepended to the rest of the path

    [[prefix]]
    url = "https://gw.example.org/"             # store and bucket omitted: taken
                                                # from the next path segments
                                                # (<store>/<bucket>/<key>)

``{"prefix": [{"url": ..., "store": ..., "bucket": ...}]}`` is the JSON form.

Matching rules: the longest matching prefix wins; a prefix matches on a path
segment boundary (``/a/b`` matches ``/a/b/x``, not ``/a/bx``); schemes
``davs``/``s3s`` count as ``https`` and ``dav``/``s3`` as ``http``; default
ports are ignored; query string and fragment (e.g. a presigned signature) are
ignored; the rest of the path, percent-decoded, is the key.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dynafed_contract.checksum import ObjectRef

_SLASHES = re.compile(r"/{2,}")

MAPPING_ENV = "DYNAFED_FN_MAPPING"

_SCHEME_ALIASES = {"davs": "https", "s3s": "https", "dav": "http", "s3": "http"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_RULE_FIELDS = {"url", "store", "bucket", "key_prefix"}


class MappingError(ValueError):
    """A mapping file or entry that cannot be used."""


@dataclasses.dataclass(frozen=True)
class _Origin:
    """scheme://host:port of a URL, normalised; all empty for a bare path."""

    scheme: str = ""
    host: str = ""
    port: int | None = None


def collapse_slashes(path: str) -> str:
    """``/a//b///c`` -> ``/a/b/c``. Dynafed's prefix translation keeps the
    leading ``/`` of the remainder and the plugin appends it to the endpoint
    URL, so an endpoint configured with a trailing ``/`` sends ``//key``
    (indigo-dc/dynafed ``src/LocationPlugin.cc``, ``doNameXlation``; PROTOCOLS.md
    §9). A run of slashes is read as one: a key with an empty segment cannot
    be named through the federation (as on a POSIX file system)."""
    return _SLASHES.sub("/", path)


def _split(url: str) -> tuple[_Origin, str]:
    """(normalised origin, percent-decoded path, runs of ``/`` collapsed) of a URL or a bare path."""
    if url.startswith("/"):
        return _Origin(), collapse_slashes(unquote(urlsplit(collapse_slashes(url)).path))
    parts = urlsplit(url)
    scheme = _SCHEME_ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
    if not scheme or not parts.hostname:
        raise MappingError(f"not a URL nor an absolute path: {url[:200]!r}")
    try:
        port = parts.port
    except ValueError:
        raise MappingError(f"bad port in {url[:200]!r}") from None
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    return _Origin(scheme, parts.hostname.lower(), port), collapse_slashes(unquote(parts.path)) or "/"


@dataclasses.dataclass(frozen=True)
class PrefixRule:
    """One ``[[prefix]]`` entry. ``store``/``bucket`` None: read from the path."""

    url: str
    store: str | None = None
    bucket: str | None = None
    key_prefix: str = ""

    def __post_init__(self) -> None:
        if self.bucket is not None and self.store is None:
            raise MappingError(f"prefix {self.url!r}: a bucket needs a store")
        _split(self.url)  # validates

    @property
    def _parts(self) -> tuple[_Origin, str]:
        origin, path = _split(self.url)
        return origin, path.rstrip("/")

    def specificity(self) -> int:
        """Longer prefixes win; a full URL beats a bare path of the same length."""
        origin, path = self._parts
        return len(path) * 2 + (1 if origin.scheme else 0)

    def remainder(self, url: str) -> str | None:
        """The path after this prefix (no leading ``/``), or None if it does not match."""
        try:
            origin, path = _split(url)
        except MappingError:
            return None
        mine, prefix = self._parts
        if mine.scheme and mine != origin:
            return None
        if path == prefix or path == prefix + "/":
            return ""
        if not path.startswith(prefix + "/"):
            return None
        return path[len(prefix) + 1:]

    def resolve(self, url: str) -> ObjectRef | None:
        """The object ``url`` names under this rule, or None."""
        rest = self.remainder(url)
        if rest is None:
            return None
        segments = rest.split("/")
        store = self.store
        bucket = self.bucket
        if store is None:
            store, segments = segments[0], segments[1:]
        if bucket is None:
            if not segments:
                return None
            bucket, segments = segments[0], segments[1:]
        key = self.key_prefix + "/".join(segments)
        if not store or not bucket or not key or key.endswith("/"):
            return None
        return ObjectRef(store=store, bucket=bucket, key=key)

    def to_json(self) -> dict[str, str]:
        out = {"url": self.url}
        if self.store is not None:
            out["store"] = self.store
        if self.bucket is not None:
            out["bucket"] = self.bucket
        if self.key_prefix:
            out["key_prefix"] = self.key_prefix
        return out


@dataclasses.dataclass(frozen=True)
class StoreMapping:
    """An ordered set of :class:`PrefixRule`; :meth:`resolve` picks the longest match."""

    rules: tuple[PrefixRule, ...] = ()

    def __post_init__(self) -> None:
        ordered = sorted(self.rules, key=lambda r: -r.specificity())
        object.__setattr__(self, "rules", tuple(ordered))

    def resolve(self, url: str) -> ObjectRef | None:
        """The object ``url`` names, or None when no prefix matches it."""
        for rule in self.rules:
            if rule.remainder(url) is not None:
                # the longest matching prefix decides, even if it names no object
                return rule.resolve(url)
        return None

    def matches(self, url: str) -> bool:
        """Whether some prefix covers ``url`` (even if it names no object, e.g. a bucket root)."""
        return any(rule.remainder(url) is not None for rule in self.rules)

    def merged(self, other: StoreMapping) -> StoreMapping:
        """Both rule sets (``other`` wins ties by coming later in a stable sort)."""
        return StoreMapping(self.rules + other.rules)

    def to_json(self) -> dict[str, Any]:
        return {"prefix": [r.to_json() for r in self.rules]}

    # -- construction -------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "mapping") -> StoreMapping:
        """Build from the parsed document (``{"prefix": [...]}``)."""
        if not isinstance(data, Mapping):
            raise MappingError(f"{where}: must be a table/object with a 'prefix' list")
        entries = data.get("prefix", [])
        if not isinstance(entries, list):
            raise MappingError(f"{where}: 'prefix' must be a list of tables")
        unknown = sorted(set(data) - {"prefix"})
        if unknown:
            raise MappingError(f"{where}: unknown key(s) {', '.join(unknown)}")
        return cls(tuple(_rule(entry, f"{where}: prefix[{i}]") for i, entry in enumerate(entries)))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> StoreMapping:
        """Read a ``.toml`` or ``.json`` mapping file (by extension; TOML otherwise)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(f"cannot read mapping file {p}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise MappingError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: "
                               f"{exc}") from None
        return cls.from_dict(data, where=str(p))

    @classmethod
    def namespace(cls, base_urls: Iterable[str]) -> StoreMapping:
        """The gateway's own namespace: ``<base>/<store>/<bucket>/<key>`` for each base URL."""
        return cls(tuple(PrefixRule(url=u.rstrip("/") + "/") for u in base_urls))


def _rule(entry: Any, where: str) -> PrefixRule:
    if not isinstance(entry, Mapping):
        raise MappingError(f"{where}: must be a table/object")
    unknown = sorted(set(entry) - _RULE_FIELDS)
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {', '.join(unknown)}")
    url = entry.get("url")
    if not isinstance(url, str) or not url:
        raise MappingError(f"{where}: 'url' must be a non-empty string")
    values: dict[str, Any] = {}
    for name in ("store", "bucket", "key_prefix"):
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            raise MappingError(f"{where}: {name!r} must be a string")
        if value is not None:
            values[name] = value
    try:
        return PrefixRule(url=url, **values)
    except MappingError as exc:
        raise MappingError(f"{where}: {exc}") from None


def load_mapping(path: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> StoreMapping | None:
    """The mapping at ``path``, else at ``$DYNAFED_FN_MAPPING``, else None."""
    env = os.environ if env is None else env
    chosen = path or env.get(MAPPING_ENV)
    return StoreMapping.load(chosen) if chosen else None
