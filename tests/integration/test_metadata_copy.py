"""The one metadata self-copy (dynafed_contract/metadata_copy.py) against
real SeaweedFS, on both of its paths: CopyObject, and the multipart
UploadPartCopy path used above 5 GiB (forced here on a 6 MiB object by
lowering ``single_copy_limit``, so every request is the one a >5 GiB object
makes, just fewer parts).

Pinning is what is tested: SeaweedFS evaluates ``x-amz-copy-source-if-match``
on CopyObject and on UploadPartCopy (seaweedfs
``weed/s3api/s3api_object_handlers_copy.go``, ``CopyObjectHandler`` and
``CopyObjectPartHandler``; PROTOCOLS.md §6, checked against the installed
``weed``), where moto ignores it (PROTOCOLS.md §5). Before this module the
hook's multipart path (boto3 managed copy without ``CopySourceIfMatch``)
rewrote whatever object was there; these tests fail against it.
"""
from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dynafed_client.hooks.metadata import store_checksum
from dynafed_client.stack import Stack
from dynafed_contract import metadata_copy
from dynafed_contract.metadata_copy import PinnedObject, rewrite_metadata
from dynafed_contract.s3limits import MIN_PART_SIZE

BUCKET = "demo"
SIZE = MIN_PART_SIZE + 1024 * 1024  # two parts on the multipart path
PATHS: dict[str, dict[str, Any]] = {"copy-object": {},
                                   "multipart": {"single_copy_limit": 0, "part_size": MIN_PART_SIZE}}


@pytest.fixture(scope="module")
def s3(seaweed: Stack) -> Any:
    return seaweed.s3_client()


def _put(s3: Any, body: bytes, **extra: Any) -> tuple[str, PinnedObject]:
    key = f"metadata-copy/{uuid.uuid4().hex}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    return key, PinnedObject(BUCKET, key, head["ETag"], head["ContentLength"])


def _open_uploads(s3: Any, key: str) -> list[Any]:
    return [u for u in s3.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", []) if u["Key"] == key]


@pytest.mark.parametrize("path", list(PATHS))
def test_rewrites_metadata_and_keeps_content_and_headers(s3: Any, path: str) -> None:
    body = os.urandom(SIZE)
    key, pinned = _put(s3, body, ContentType="application/x-test", CacheControl="no-store",
                       Metadata={"owner": "alice"})
    head = s3.head_object(Bucket=BUCKET, Key=key)
    rewrite_metadata(s3, pinned, {"owner": "alice", "adler32": "0badc0de"},
                     preserved=metadata_copy.preserved_headers(head), **PATHS[path])
    after = s3.get_object(Bucket=BUCKET, Key=key)
    assert after["Body"].read() == body
    assert after["Metadata"] == {"owner": "alice", "adler32": "0badc0de"}
    assert after["ContentType"] == "application/x-test" and after["CacheControl"] == "no-store"
    assert _open_uploads(s3, key) == []


@pytest.mark.parametrize("path", list(PATHS))
def test_a_replaced_object_is_left_as_its_writer_left_it(s3: Any, path: str) -> None:
    """The version read is gone: 412 on every path, the new version keeps its
    bytes and metadata, no multipart upload stays open."""
    key, stale = _put(s3, os.urandom(SIZE))
    newer = os.urandom(SIZE)
    s3.put_object(Bucket=BUCKET, Key=key, Body=newer, Metadata={"writer": "second"})
    with pytest.raises(ClientError) as info:
        rewrite_metadata(s3, stale, {"adler32": "0badc0de"}, **PATHS[path])
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    after = s3.get_object(Bucket=BUCKET, Key=key)
    assert after["Body"].read() == newer and after["Metadata"] == {"writer": "second"}
    assert _open_uploads(s3, key) == []


class ReplacingAfterFirstPart:
    """An S3 client that lets a second writer replace the object right after
    the first part was copied (the race the pin exists for, driven by the
    event, not by timing)."""

    def __init__(self, s3: Any, replacement: bytes) -> None:
        self._s3 = s3
        self._replacement = replacement
        self.parts_copied = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def upload_part_copy(self, **kwargs: Any) -> Any:
        reply = self._s3.upload_part_copy(**kwargs)
        self.parts_copied += 1
        if self.parts_copied == 1:
            self._s3.put_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"], Body=self._replacement)
        return reply


def test_multipart_copy_pins_every_part(s3: Any) -> None:
    """Replaced between two parts: the second UploadPartCopy fails with 412 and
    the upload is aborted; the replacement is what the key holds."""
    key, pinned = _put(s3, os.urandom(SIZE))
    replacement = os.urandom(SIZE)
    client = ReplacingAfterFirstPart(s3, replacement)
    with pytest.raises(ClientError) as info:
        rewrite_metadata(client, pinned, {"adler32": "0badc0de"}, max_concurrency=1, **PATHS["multipart"])
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.parts_copied == 1
    after = s3.get_object(Bucket=BUCKET, Key=key)
    assert after["Body"].read() == replacement and after["Metadata"] == {}
    assert _open_uploads(s3, key) == []


def test_hook_store_checksum_pins_its_multipart_path(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook's ``put`` goes through the same copy: above the limit (lowered
    here) a replacement between its HEAD and its parts is refused, not
    overwritten with the old metadata."""
    key, _ = _put(s3, os.urandom(SIZE), Metadata={"owner": "alice"})
    # the hook passes no sizes: lower the copy's defaults for this test only
    monkeypatch.setattr(metadata_copy.rewrite_metadata, "__kwdefaults__",
                        {**(metadata_copy.rewrite_metadata.__kwdefaults__ or {}), "single_copy_limit": 0,
                         "part_size": MIN_PART_SIZE, "max_concurrency": 1})
    replacement = os.urandom(SIZE)
    client = ReplacingAfterFirstPart(s3, replacement)
    with pytest.raises(ClientError) as info:
        store_checksum(client, BUCKET, key, "adler32", "0BADC0DE")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == replacement
    fresh, _ = _put(s3, os.urandom(SIZE), Metadata={"owner": "alice"})
    store_checksum(s3, BUCKET, fresh, "adler32", "0BADC0DE")
    assert s3.head_object(Bucket=BUCKET, Key=fresh)["Metadata"] == {"owner": "alice", "adler32": "0badc0de"}
