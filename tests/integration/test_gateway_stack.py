"""The gateway as the stack runs it (``python -m dynafed_client.gateway --port P --state DIR``)
against SeaweedFS and the real checksum and copy functions, over plain HTTP."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
import zlib
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
import requests

from tests.interop.helpers import Gate, HttpSource, gateway_process, stack_allowing
from tests.perf_markers import parse_tpc_body

MiB = 1024 * 1024
MARKER_BYTES = re.compile(r"Stripe Bytes Transferred: (\d+)\n")


def b64(name: str, data: bytes) -> str:
    return base64.b64encode(hashlib.new(name, data).digest()).decode()


@pytest.fixture(scope="module")
def gateway(stack: Any) -> str:
    if not stack.gateway:
        pytest.fail(f"the stack did not start the gateway: {stack.skipped}", pytrace=False)
    return str(stack.gateway)


@pytest.fixture(scope="module")
def objects(stack: Any) -> dict[str, bytes]:
    prefix = f"gw-{uuid.uuid4().hex[:8]}"
    contents = {f"{prefix}/wiki": b"Wikipedia", f"{prefix}/empty": b"",
                f"{prefix}/dir/ünï cødé.bin": os.urandom(3 * MiB + 7)}
    s3 = stack.s3_client("default")
    for key, data in contents.items():
        s3.put_object(Bucket="demo", Key=key, Body=data)
    return contents


def test_want_digest_matches_independent_computation(gateway: str, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        resp = requests.head(f"{gateway}/default/demo/{requests.utils.quote(key)}",
                             headers={"Want-Digest": "ADLER32,md5;q=0.9, CRC32C;q=0.8, SHA-256;q=0.5, UNIXcksum"},
                             timeout=60)
        assert resp.status_code == 200, resp.text
        expected = (f"adler32={zlib.adler32(data):08x},md5={b64('md5', data)},"
                    f"crc32c={google_crc32c.Checksum(data).digest().hex()},sha-256={b64('sha256', data)}")
        assert resp.headers["Digest"] == expected
        assert resp.headers["Content-Length"] == str(len(data))
        assert resp.headers["ETag"] and resp.headers["Last-Modified"].endswith("GMT")


def test_known_adler32_value(gateway: str, objects: dict[str, bytes]) -> None:
    key = next(k for k, v in objects.items() if v == b"Wikipedia")
    resp = requests.head(f"{gateway}/default/demo/{key}", headers={"Want-Digest": "adler32"}, timeout=60)
    assert resp.headers["Digest"] == "adler32=11e60398"


def test_plain_get_redirects_to_the_store(gateway: str, objects: dict[str, bytes]) -> None:
    key = next(k for k, v in objects.items() if len(v) > MiB)
    url = f"{gateway}/default/demo/{requests.utils.quote(key)}"
    first = requests.get(url, allow_redirects=False, timeout=30)
    assert first.status_code == 302 and "Signature" in first.headers["Location"]
    assert requests.get(url, timeout=60).content == objects[key]


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("HEAD", "/default/demo/no-such-key", {"Want-Digest": "adler32"}, 404),
    ("HEAD", "/nosuchstore/demo/x", {"Want-Digest": "adler32"}, 404),
    ("PROPFIND", "/default/demo/no-such-key", {"Depth": "0"}, 404),
    ("COPY", "/archive/archive/x", {"Source": "http://127.0.0.1:1/a", "Destination": "http://127.0.0.1:1/b"}, 400),
    ("COPY", "/archive/archive/x", {"Credential": "none"}, 400),
    ("COPY", "/archive/archive/x", {"Source": "ftp://127.0.0.1/default/demo/x"}, 400),
    ("COPY", "/nosuchstore/b/x", {"Source": "http://127.0.0.1:1/default/demo/x"}, 404),
])
def test_edge_cases(gateway: str, method: str, path: str, headers: dict[str, str], status: int) -> None:
    resp = requests.request(method, gateway + path, headers=headers, timeout=30)
    assert resp.status_code == status, resp.text
    assert "Perf Marker" not in resp.text


def test_missing_source_is_404_before_the_body(gateway: str) -> None:
    resp = requests.request("COPY", f"{gateway}/archive/archive/never",
                            headers={"Source": f"{gateway}/default/demo/no-such-key"}, timeout=30)
    assert resp.status_code == 404


def test_unknown_digest_algorithm_is_absent(gateway: str, objects: dict[str, bytes]) -> None:
    key = next(iter(objects))
    resp = requests.head(f"{gateway}/default/demo/{key}", headers={"Want-Digest": "UNIXcksum,crc64"}, timeout=30)
    assert resp.status_code == 200 and "Digest" not in resp.headers


def test_copy_pull_between_stores(gateway: str, objects: dict[str, bytes], stack: Any) -> None:
    key = next(k for k, v in objects.items() if len(v) > MiB)
    dest_key = f"copies/{uuid.uuid4().hex}.bin"
    with requests.request("COPY", f"{gateway}/archive/archive/{dest_key}", stream=True, timeout=120,
                          headers={"Source": f"{gateway}/default/demo/{requests.utils.quote(key)}",
                                   "Credential": "none", "X-Number-Of-Streams": "0"}) as resp:
        assert resp.status_code == 202
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        body = resp.text
    seen, final = parse_tpc_body(body)
    assert final == "success: Created", body[-500:]
    assert seen[0] == 0 and seen == sorted(seen) and seen[-1] == len(objects[key])
    got = stack.s3_client("archive").get_object(Bucket="archive", Key=dest_key)["Body"].read()
    assert got == objects[key]


def test_copy_from_url_with_progress_and_mid_transfer_failure(tmp_path: Path) -> None:
    data = os.urandom(21 * MiB)  # five 5 MiB parts: progress in steps
    # the source stops 1 MiB into the second and the third part until a Perf
    # Marker has shown the part before it stored: live progress by the order
    # of events, whatever the machine's load
    gate = Gate([6 * MiB, 11 * MiB])
    with HttpSource() as source, stack_allowing(tmp_path / "stack", source, with_gateway=False) as st:
        slow = source.add("slow.bin", data, gate=gate)
        cut = source.add("cut.bin", data, truncate_at=7 * MiB)
        with gateway_process(st.state_dir, "--marker-interval", "0.5", "--marker-min-gap", "0.2",
                             env={"DYNAFED_FN_RETRIES": "1"}) as gw:
            dest_key = f"copies/{uuid.uuid4().hex}.bin"
            try:
                with requests.request("COPY", f"{gw}/default/demo-copy/{dest_key}", timeout=120, stream=True,
                                      headers={"Source": slow,
                                               "TransferHeaderAuthorization": "Bearer for-the-source"}) as resp:
                    assert resp.status_code == 202
                    body = ""
                    for piece in resp.iter_content(chunk_size=None, decode_unicode=True):
                        body += piece
                        stored = [int(n) for n in MARKER_BYTES.findall(body)]
                        # release hold i once a marker shows part i stored (5 MiB parts)
                        while gate.released < len(gate.holds) and stored and \
                                stored[-1] >= 5 * MiB * (gate.released + 1):
                            gate.release()
            finally:
                gate.release_all()
            seen, final = parse_tpc_body(body)
            assert final == "success: Created", body[-500:]
            assert seen == sorted(seen) and seen[-1] == len(data)
            assert len({n for n in seen if 0 < n < len(data)}) >= 2, seen  # live progress, not just 0 and the end
            assert st.s3_client("default").get_object(Bucket="demo-copy", Key=dest_key)["Body"].read() == data
            probe = [h for m, p, h in source.requests if m == "GET" and h.get("Range") == "bytes=0-0"]
            assert probe and probe[0].get("Authorization") == "Bearer for-the-source"

            # the source breaks off mid-transfer: still 202, and the body ends with failure:
            resp = requests.request("COPY", f"{gw}/default/demo-copy/copies/{uuid.uuid4().hex}", timeout=240,
                                    headers={"Source": cut})
            assert resp.status_code == 202
            seen, final = parse_tpc_body(resp.text)
            assert final.startswith("failure: "), resp.text[-500:]
            assert seen == sorted(seen)
