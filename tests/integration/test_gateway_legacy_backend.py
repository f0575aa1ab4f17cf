"""The legacy baseline (a fresh worker process per task) against the real
SeaweedFS: the same surface and results as the Client, directly and behind
the gateway (``--backend local``)."""
from __future__ import annotations

import hashlib
import os
import re
import uuid
import zlib
from typing import Any

import google_crc32c
import pytest
import requests

from dynafed_client import ConflictError, NotFoundError, RecordingProgress, RequestError
from dynafed_client.legacy import LocalBackend
from tests.interop.helpers import gateway_process

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def backend(stack: Any) -> LocalBackend:
    return LocalBackend.from_stack(stack.state_dir)


@pytest.fixture(scope="module")
def obj(stack: Any) -> tuple[str, bytes]:
    key = f"legacy-{uuid.uuid4().hex[:8]}/obj.bin"
    data = os.urandom(9 * MiB + 1)  # above boto3's multipart threshold
    stack.s3_client("default").put_object(Bucket="demo", Key=key, Body=data)
    return key, data


def test_checksum_matches_independent_computation(backend: LocalBackend, obj: tuple[str, bytes]) -> None:
    key, data = obj
    result = backend.checksum(f"demo/{key}", ["adler32", "crc32c", "md5", "sha256"])
    assert result.checksums == {"adler32": f"{zlib.adler32(data):08x}",
                                "crc32c": google_crc32c.Checksum(data).digest().hex(),
                                "md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
    assert result.size == len(data) and result.key == key


def test_copy_across_identities_verified(backend: LocalBackend, obj: tuple[str, bytes], stack: Any) -> None:
    key, data = obj
    dest = f"legacy/{uuid.uuid4().hex}.bin"
    progress = RecordingProgress()
    result = backend.copy(f"demo/{key}", f"archive:archive/{dest}", on_progress=progress)
    assert (result.status, result.bytes, result.verified) == ("completed", len(data), True)
    assert result.checksums == {"adler32": f"{zlib.adler32(data):08x}"}
    assert progress.bytes_seen == sorted(progress.bytes_seen) and progress.bytes_seen[-1] == len(data)
    assert stack.s3_client("archive").get_object(Bucket="archive", Key=dest)["Body"].read() == data
    with pytest.raises(ConflictError):
        backend.copy(f"demo/{key}", f"archive:archive/{dest}")


def test_errors_are_the_clients(backend: LocalBackend) -> None:
    with pytest.raises(NotFoundError):
        backend.checksum("demo/no-such-key", ["adler32"])
    with pytest.raises(RequestError, match="UNKNOWN_STORE"):
        backend.checksum("nostore:demo/x", ["adler32"])
    with pytest.raises(RequestError, match="UNKNOWN_ALGORITHM"):
        backend.checksum("demo/x", ["crc64"])


def test_gateway_with_the_local_backend(stack: Any, obj: tuple[str, bytes]) -> None:
    key, data = obj
    with gateway_process(stack.state_dir, "--backend", "local") as gw:
        head = requests.head(f"{gw}/default/demo/{key}", headers={"Want-Digest": "adler32,md5"}, timeout=120)
        assert head.status_code == 200
        assert head.headers["Digest"].startswith(f"adler32={zlib.adler32(data):08x},md5=")
        dest = f"legacy/{uuid.uuid4().hex}.bin"
        resp = requests.request("COPY", f"{gw}/archive/archive/{dest}", timeout=240,
                                headers={"Source": f"{gw}/default/demo/{key}"})
        assert resp.status_code == 202
        assert resp.text.startswith("Perf Marker\n") and resp.text.endswith("success: Created\n"), resp.text[-300:]
        last = [int(n) for n in re.findall(r"Stripe Bytes Transferred: (\d+)", resp.text)]
        assert last == sorted(last) and last[-1] == len(data)
    assert stack.s3_client("archive").get_object(Bucket="archive", Key=dest)["Body"].read() == data
