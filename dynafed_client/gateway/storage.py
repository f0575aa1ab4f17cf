"""The gateway's direct S3 access: metadata, presigned GETs, deletes, listings.

The gateway stands where Dynafed's front end does, a trusted component of
the Dynafed side: like Dynafed it signs redirects with the stores'
credentials. The bytes and the digests never pass through it; those go to
the functions. Presigned URLs are never logged (their query string is a
credential).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Mapping
from typing import Any

from dynafed_client.gateway import errors
from dynafed_client.storefile import s3_client
from dynafed_contract.checksum import ObjectRef

ClientFactory = Callable[[Mapping[str, str]], Any]


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD answers about an object."""

    size: int
    etag: str
    last_modified: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class Entry:
    """A listing entry: an object (``size`` set) or a common prefix (a "directory")."""

    name: str
    size: int | None = None
    last_modified: dt.datetime | None = None
    etag: str | None = None

    @property
    def is_collection(self) -> bool:
        return self.size is None


#: the S3 client a Storage makes for each store (tests pass their own)
default_client_factory = s3_client


class Storage:
    """Named stores (the stores JSON ``{"stores": {...}}`` entries) reached with boto3."""

    def __init__(self, stores: Mapping[str, Mapping[str, str]], *,
                 client_factory: ClientFactory = default_client_factory) -> None:
        self._stores = {name: dict(entry) for name, entry in stores.items()}
        self._factory = client_factory
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._stores)

    def has(self, store: str) -> bool:
        return store in self._stores

    def entry(self, store: str) -> Mapping[str, str]:
        """The store's configuration (with credentials: never log it)."""
        try:
            return self._stores[store]
        except KeyError:
            raise errors.NotFound(f"no store named {store!r}") from None

    def client(self, store: str) -> Any:
        entry = self.entry(store)
        with self._lock:
            if store not in self._clients:
                self._clients[store] = self._factory(entry)
            return self._clients[store]

    def head(self, ref: ObjectRef) -> ObjectInfo:
        """Size, ETag and modification time; NotFound if absent."""
        try:
            meta = self.client(ref.store).head_object(Bucket=ref.bucket, Key=ref.key)
        except Exception as exc:
            raise errors.from_botocore(exc, "object") from None
        return ObjectInfo(size=int(meta.get("ContentLength", 0)), etag=str(meta.get("ETag", "")),
                          last_modified=meta.get("LastModified"))

    def exists(self, ref: ObjectRef) -> bool:
        try:
            self.head(ref)
        except errors.NotFound:
            return False
        return True

    def bucket_exists(self, store: str, bucket: str) -> bool:
        return errors.found(lambda: self.client(store).head_bucket(Bucket=bucket), "bucket")

    def presign_get(self, ref: ObjectRef, *, expires_s: int) -> str:
        """A presigned GET URL of the object (a credential: do not log)."""
        try:
            return str(self.client(ref.store).generate_presigned_url(
                "get_object", Params={"Bucket": ref.bucket, "Key": ref.key}, ExpiresIn=expires_s))
        except Exception as exc:
            raise errors.from_botocore(exc, "object") from None

    def open(self, ref: ObjectRef) -> tuple[ObjectInfo, Any]:
        """(info, streaming body) of a GET; the caller closes the body."""
        try:
            resp = self.client(ref.store).get_object(Bucket=ref.bucket, Key=ref.key)
        except Exception as exc:
            raise errors.from_botocore(exc, "object") from None
        info = ObjectInfo(size=int(resp.get("ContentLength", 0)), etag=str(resp.get("ETag", "")),
                          last_modified=resp.get("LastModified"))
        return info, resp["Body"]

    def delete(self, ref: ObjectRef) -> None:
        """Delete an existing object (NotFound if absent: S3's delete is silent)."""
        self.head(ref)
        try:
            self.client(ref.store).delete_object(Bucket=ref.bucket, Key=ref.key)
        except Exception as exc:
            raise errors.from_botocore(exc, "object") from None

    def is_prefix(self, store: str, bucket: str, prefix: str) -> bool:
        """Whether some object lives under ``prefix/`` (an S3 "directory")."""
        return bool(self.list(store, bucket, prefix, limit=1))

    def list(self, store: str, bucket: str, prefix: str, *, limit: int = 1000) -> list[Entry]:
        """Direct children of ``prefix`` (objects and common prefixes), at most ``limit``."""
        base = prefix.rstrip("/") + "/" if prefix else ""
        try:
            resp = self.client(store).list_objects_v2(Bucket=bucket, Prefix=base, Delimiter="/",
                                                      MaxKeys=limit)
        except Exception as exc:
            raise errors.from_botocore(exc, "bucket") from None
        out = [Entry(name=str(p["Prefix"])[len(base):].rstrip("/")) for p in resp.get("CommonPrefixes", [])]
        out += [Entry(name=str(o["Key"])[len(base):], size=int(o.get("Size", 0)),
                      last_modified=o.get("LastModified"), etag=o.get("ETag"))
                for o in resp.get("Contents", []) if str(o["Key"]) != base]
        return out[:limit]
