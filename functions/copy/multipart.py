"""The job's multipart upload: S3 plumbing, the witness part that names it,
the checkpoint it is, and how a request finds (or starts) it.

An object appears only at CompleteMultipartUpload, so an open upload is both
the atomicity guarantee (nothing partial is ever visible) and the checkpoint
between the requests of a long job (ListParts says what is done). Every
call's errors are translated here, through ``errors.translate``.

**The witness part.** S3 cannot return the metadata of an open multipart
upload (neither ListMultipartUploads nor ListParts shows it), yet a resumed
request must know that an upload on the destination key was created by
*this* job, for *this* version of the source, with *this* part size and
*this* destination metadata — otherwise completing it could publish bytes of
two source versions or wrong checksum metadata. So right after
CreateMultipartUpload the job uploads a tiny part number 10,000 whose content
is a canonical description of all of that. Its ETag (the MD5 of the part, as
ListParts shows it) is recomputed by any later request from the same inputs
and compared: a match proves the upload's identity. The witness is never
listed in CompleteMultipartUpload, so it is not part of the object. Stores
whose part ETags are not the part's MD5 (e.g. SSE-KMS) never match: such
jobs start a new upload instead of resuming, and the old one is left to
cleanup.

**Resuming** (``open_upload``, shared by the streamed and the server-side
multipart copies). Order of preference: this worker's checkpoint (still
matching the witness, and the upload still open per ListParts), then an open
upload on the destination key whose witness part proves it is this job's for
this source version (another worker, or this one after a restart), else a new
upload with a fresh witness. An upload that turns out to be someone else's
or stale is never touched: cleanup aborts it by age.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dynafed_contract.copy import Strategy
from dynafed_runtime import errors
from dynafed_runtime.digests import DigestSet
from functions.copy import create_only
from functions.copy.parts import MAX_PARTS, PartPlan

if TYPE_CHECKING:  # engine.py imports this module (through jobs.py) at run time
    from functions.copy.engine import CopyRun

log = logging.getLogger("dynafed_fn.copy.multipart")

#: the witness's part number: the last one S3 allows (plans stop below it)
WITNESS_PART = MAX_PARTS
_MAGIC = "dynafed-fn copy witness v1"
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


@dataclasses.dataclass
class Checkpoint:
    """Where a job stopped on this worker."""

    job_id: str
    #: ETag of the witness part: the identity of the upload (module docstring)
    witness: str
    upload: Upload
    plan: PartPlan
    #: part number -> ETag of the parts the upload holds
    etags: dict[int, str]
    #: part number -> MD5 (digest) of the part, when known
    md5s: dict[int, bytes]
    #: running digest over parts 1..digested (streamed copies only)
    digests: DigestSet | None = None
    digested: int = 0
    touched: float = 0.0

    @property
    def bytes_done(self) -> int:
        return self.plan.bytes_of(self.etags)


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
    return f'"{hashlib.md5(b"".join(part_md5s)).hexdigest()}-{len(part_md5s)}"'  # noqa: S324


# -- the witness -------------------------------------------------------------

def witness_body(*, job_id: str, strategy: str, source_tag: str, size: int, part_size: int,
                 metadata: Mapping[str, str], headers: Mapping[str, Any]) -> bytes:
    """The witness content (deterministic for equal inputs)."""
    document = {
        "job_id": job_id,
        "strategy": str(strategy),  # a Strategy's value: the body stays what it was with plain strings
        "source": source_tag,
        "size": size,
        "part_size": part_size,
        "metadata": dict(sorted(metadata.items())),
        "headers": {k: str(v) for k, v in sorted(headers.items())},
    }
    return (_MAGIC + "\n" + json.dumps(document, sort_keys=True, separators=(",", ":"))).encode()


def witness_etag(body: bytes) -> str:
    """The part ETag S3 reports for ``body`` (quoted MD5 hex)."""
    return f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324 - S3's part ETag, not security


# -- resuming ----------------------------------------------------------------

def md5_hex(etag: str) -> str | None:
    """The MD5 an ETag stands for, when it is a plain (single-part) one."""
    value = etag.strip('"').lower()
    return value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else None


def open_upload(run: CopyRun, plan: PartPlan, strategy: Strategy) -> Checkpoint:
    """This job's upload and what it holds. Without a source tag (an http
    source with no ETag/Last-Modified) nothing can be resumed safely."""
    client, dest = run.dest_client, run.destination
    body = witness_body(job_id=run.job_id, strategy=strategy, source_tag=str(run.source.tag), size=plan.size,
                        part_size=plan.part_size, metadata=run.metadata, headers=run.headers)
    witness = witness_etag(body)
    pinned = run.source.tag is not None
    checkpoint = run.jobs.get(run.job_id) if pinned else None
    if checkpoint is not None and (checkpoint.witness != witness or checkpoint.plan != plan
                                   or (checkpoint.upload.bucket, checkpoint.upload.key) != (dest.bucket, dest.key)):
        checkpoint = None
    if checkpoint is not None:
        listed = list_parts(client, checkpoint.upload)
        if listed is None:  # aborted (cleanup) or completed by another request meanwhile
            checkpoint = None
        else:
            listed.pop(WITNESS_PART, None)
            checkpoint.etags = {n: p.etag for n, p in listed.items()}
            checkpoint.md5s = {n: m for n, m in checkpoint.md5s.items()
                               if md5_hex(checkpoint.etags.get(n, "")) == m.hex()}
            if any(n not in checkpoint.md5s for n in range(1, checkpoint.digested + 1)):
                checkpoint.digests, checkpoint.digested = None, 0  # a digested part changed: rebuild
    if checkpoint is None and pinned:
        found = find_by_witness(client, dest.bucket, dest.key, witness)
        if found is not None:
            upload, listed = found
            checkpoint = Checkpoint(run.job_id, witness, upload, plan, {n: p.etag for n, p in listed.items()}, {})
    if checkpoint is None:
        upload = create(client, dest.bucket, dest.key, run.metadata, run.headers)
        try:
            upload_part(client, upload, WITNESS_PART, body,
                        base64.b64encode(hashlib.md5(body).digest()).decode())  # noqa: S324
        except BaseException:
            abort(client, upload)
            raise
        checkpoint = Checkpoint(run.job_id, witness, upload, plan, {}, {})
    return checkpoint
