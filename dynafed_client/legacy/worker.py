"""One legacy worker task in a fresh process: what Dynafed's Docker workers did, minus Docker.

Run as a script (``python .../legacy/worker.py``), not as a package module,
so the process pays what those workers paid — an interpreter start and
``import boto3`` — and nothing of this project. It reads one JSON task on
stdin::

    {"task": "checksum" | "copy", "stores": {name: store entry, ...}, "request": {...}}

(requests as the functions take them), writes ndjson lines on stdout
(``{"type": "progress", ...}`` for copies, then one ``{"type": "result", ...}``
or ``{"type": "error", "status", "code", "detail"}``) and exits 0 or 1.
Standard library + boto3 (+ google-crc32c for crc32c) only.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
import zlib
from typing import Any

CHUNK = 8 * 1024 * 1024
PROGRESS_EVERY_S = 0.5
CRC_LIKE = ("adler32", "crc32", "crc32c")


class TaskError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class Digests:
    """Incremental digests of the requested algorithms."""

    def __init__(self, algorithms: list[str]) -> None:
        self.algorithms = algorithms
        self._ints = {a: (1 if a == "adler32" else 0) for a in algorithms if a in CRC_LIKE}
        self._hashes = {a: hashlib.new(a) for a in algorithms if a not in CRC_LIKE}
        if "crc32c" in algorithms:
            import google_crc32c

            self._crc32c = google_crc32c.Checksum()

    def update(self, data: bytes) -> None:
        for name in self._ints:
            if name == "adler32":
                self._ints[name] = zlib.adler32(data, self._ints[name])
            elif name == "crc32":
                self._ints[name] = zlib.crc32(data, self._ints[name])
            else:
                self._crc32c.update(data)
        for h in self._hashes.values():
            h.update(data)

    def hexdigests(self) -> dict[str, str]:
        out = {}
        for name in self.algorithms:
            if name == "crc32c":
                out[name] = self._crc32c.digest().hex()
            elif name in self._ints:
                out[name] = f"{self._ints[name] & 0xFFFFFFFF:08x}"
            else:
                out[name] = self._hashes[name].hexdigest()
        return out


def s3_client(store: dict[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=store["endpoint_url"], region_name=store.get("region", "us-east-1"),
        aws_access_key_id=store["access_key_id"], aws_secret_access_key=store["secret_access_key"],
        config=Config(s3={"addressing_style": store.get("addressing_style", "path")},
                      request_checksum_calculation="when_required", response_checksum_validation="when_required"))


def s3_error(exc: Exception) -> TaskError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in ("NoSuchBucket",):
            return TaskError(404, "NO_SUCH_BUCKET", "no such bucket")
        if code in ("NoSuchKey", "NotFound", "404") or status == 404:
            return TaskError(404, "NO_SUCH_OBJECT", "no such object")
        if code in ("AccessDenied", "403") or status == 403:
            return TaskError(403, "STORE_NOT_ALLOWED", "access denied by the store")
        if code in ("PreconditionFailed", "412") or status == 412:
            return TaskError(412, "SOURCE_CHANGED", "the source changed while being read")
        return TaskError(502, "UPSTREAM_ERROR", f"store error {code or status}")
    return TaskError(503, "UPSTREAM_UNAVAILABLE", type(exc).__name__)


def read_all(body: Any, digests: Digests, on_bytes: Any = None) -> int:
    done = 0
    while True:
        chunk = body.read(CHUNK)
        if not chunk:
            return done
        digests.update(chunk)
        done += len(chunk)
        if on_bytes is not None:
            on_bytes(done)


def stored_checksums(head: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): str(v).lower() for k, v in (head.get("Metadata") or {}).items()}


def checksum(request: dict[str, Any], stores: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    client = s3_client(stores[request["store"]])
    bucket, key = request["bucket"], request["key"]
    algorithms = list(request.get("algorithms") or ["adler32"])
    cache = request.get("cache", "none")
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise s3_error(exc) from None
    stored = stored_checksums(head)
    values: dict[str, str] = {}
    cached = []
    if cache == "use" or cache == "write":
        for name in algorithms:
            if name in stored:
                values[name] = stored[name]
                cached.append(name)
    missing = [a for a in algorithms if a not in values]
    if missing:
        digests = Digests(missing)
        try:
            if int(head.get("ContentLength", 0)) > 0:
                body = client.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
                read_all(body, digests)
        except Exception as exc:
            raise s3_error(exc) from None
        values.update(digests.hexdigests())
    if cache in ("write", "refresh") and missing:
        meta = {k: v for k, v in stored.items()}
        meta.update({a: values[a] for a in missing})
        try:
            client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                               CopySourceIfMatch=head["ETag"], MetadataDirective="REPLACE", Metadata=meta,
                               ContentType=head.get("ContentType", "binary/octet-stream"))
        except Exception as exc:
            raise s3_error(exc) from None
    return {"store": request["store"], "bucket": bucket, "key": key, "size": int(head.get("ContentLength", 0)),
            "etag": head.get("ETag"), "checksums": {a: values[a] for a in algorithms}, "cached": sorted(cached),
            "elapsed_s": round(time.perf_counter() - started, 6)}


class Reader:
    """A file-like over a stream that digests and reports what passes through."""

    def __init__(self, body: Any, digests: Digests, total: int | None) -> None:
        self._body, self._digests, self.total = body, digests, total
        self.done = 0
        self._last = 0.0

    def read(self, size: int = -1) -> bytes:
        data = self._body.read(CHUNK if size is None or size < 0 else size)
        if data:
            self._digests.update(data)
            self.done += len(data)
            now = time.monotonic()
            if now - self._last >= PROGRESS_EVERY_S:
                self._last = now
                emit({"type": "progress", "bytes": self.done, "total": self.total})
        return data


def open_source(source: dict[str, Any], stores: dict[str, Any]) -> tuple[Any, int | None, Any]:
    """(body, size, client or None) of the source."""
    if "url" in source:
        try:
            resp = urllib.request.urlopen(source["url"], timeout=60)  # noqa: S310 - http(s) checked by the parent
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 410):
                raise TaskError(404, "NO_SUCH_OBJECT", "source not found") from None
            raise TaskError(502, "UPSTREAM_ERROR", f"source answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TaskError(503, "UPSTREAM_UNAVAILABLE", f"source unreachable ({type(exc).__name__})") from None
        length = resp.headers.get("Content-Length")
        return resp, int(length) if length and length.isdigit() else None, None
    client = s3_client(stores[source["store"]])
    try:
        resp = client.get_object(Bucket=source["bucket"], Key=source["key"])
    except Exception as exc:
        raise s3_error(exc) from None
    return resp["Body"], int(resp.get("ContentLength", 0)), client


def copy(request: dict[str, Any], stores: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    source, dest = request["source"], request["destination"]
    algorithm = request.get("verify") or "adler32"
    dest_client = s3_client(stores[dest["store"]])
    if not request.get("overwrite", False):
        try:
            dest_client.head_object(Bucket=dest["bucket"], Key=dest["key"])
        except Exception as exc:
            if s3_error(exc).status != 404:
                raise s3_error(exc) from None
        else:
            raise TaskError(409, "DESTINATION_EXISTS", "destination exists")
    body, size, _ = open_source(source, stores)
    source_digest = Digests([algorithm])
    reader = Reader(body, source_digest, size)
    emit({"type": "progress", "bytes": 0, "total": size})
    try:
        # one PUT for small objects, multipart above 8 MiB (boto3's managed transfer)
        dest_client.upload_fileobj(reader, dest["bucket"], dest["key"])
    except Exception as exc:
        raise s3_error(exc) from None
    finally:
        body.close()
    # verify: read the destination back, as the old workers' gfal-copy checksum check did
    dest_digest = Digests([algorithm])
    try:
        read_all(dest_client.get_object(Bucket=dest["bucket"], Key=dest["key"])["Body"], dest_digest)
    except Exception as exc:
        raise s3_error(exc) from None
    expected, actual = source_digest.hexdigests()[algorithm], dest_digest.hexdigests()[algorithm]
    if expected != actual:
        raise TaskError(422, "CHECKSUM_MISMATCH", f"{algorithm} mismatch: source {expected}, destination {actual}")
    emit({"type": "progress", "bytes": reader.done, "total": size})
    return {"job_id": request.get("job_id") or "", "status": "completed", "strategy": "stream",
            "bytes": reader.done, "checksums": {algorithm: expected}, "verified": True,
            "elapsed_s": round(time.perf_counter() - started, 6)}


def main() -> int:
    try:
        task = json.loads(sys.stdin.read())
        kind, stores, request = task["task"], task["stores"], task["request"]
        if kind == "checksum":
            result = checksum(request, stores)
        elif kind == "copy":
            result = copy(request, stores)
        else:
            raise TaskError(400, "INVALID_REQUEST", f"unknown task {kind!r}")
    except TaskError as exc:
        emit({"type": "error", "status": exc.status, "code": exc.code, "detail": exc.detail})
        return 1
    except KeyError as exc:
        emit({"type": "error", "status": 400, "code": "INVALID_REQUEST", "detail": f"task lacks {exc}"})
        return 1
    except Exception as exc:  # never a traceback on the wire: the parent reports the code
        emit({"type": "error", "status": 500, "code": "INTERNAL", "detail": type(exc).__name__})
        return 1
    emit({"type": "result", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
