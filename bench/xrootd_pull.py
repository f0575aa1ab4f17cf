"""Measure a token-authenticated HTTP-TPC pull from a real XRootD into the local stack.

A measurement, not a test (``python -m bench.xrootd_pull --size-mib 1024``,
as root: it makes a private network namespace, see tests/interop/xrootd.py).
XRootD serves a macaroon-protected file over TLS (throwaway CA); the gateway
is asked to ``COPY`` it into the ``default`` store with the macaroon as
``TransferHeaderAuthorization``, exactly what gfal2 sends with
``BEARER_TOKEN`` set; then the same pull through the filepull hook with
Dynafed's argv (auth argument). Prints one JSON line per path: bytes,
seconds, MB/s, and whether the stored object's adler32 equals XRootD's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import requests

from bench.xrootd_site import MiB, print_rate, xrootd_bench


def _adler32_of_object(client: object, bucket: str, key: str) -> str:
    body = client.get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[attr-defined]
    value = 1
    while chunk := body.read(16 * MiB):
        value = zlib.adler32(chunk, value)
    return f"{value:08x}"


def main(argv: list[str] | None = None) -> int:
    return xrootd_bench(__doc__, argv, _measure)


def _measure(size: int) -> None:
    from tests.interop.xrootd import gateway_trusting, stack_trusting, xrootd_peer

    with xrootd_peer() as peer, tempfile.TemporaryDirectory(prefix="dynafedfn-xrd-bench-") as tmp:
        name = f"protected/bench/{uuid.uuid4().hex}.bin"
        data = os.urandom(size)
        peer.server.write(name, data)
        expected = f"{zlib.adler32(data):08x}"
        del data
        src = peer.server.url(name)
        token = peer.server.mint_macaroon("protected/")
        state = Path(tmp) / "stack"
        allowed = {"DYNAFED_FN_HTTP_SOURCES": f"http://127.0.0.1,{peer.server.base_url}"}
        stack = stack_trusting(peer, state, allowed)
        with stack, gateway_trusting(peer, state, env=allowed) as gateway:
            s3 = stack.s3_client("default")
            key = f"bench/{uuid.uuid4().hex}.bin"
            started = time.perf_counter()
            response = requests.request("COPY", f"{gateway}/default/demo/{key}", timeout=3600,
                                        headers={"Source": src, "TransferHeaderAuthorization": f"Bearer {token}"})
            elapsed = time.perf_counter() - started
            last = response.text.rstrip().splitlines()[-1] if response.text else ""
            print_rate("gateway COPY (TransferHeaderAuthorization)", size, elapsed, status=response.status_code,
                       last_line=last, adler32_equal=_adler32_of_object(s3, "demo", key) == expected)
            mapping = Path(tmp) / "mapping.json"
            mapping.write_text(json.dumps({"prefix": [{"url": "/fed/demo/", "store": "default", "bucket": "demo"}]}))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DYNAFED_FN_", "K_"))}
            env.update({"DYNAFED_FN_MAPPING": str(mapping), "DYNAFED_FN_STATE_DIR": str(state)})
            key2 = f"bench/{uuid.uuid4().hex}.bin"
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "dynafed_client.hooks.filepull", "1", "adler32", src,
                                   f"/fed/demo/{key2}", "", f"Bearer {token}"], capture_output=True, text=True,
                                  env=env, timeout=3600)
            elapsed = time.perf_counter() - started
            print_rate("filepull hook (auth argument, cksumcheck 1)", size, elapsed, exit=done.returncode,
                       last_line=done.stdout.strip().splitlines()[-1:],
                       adler32_equal=_adler32_of_object(s3, "demo", key2) == expected)


if __name__ == "__main__":
    sys.exit(main())
