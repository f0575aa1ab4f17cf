"""Directory listings for PROPFIND Depth 1: every child, page by page.

S3 answers at most 1000 keys per ListObjectsV2 call; a listing follows
``NextContinuationToken`` to the end (never a silent cut at 1000) and is
streamed into the multistatus body as pages arrive, so memory stays one
page whatever the directory's size. A store's own level lists its buckets
with ListBuckets when its credentials may (``s3:ListAllMyBuckets``); when
they may not, the answer says so (403 with the reason) rather than showing
an empty store.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dynafed_client.gateway import errors
from dynafed_client.gateway.storage import Entry

PAGE = 1000


def iter_children(client: Any, bucket: str, prefix: str, *, page_size: int = PAGE) -> Iterator[Entry]:
    """Direct children of ``prefix`` (common prefixes, then objects, per page)."""
    base = prefix.rstrip("/") + "/" if prefix else ""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": base, "Delimiter": "/", "MaxKeys": page_size}
        if token:
            kwargs["ContinuationToken"] = token
        try:
            page = client.list_objects_v2(**kwargs)
        except Exception as exc:
            raise errors.from_botocore(exc, "bucket") from None
        for common in page.get("CommonPrefixes", []):
            yield Entry(name=str(common["Prefix"])[len(base):].rstrip("/"))
        for item in page.get("Contents", []):
            if str(item["Key"]) != base:
                yield Entry(name=str(item["Key"])[len(base):], size=int(item.get("Size", 0)),
                            last_modified=item.get("LastModified"), etag=item.get("ETag"))
        token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        if not token:
            return


def list_buckets(client: Any, store: str) -> list[Entry]:
    """The buckets a store's credentials see (403 with the reason if they may not list)."""
    try:
        answer = client.list_buckets()
    except Exception as exc:
        mapped = errors.from_botocore(exc, "bucket list")
        if isinstance(mapped, errors.Forbidden):
            raise errors.Forbidden(f"store {store!r}: its credentials may not list buckets "
                                   "(s3:ListAllMyBuckets); list /<store>/<bucket>/ instead") from None
        raise mapped from None
    return [Entry(name=str(b["Name"]), last_modified=b.get("CreationDate")) for b in answer.get("Buckets", [])]
