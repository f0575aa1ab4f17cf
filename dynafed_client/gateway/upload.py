"""``PUT``: the gateway receives an object and streams it into its store.

Why streamed through the gateway rather than a 307 to a presigned PUT:

* The pushers do not carry a body across a redirect reliably. XRootD's TPC
  push sends ``Expect: 100-continue`` and follows redirects with libcurl
  (xrootd/xrootd src/XrdHttpTpc/XrdHttpTpcState.cc, ``State::InstallHandlers``
  and ``State::SetupHeaders``); with ``tpc.fcreds`` it also forwards the
  client's ``Authorization`` to the new host, which S3 refuses next to a
  presigned query (two authentication mechanisms). Our WSGI server answers
  ``100 Continue`` before the application runs, so the body is on its way
  before a 307 could be sent.
* The store endpoint is often not reachable from outside (a cluster-internal
  S3), and a presigned URL handed to a client is a bearer credential.
* Here the bytes are checked on the way: ``Content-Length`` must be met, and
  a digest the client states (``Repr-Digest``, ``Digest``, ``Content-MD5``)
  must match before the object becomes visible.

Objects up to one part are one PutObject (with Content-MD5); larger ones a
multipart upload of ``part_size`` parts, each with Content-MD5 (one part
uploading while the next is received), completed
only after the whole body arrived and every stated digest matched —
otherwise the upload is aborted, so a failed or cut PUT leaves nothing, and
an existing object is replaced only by a complete, checked one. Memory: two
part buffers per PUT in flight.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

from dynafed_client.gateway import errors
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.s3limits import MAX_OBJECT_SIZE as MAX_OBJECT
from dynafed_contract.s3limits import MAX_PARTS

log = logging.getLogger("dynafed_client.gateway.upload")

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MiB


@dataclasses.dataclass(frozen=True)
class Uploaded:
    etag: str
    size: int
    adler32: str
    created: bool


def _read_full(stream: IO[bytes], size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(min(remaining, MiB))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def stated_digests(headers: Mapping[str, str]) -> dict[str, str]:
    """adler32 / md5 (hex) the client states for the body it sends."""
    from dynafed_contract.digest_fields import stated_digests as parse_stated

    stated = parse_stated(headers)
    content_md5 = next((value for name, value in headers.items() if name.lower() == "content-md5"), None)
    if content_md5 and "md5" not in stated:
        try:
            stated["md5"] = base64.b64decode(content_md5.strip(), validate=True).hex()
        except ValueError:
            raise errors.BadRequest("Content-MD5 is not base64") from None
    return {k: v for k, v in stated.items() if k in ("adler32", "md5")}


def receive(client: Any, ref: ObjectRef, stream: IO[bytes], *, length: int, content_type: str | None,
            stated: Mapping[str, str], existed: bool, part_size: int = DEFAULT_PART_SIZE) -> Uploaded:
    """Store ``length`` bytes of ``stream`` as ``ref`` (module doc)."""
    import zlib

    if length > MAX_OBJECT:
        raise errors.PayloadTooLarge("larger than S3's 5 TiB object limit")
    while part_size * MAX_PARTS < length:
        part_size *= 2
    adler = 1
    whole_md5 = hashlib.md5()  # noqa: S324 - compared with a client's stated md5, not security
    extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
    if "adler32" in stated:
        extra["Metadata"] = {"adler32": stated["adler32"]}  # the UVic/Dynafed checksum cache

    def consume(data: bytes) -> str:
        nonlocal adler
        if len(data) < expected:
            raise errors.BadRequest(f"the body ended after {received + len(data)} of {length} bytes")
        adler = zlib.adler32(data, adler)
        whole_md5.update(data)
        return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - S3 Content-MD5

    def check() -> str:
        computed = {"adler32": f"{adler & 0xFFFFFFFF:08x}", "md5": whole_md5.hexdigest()}
        for algorithm, value in stated.items():
            if computed[algorithm] != value:
                raise errors.BadRequest(f"the body's {algorithm} is {computed[algorithm]}, the request "
                                        f"states {value}; nothing was stored")
        return computed["adler32"]

    received = 0
    if length <= part_size:
        expected = length
        data = _read_full(stream, length)
        md5 = consume(data)
        checksum = check()
        try:
            answer = client.put_object(Bucket=ref.bucket, Key=ref.key, Body=data, ContentMD5=md5, **extra)
        except Exception as exc:
            raise errors.from_botocore(exc, "object") from None
        return Uploaded(str(answer.get("ETag", "")), length, checksum, not existed)
    try:
        upload_id = client.create_multipart_upload(Bucket=ref.bucket, Key=ref.key, **extra)["UploadId"]
    except Exception as exc:
        raise errors.from_botocore(exc, "object") from None
    # one part uploads while the next is received (memory: two parts per PUT)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="put-part")
    try:
        parts: list[dict[str, Any]] = []
        pending: Future[Any] | None = None
        number = 0
        while received < length:
            number += 1
            expected = min(part_size, length - received)
            data = _read_full(stream, expected)
            md5 = consume(data)
            if pending is not None:
                parts.append({"PartNumber": number - 1, "ETag": pending.result()["ETag"]})
            pending = pool.submit(client.upload_part, Bucket=ref.bucket, Key=ref.key, UploadId=upload_id,
                                  PartNumber=number, Body=data, ContentMD5=md5)
            received += len(data)
        assert pending is not None
        parts.append({"PartNumber": number, "ETag": pending.result()["ETag"]})
        checksum = check()
        answer = client.complete_multipart_upload(Bucket=ref.bucket, Key=ref.key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
    except BaseException as exc:
        pool.shutdown(wait=True)  # no part may land after the abort
        try:
            client.abort_multipart_upload(Bucket=ref.bucket, Key=ref.key, UploadId=upload_id)
        except Exception:  # the failure being reported matters more; cleanup aborts orphans later
            log.warning("could not abort the upload of a failed PUT")
        if isinstance(exc, errors.GatewayError):
            raise
        if isinstance(exc, Exception) and type(exc).__module__.startswith("botocore"):
            raise errors.from_botocore(exc, "object") from None
        raise
    finally:
        pool.shutdown(wait=True)
    return Uploaded(str(answer.get("ETag", "")), length, checksum, not existed)
