"""Real davix (``davix-http`` from Debian) against the gateway: the Digest header
shows up for ``Want-Digest``. Skips loudly without the package; fails when
DYNAFED_FN_REQUIRE_REAL_PARTS=1 (CI)."""
from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import uuid
import zlib
from typing import Any

import pytest

from tests.interop.helpers import davix_missing, require


@pytest.fixture(scope="module", autouse=True)
def _davix() -> None:
    require(davix_missing())


def davix_head(url: str, want: str) -> str:
    done = subprocess.run(["davix-http", "--trace", "header", "-X", "HEAD", "-H", f"Want-Digest: {want}", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_davix_shows_the_digest_header(stack: Any) -> None:
    if not stack.gateway:
        pytest.fail(f"the stack did not start the gateway: {stack.skipped}", pytrace=False)
    data = os.urandom(2 * 1024 * 1024 + 3)
    key = f"davix-{uuid.uuid4().hex[:12]}/obj.bin"
    stack.s3_client("default").put_object(Bucket="demo", Key=key, Body=data)
    url = f"{stack.gateway}/default/demo/{key}"
    shown = davix_head(url, "adler32")
    print(shown)
    assert f"< Digest: adler32={zlib.adler32(data):08x}" in shown
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert f"< Digest: md5={md5}" in davix_head(url, "MD5")
