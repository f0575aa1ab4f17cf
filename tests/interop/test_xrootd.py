"""XRootD as a real, independently written WLCG peer (tests/interop/xrootd.py):
checksums, HTTP-TPC pulls from XRootD into our stores through the gateway
and the filepull hook, token-protected reads, and trust in a site CA.

Everything (XRootD, SeaweedFS, the functions, the gateway, gfal-*) runs in
one private network namespace with loopback only; the module's fixtures keep
the main thread inside it. Skips loudly without the Debian packages, fails
instead when DYNAFED_FN_REQUIRE_REAL_PARTS=1 (CI).

Peer behaviour relied on (xrootd/xrootd 5.5.3 as packaged by Debian):
``src/XrdHttp/XrdHttpReq.cc`` answers ``HEAD`` + ``Want-Digest`` with
``Digest: adler32=<hex>``; ``src/XrdMacaroons/XrdMacaroonsHandler.cc``
mints a macaroon on ``POST`` with ``application/macaroon-request``;
``src/XrdMacaroons/XrdMacaroonsAuthz.cc`` grants reads with
``Authorization: Bearer <macaroon>`` (via ``http.header2cgi``) and
otherwise falls back to the authdb, which grants nothing on
``/data/protected``. gfal2 (``src/plugins/http/gfal_http_copy.cpp``) sends
``BEARER_TOKEN`` to the endpoint and as ``TransferHeaderAuthorization`` in
the COPY it sends the destination (pull mode). Dynafed
(indigo-dc/dynafed ``src/plugins/dmlite/UgrDMLite.cc``, ``fileCopyPull``)
runs the pull hook with ``cksumcheck cksumtype src dst x509proxypath
auth``, ``auth`` being the client's ``TransferHeaderAuthorization``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.interop.helpers import gfal2_missing, require
from tests.interop.xrootd import (
    XRootDPeer,
    gateway_trusting,
    stack_trusting,
    xrdadler32,
    xrootd_missing,
    xrootd_peer,
)

MiB = 1024 * 1024
#: around the 64 KiB block XRootD and adler32 implementations work in, S3's
#: 5 MiB part size, and the empty object (its own path everywhere)
BOUNDARY_SIZES = (0, 1, 65535, 65536, 65537, 5 * MiB + 1)
BUCKET = "demo"


@pytest.fixture(scope="module")
def peer() -> Iterator[XRootDPeer]:
    require(xrootd_missing())
    require(gfal2_missing())  # the gfal-* scripts run the python3-gfal2 binding
    with xrootd_peer() as p:
        yield p


@pytest.fixture(scope="module")
def site(peer: XRootDPeer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The local stack (no gateway of its own) inside the namespace, its copy
    function trusting the throwaway CA by ``X509_CERT_DIR``, and a gateway
    trusting it by ``DYNAFED_FN_CA_BUNDLE``; both allow XRootD as a source."""
    from dynafed_client.stack import StackError

    state = tmp_path_factory.mktemp("xrootd-stack")
    sources = f"http://127.0.0.1,{peer.server.base_url}"
    try:
        st = stack_trusting(peer, state, {"DYNAFED_FN_HTTP_SOURCES": sources,
                                          "DYNAFED_FN_COPY_PART_BYTES": str(5 * MiB), "DYNAFED_FN_LOG_LEVEL": "DEBUG"})
    except StackError as exc:
        pytest.fail(f"local stack failed to start in the namespace:\n{exc}", pytrace=False)
    # everything at DEBUG: the tests search every log for the tokens they used
    with st, gateway_trusting(peer, state, "--log-level", "DEBUG", env={"DYNAFED_FN_HTTP_SOURCES": sources}) as gateway:
        yield {"stack": st, "gateway": gateway, "state": state}


def put(site: dict[str, Any], data: bytes) -> str:
    key = f"xrd-{uuid.uuid4().hex[:12]}/obj.bin"
    site["stack"].s3_client("default").put_object(Bucket=BUCKET, Key=key, Body=data)
    return key


def read(site: dict[str, Any], key: str) -> bytes:
    return bytes(site["stack"].s3_client("default").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def gfal_sum(peer: XRootDPeer, url: str, env: dict[str, str] | None = None) -> str:
    done = peer.gfal("gfal-sum", url, "ADLER32", env=env, timeout=300)
    assert done.returncode == 0, f"gfal-sum {url}: {done.stdout}{done.stderr}"
    return done.stdout.split()[-1]


def test_checksums_equal_xrdadler32_on_both_servers(peer: XRootDPeer, site: dict[str, Any]) -> None:
    """For every boundary size, ``gfal-sum ... ADLER32`` (davix: HEAD with
    ``Want-Digest``) gives ``xrdadler32``'s value from XRootD and from the gateway."""
    for size in BOUNDARY_SIZES:
        data = os.urandom(size)
        name = f"public/sums/{size}.bin"
        url = peer.server.write(name, data)
        expected = xrdadler32(peer.server.data / name)
        assert expected == f"{zlib.adler32(data):08x}"
        from_xrootd = gfal_sum(peer, url)
        from_gateway = gfal_sum(peer, f"{site['gateway']}/default/{BUCKET}/{put(site, data)}")
        print(f"size {size}: xrdadler32 {expected}, XRootD {from_xrootd}, gateway {from_gateway}")
        assert int(from_xrootd, 16) == int(expected, 16)
        assert from_gateway == expected


def gfal_pull(peer: XRootDPeer, src: str, dst: str, env: dict[str, str] | None = None) -> Any:
    """``gfal-copy`` in third-party pull mode only (no streamed fallback
    through gfal itself), verified end to end by adler32."""
    return peer.gfal("gfal-copy", "-f", "-K", "ADLER32", "--copy-mode", "pull", src, dst, env=env, timeout=600)


def test_tpc_pull_from_xrootd_through_the_gateway_is_byte_identical(peer: XRootDPeer,
                                                                   site: dict[str, Any]) -> None:
    data = os.urandom(12 * MiB + 7)
    src = peer.server.write(f"public/pull/{uuid.uuid4().hex}.bin", data)
    key = f"xrd-pull-{uuid.uuid4().hex}/copy.bin"
    done = gfal_pull(peer, src, f"{site['gateway']}/default/{BUCKET}/{key}")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert read(site, key) == data


def copy_through_gateway(site: dict[str, Any], src: str, key: str, headers: dict[str, str]) -> requests.Response:
    """The COPY gfal2 sends in pull mode, from the test (inside the namespace)."""
    return requests.request("COPY", f"{site['gateway']}/default/{BUCKET}/{key}",
                            headers={"Source": src, "Credential": "none", "X-Number-Of-Streams": "1", **headers},
                            timeout=600)


def test_token_protected_pull_through_the_gateway(peer: XRootDPeer, site: dict[str, Any]) -> None:
    """A macaroon as ``TransferHeaderAuthorization`` reaches XRootD (and only
    XRootD): the pull succeeds with it; without it the gateway's pre-flight
    answers 403 before accepting the copy, and nothing is written."""
    data = os.urandom(6 * MiB + 5)
    name = f"protected/gw/{uuid.uuid4().hex}.bin"
    src = peer.server.write(name, data)
    token = peer.server.mint_macaroon("protected/")
    assert requests.get(src, verify=str(peer.ca.bundle), timeout=30).status_code == 403  # protected indeed

    refused_key = f"xrd-refused-{uuid.uuid4().hex}/copy.bin"
    refused = copy_through_gateway(site, src, refused_key, {})
    print("without a token:", refused.status_code, refused.text[:300])
    assert refused.status_code == 403
    assert "source refused access" in refused.text
    with pytest.raises(Exception, match="NoSuchKey|Not Found|404"):
        read(site, refused_key)

    key = f"xrd-token-{uuid.uuid4().hex}/copy.bin"
    accepted = copy_through_gateway(site, src, key, {"TransferHeaderAuthorization": f"Bearer {token}"})
    body = accepted.text
    assert accepted.status_code == 202, body[:500]
    assert body.rstrip().splitlines()[-1] == "success: Created", body[-500:]
    assert read(site, key) == data
    # gfal2 itself: BEARER_TOKEN -> TransferHeaderAuthorization on its COPY
    key2 = f"xrd-gfal-token-{uuid.uuid4().hex}/copy.bin"
    done = gfal_pull(peer, src, f"{site['gateway']}/default/{BUCKET}/{key2}", env={"BEARER_TOKEN": token})
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert read(site, key2) == data
    assert_not_logged(site, token)


def assert_not_logged(site: dict[str, Any], secret: str) -> None:
    """No log of the stack (functions, SeaweedFS) or the gateway, all at DEBUG, holds ``secret``."""
    logs = [p for p in Path(site["state"]).rglob("*.log") if p.is_file()]
    assert any("gateway" in p.name for p in logs) and len(logs) > 1, logs
    for path in logs:
        assert secret not in path.read_text(errors="replace"), f"the token appears in {path}"
    assert secret[:24] not in "".join(p.read_text(errors="replace") for p in logs)


def run_filepull(site: dict[str, Any], argv: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    mapping = tmp / "mapping.json"
    mapping.write_text(json.dumps({"prefix": [{"url": "/myfed/demo/", "store": "default", "bucket": BUCKET}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYNAFED_FN_", "K_"))}
    env.update({"DYNAFED_FN_MAPPING": str(mapping), "DYNAFED_FN_STATE_DIR": str(site["state"]),
                "PYTHONUNBUFFERED": "1"})
    return subprocess.run([sys.executable, "-m", "dynafed_client.hooks.filepull", *argv], capture_output=True,
                          text=True, timeout=600, env=env)


def test_token_protected_pull_through_the_filepull_hook(peer: XRootDPeer, site: dict[str, Any],
                                                       tmp_path: Path) -> None:
    """Dynafed's exact argv: ``cksumcheck cksumtype src dst x509proxypath
    auth``; the auth argument is the client's ``TransferHeaderAuthorization``
    value. With it the pull succeeds and is verified; without it the hook
    exits with the not-allowed status (5) and says why on stderr."""
    data = os.urandom(5 * MiB + 3)
    src = peer.server.write(f"protected/hook/{uuid.uuid4().hex}.bin", data)
    token = peer.server.mint_macaroon("protected/")
    refused_key = f"hook-refused-{uuid.uuid4().hex}.bin"
    refused = run_filepull(site, ["1", "adler32", src, f"/myfed/demo/{refused_key}", "", ""], tmp_path)
    print("without a token:", refused.returncode, refused.stderr[-400:])
    assert refused.returncode == 5, refused.stderr
    assert "refused access (403)" in refused.stderr
    assert "refused access (403)" in refused.stdout  # also a non-monitor stdout line: Dynafed reads only stdout
    key = f"hook-token-{uuid.uuid4().hex}.bin"
    done = run_filepull(site, ["1", "adler32", src, f"/myfed/demo/{key}", "", f"Bearer {token}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert read(site, key) == data
    assert token not in done.stdout + done.stderr
    assert_not_logged(site, token)
    monitor = [line for line in done.stdout.splitlines() if line.startswith("monitor: ")]
    assert monitor and monitor[-1].split()[5] == str(len(data))  # the last monitor: line: all bytes
    assert done.stdout.splitlines()[-1].startswith("dynafed-fn: pull: ")  # the outcome, where Dynafed reads


def test_https_source_needs_the_site_ca(peer: XRootDPeer) -> None:
    """The copy function's http source: an https URL signed by the throwaway
    CA fails with a clear, non-retried error naming the settings when no CA
    is configured, and opens with the CA as a bundle or as a hashed directory."""
    from dynafed_contract.copy import UrlSource
    from dynafed_net.trust import TrustSettings
    from dynafed_runtime import errors
    from functions.copy.http_source import HttpSource

    data = os.urandom(70_000)
    url = peer.server.write(f"public/trust/{uuid.uuid4().hex}.bin", data)
    prefixes = (peer.server.base_url,)
    with pytest.raises(errors.UpstreamError) as refused:
        HttpSource(UrlSource(url), prefixes=prefixes, allow_private=True, verify=TrustSettings().verify())
    print("without the CA:", refused.value.detail)
    assert not refused.value.retryable
    assert "certificate verify failed" in refused.value.detail
    assert "DYNAFED_FN_CA_BUNDLE or X509_CERT_DIR" in refused.value.detail
    for settings in (TrustSettings.from_env({"DYNAFED_FN_CA_BUNDLE": str(peer.ca.bundle)}),
                     TrustSettings.from_env({"X509_CERT_DIR": str(peer.ca.cert_dir)})):
        source = HttpSource(UrlSource(url), prefixes=prefixes, allow_private=True, verify=settings.verify(),
                            want_digest="adler32")
        try:
            assert source.size == len(data)
        finally:
            source.close()


def test_x509_protected_pull_through_the_filepull_hook(peer: XRootDPeer, site: dict[str, Any],
                                                      tmp_path: Path) -> None:
    """argv[4], the delegated proxy's path (Dynafed's ``x509_delegated_proxy_path``),
    is read by the hook and used by the copy function as its client
    certificate towards the source: XRootD maps the certificate's DN through
    its gridmap to a user its authdb lets read ``/data/protected``. Without
    the file the same pull is refused (403, exit 5)."""
    data = os.urandom(1 * MiB + 9)
    src = peer.server.write(f"protected/x509/{uuid.uuid4().hex}.bin", data)
    proxy = tmp_path / "x509up_u1000"
    proxy.write_text(peer.ca.client_cert.read_text() + peer.ca.client_key.read_text())
    proxy.chmod(0o600)
    refused = run_filepull(site, ["1", "adler32", src, f"/myfed/demo/x509-refused-{uuid.uuid4().hex}.bin", "", ""],
                           tmp_path)
    assert refused.returncode == 5, refused.stderr
    key = f"x509-{uuid.uuid4().hex}.bin"
    done = run_filepull(site, ["1", "adler32", src, f"/myfed/demo/{key}", str(proxy), ""], tmp_path)
    assert done.returncode == 0, done.stderr
    assert read(site, key) == data
    key_line = peer.ca.client_key.read_text().splitlines()[2]
    assert key_line not in done.stdout + done.stderr
    assert_not_logged(site, key_line)


def test_copy_function_asks_xrootd_for_the_digest_and_compares(peer: XRootDPeer, site: dict[str, Any]) -> None:
    """As a puller the copy function sends ``Want-Digest`` (and
    ``Want-Repr-Digest``) on its first GET; XRootD 5.5 answers ``Digest:
    adler32=…`` on GET (``XrdHttpReq.cc``), so the copy is verified against
    the source's own value (``verified_by: source-checksum``). For a file the
    token does not cover XRootD computes that digest before authorizing and
    fails with 500; the copy function then asks again without it and reports
    the real answer (403)."""
    data = os.urandom(2 * MiB + 1)
    src = peer.server.write(f"public/digest/{uuid.uuid4().hex}.bin", data)
    copy_url = site["stack"].url("copy")
    done = requests.post(copy_url, json={"source": {"url": src},
                                         "destination": {"bucket": BUCKET, "key": f"digest-{uuid.uuid4().hex}"}},
                         timeout=300)
    assert done.status_code == 200, done.text
    result = done.json()
    assert "source-checksum" in result["verified_by"], result
    assert result["checksums"]["adler32"] == f"{zlib.adler32(data):08x}"
    protected = peer.server.write(f"protected/digest/{uuid.uuid4().hex}.bin", data)
    refused = requests.post(copy_url, json={"source": {"url": protected},
                                            "destination": {"bucket": BUCKET, "key": f"digest-{uuid.uuid4().hex}"}},
                            timeout=300)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "SOURCE_NOT_ALLOWED"
