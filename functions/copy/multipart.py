"""S3 multipart-upload plumbing shared by the streamed and server-side copies.

An object appears only at CompleteMultipartUpload, so an open upload is both
the atomicity guarantee (nothing partial is ever visible) and the checkpoint
between the requests of a long job (ListParts says what is done). Every
call's errors are translated here, through ``errors.translate``.
"""
from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Mapping
from typing import Any

from dynafed_runtime import errors
from functions.copy import create_only
from functions.copy.witness import WITNESS_PART

log = logging.getLogger("dynafed_fn.copy.multipart")

#: uploads on one key examined when looking for a job's witness
MAX_CANDIDATES = 20


@dataclasses.dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    upload_id: str

    @property
    def what(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclasses.dataclass(frozen=True)
class ListedPart:
    etag: str
    size: int


class PartBody(io.RawIOBase):
    """A seekable, read-only file over a part buffer, so botocore can send
    (and re-send on retry) a slice of a recycled buffer without a copy of the
    whole part: memoryviews are not an accepted Body type, and bytes(view)
    would double the memory of every part in flight."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._view)

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), len(self._view) - self._position)
        buffer[:count] = self._view[self._position:self._position + count]
        self._position += count
        return count

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._position + size)
        data = bytes(self._view[self._position:end])
        self._position = end
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, min(len(self._view), base + offset))
        return self._position

    def tell(self) -> int:
        return self._position


def is_no_such_upload(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == "NoSuchUpload"


def translate_upload_error(exc: BaseException, upload: Upload) -> errors.FunctionError:
    """S3's NoSuchUpload is not a missing object: the job's upload was aborted
    (cleanup) or completed by another request of the same job meanwhile; a
    re-post resolves it (resume, or already-present), so it is retryable."""
    if is_no_such_upload(exc):
        return errors.UpstreamUnavailable(f"the multipart upload of {upload.what} disappeared (aborted by "
                                          "cleanup or completed by another request of the job); re-post the job")
    return errors.translate(exc, what=upload.what)


def create(client: Any, bucket: str, key: str, metadata: Mapping[str, str],
           headers: Mapping[str, Any]) -> Upload:
    """CreateMultipartUpload with the destination's final metadata and content headers."""
    try:
        answer = client.create_multipart_upload(Bucket=bucket, Key=key, Metadata=dict(metadata), **headers)
    except Exception as exc:
        raise errors.translate(exc, what=f"s3://{bucket}/{key}") from None
    return Upload(bucket, key, answer["UploadId"])


def upload_part(client: Any, upload: Upload, number: int, body: Any, content_md5: str) -> str:
    """UploadPart with Content-MD5 (the store rejects a part damaged on the way: BadDigest)."""
    try:
        answer = client.upload_part(Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id,
                                    PartNumber=number, Body=body, ContentMD5=content_md5)
    except Exception as exc:
        raise translate_upload_error(exc, upload) from None
    return str(answer["ETag"])


def list_parts(client: Any, upload: Upload) -> dict[int, ListedPart] | None:
    """Part number -> (ETag, size) of an open upload; None when it no longer exists."""
    parts: dict[int, ListedPart] = {}
    marker = 0
    while True:
        try:
            page = client.list_parts(Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id,
                                     PartNumberMarker=marker)
        except Exception as exc:
            if is_no_such_upload(exc):
                return None
            raise errors.translate(exc, what=upload.what) from None
        for part in page.get("Parts") or ():
            parts[int(part["PartNumber"])] = ListedPart(str(part["ETag"]), int(part["Size"]))
        if not page.get("IsTruncated"):
            return parts
        next_marker = int(page.get("NextPartNumberMarker") or 0)
        if next_marker <= marker:  # a store that does not advance: stop rather than loop
            return parts
        marker = next_marker


def find_by_witness(client: Any, bucket: str, key: str, witness_etag: str
                    ) -> tuple[Upload, dict[int, ListedPart]] | None:
    """The open upload on exactly ``key`` whose witness part has ``witness_etag``
    (newest first), with its parts; None when there is none."""
    candidates: list[tuple[Any, str]] = []
    key_marker: str | None = None
    upload_marker: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
        if key_marker is not None:
            kwargs.update(KeyMarker=key_marker, UploadIdMarker=upload_marker or "")
        try:
            page = client.list_multipart_uploads(**kwargs)
        except Exception as exc:
            raise errors.translate(exc, what=f"s3://{bucket}/{key}") from None
        for item in page.get("Uploads") or ():
            if item.get("Key") == key:
                candidates.append((item.get("Initiated"), str(item["UploadId"])))
        if not page.get("IsTruncated") or len(candidates) > 10 * MAX_CANDIDATES:
            break
        key_marker = page.get("NextKeyMarker")
        upload_marker = page.get("NextUploadIdMarker")
        if not key_marker:
            break
    candidates.sort(key=lambda c: (c[0] is not None, c[0]), reverse=True)
    for _, upload_id in candidates[:MAX_CANDIDATES]:
        upload = Upload(bucket, key, upload_id)
        parts = list_parts(client, upload)
        if parts is None:
            continue
        witness = parts.pop(WITNESS_PART, None)
        if witness is not None and witness.etag == witness_etag:
            return upload, parts
    return None


def complete(client: Any, upload: Upload, etags: Mapping[int, str], *, create_only_for: str | None = None) -> str:
    """CompleteMultipartUpload with exactly the data parts (never the witness); the new ETag.
    ``create_only_for``: the job id, when the object may not replace another
    (``If-None-Match: *``; a lost race raises DestinationExists, create_only.py)."""
    parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags) if n != WITNESS_PART]
    try:
        answer = client.complete_multipart_upload(Bucket=upload.bucket, Key=upload.key,
                                                  UploadId=upload.upload_id,
                                                  MultipartUpload={"Parts": parts},
                                                  **create_only.condition(create_only_for is not None))
    except Exception as exc:
        ours = (create_only.after_refusal(client, upload.bucket, upload.key, create_only_for, exc)
                if create_only_for is not None else None)
        if ours is not None:
            return ours.etag
        raise translate_upload_error(exc, upload) from None
    # Some stores answer 200 with an error document; botocore raises for S3's
    # documented form, anything else without an ETag is a failure too.
    etag = answer.get("ETag")
    if not etag:
        raise errors.UpstreamError(f"storage did not confirm the completion of {upload.what}")
    return str(etag)


def abort(client: Any, upload: Upload) -> bool:
    """AbortMultipartUpload, confirmed with ListParts (a part still being
    uploaded can survive one abort: S3 asks to repeat it). Never raises:
    this runs on failure paths; an upload that stays is cleanup's. True when
    the upload is confirmed gone."""
    for _ in range(3):
        try:
            client.abort_multipart_upload(Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id)
        except Exception as exc:
            if not is_no_such_upload(exc):
                log.warning("abort of an upload failed: %s", type(exc).__name__,
                            extra={"object": upload.what})
        try:
            if list_parts(client, upload) is None:
                return True
        except errors.FunctionError:
            pass
    log.warning("multipart upload may be left behind (cleanup will abort it)", extra={"object": upload.what})
    return False


def expected_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the concatenated part MD5s, ``-N``."""
    import hashlib

    return f'"{hashlib.md5(b"".join(part_md5s)).hexdigest()}-{len(part_md5s)}"'  # noqa: S324
