"""Measure token-authenticated pushes to a real XRootD and XRootD pushing into the gateway.

A measurement, not a test (``python -m bench.xrootd_push --size-mib 1024``,
as root: it makes a private network namespace, see tests/interop/xrootd.py).

1. gateway push: ``COPY`` to the gateway with ``Destination:`` a
   macaroon-protected XRootD path and the macaroon as
   ``TransferHeaderAuthorization`` (what gfal2 sends with ``BEARER_TOKEN`` in
   push mode); the copy function PUTs the object to XRootD over TLS.
2. upload into the gateway: ``PUT`` of the same size to the gateway (what an
   XRootD/FTS push or ``gfal-copy file://`` sends), streamed into the store.
3. XRootD pushing into the gateway: ``COPY`` to XRootD with ``Destination:``
   the gateway (what gfal2 sends in push mode); XRootD PUTs to the gateway.

Prints one JSON line per path: bytes, seconds, MB/s, whether the result's
adler32 equals the source's.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import requests

from bench.xrootd_site import MiB, print_rate, xrootd_bench


def _chunks(data: bytes, size: int = 4 * MiB) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start:start + size])


def main(argv: list[str] | None = None) -> int:
    return xrootd_bench(__doc__, argv, _measure)


def _measure(size: int) -> None:
    from tests.interop.xrootd import gateway_trusting, stack_trusting, xrootd_peer

    with xrootd_peer() as peer, tempfile.TemporaryDirectory(prefix="dynafedfn-xrd-push-") as tmp:
        data = os.urandom(size)
        expected = f"{zlib.adler32(data):08x}"
        token = peer.server.mint_macaroon("protected/", activities=("UPLOAD", "MANAGE", "DELETE", "DOWNLOAD",
                                                                    "READ_METADATA", "LIST"))
        state = Path(tmp) / "stack"
        allowed = {"DYNAFED_FN_HTTP_DESTINATIONS": f"http://127.0.0.1,{peer.server.base_url}"}
        stack = stack_trusting(peer, state, allowed)
        with stack, gateway_trusting(peer, state, env=allowed) as gateway:
            s3 = stack.s3_client("default")
            key = f"bench/{uuid.uuid4().hex}.bin"
            s3.upload_fileobj(_Reader(data), "demo", key)
            name = f"protected/bench/{uuid.uuid4().hex}.bin"
            started = time.perf_counter()
            response = requests.request("COPY", f"{gateway}/default/demo/{key}", timeout=3600,
                                        headers={"Destination": peer.server.url(name),
                                                 "TransferHeaderAuthorization": f"Bearer {token}"})
            elapsed = time.perf_counter() - started
            last = response.text.rstrip().splitlines()[-1] if response.text else ""
            pushed = peer.server.read(name) if peer.server.exists(name) else b""
            print_rate("gateway push COPY -> XRootD (TransferHeaderAuthorization, https)", size, elapsed,
                       status=response.status_code, last_line=last,
                       adler32_equal=f"{zlib.adler32(pushed):08x}" == expected)
            del pushed
            key2 = f"bench/{uuid.uuid4().hex}.bin"
            started = time.perf_counter()
            put = requests.put(f"{gateway}/default/demo/{key2}", data=_Reader(data), timeout=3600,
                               headers={"Content-Length": str(size)})
            elapsed = time.perf_counter() - started
            print_rate("PUT into the gateway (streamed multipart upload)", size, elapsed, status=put.status_code,
                       adler32_equal=put.headers.get("Digest") == f"adler32={expected}")
            public = f"public/bench/{uuid.uuid4().hex}.bin"
            peer.server.write(public, data)
            key3 = f"bench/{uuid.uuid4().hex}.bin"
            started = time.perf_counter()
            tpc = requests.request("COPY", peer.server.url(public), timeout=3600, verify=str(peer.ca.bundle),
                                   headers={"Destination": f"{gateway}/default/demo/{key3}"})
            elapsed = time.perf_counter() - started
            head = s3.head_object(Bucket="demo", Key=key3) if tpc.ok else {}
            print_rate("XRootD push COPY -> gateway PUT", size, elapsed, status=tpc.status_code,
                       last_line=tpc.text.rstrip().splitlines()[-1] if tpc.text else "",
                       stored_bytes=head.get("ContentLength"))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._view, self._pos = memoryview(data), 0

    def __len__(self) -> int:
        return len(self._view) - self._pos

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n is None or n < 0 else min(len(self._view), self._pos + n)
        chunk = bytes(self._view[self._pos:end])
        self._pos = end
        return chunk


if __name__ == "__main__":
    sys.exit(main())
