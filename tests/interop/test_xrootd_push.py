"""Push mode and uploads against real peers (XRootD, gfal2, davix), in one
private network namespace (tests/interop/xrootd.py):

* push COPY gateway -> XRootD (gfal-copy --copy-mode push; davix-cp), byte-identical;
* XRootD pushing into the gateway (the gateway answers the PUT);
* gfal-copy file:// -> gateway (a streamed PUT);
* a push to a macaroon-protected XRootD path, with and without the token;
* a client hanging up mid-COPY: the destination ends absent or complete, and
  the retried COPY never races the abandoned one.

Peer behaviour relied on, from the peers' source:

* gfal2 push: ``COPY`` to the *source* with ``Destination:`` and, holding a
  token (``BEARER_TOKEN``), ``TransferHeaderAuthorization`` for the far side
  (cern-fts/gfal2 src/plugins/http/gfal_http_copy.cpp,
  ``gfal_http_third_party_copy``; gfal_http_plugin.cpp,
  ``GfalHttpPluginData::get_token``);
  ``file://`` to http is a streamed PUT through davix
  (``gfal_http_streamed_copy``).
* davix-cp between two http URLs is a third-party push: ``COPY`` with
  ``Destination`` sent to the source (cern-fts/davix src/modules/copy/copy.cpp,
  ``DavixCopyInternal::copy``), reading the Perf Marker body.
* XRootD as the push's active party: ``PUT`` with ``Content-Length``,
  ``Expect: 100-continue``, following redirects, Perf Markers to its client
  (xrootd/xrootd src/XrdHttpTpc/XrdHttpTpcTPC.cc ``TPCHandler::ProcessPushReq``,
  XrdHttpTpcState.cc ``State::InstallHandlers`` / ``State::SetupHeaders``);
  as a PUT destination it refuses a protected path without a macaroon granting
  ``UPLOAD`` (src/XrdMacaroons/XrdMacaroonsAuthz.cc, ``AuthzCheck::verify_activity``).
"""
from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.faults.webdavtarget import Gate, WebDavTarget
from tests.interop.helpers import gateway_process, require
from tests.interop.xrootd import XRootDPeer, gateway_trusting, stack_trusting, xrootd_missing, xrootd_peer

MiB = 1024 * 1024
BUCKET = "demo"


@pytest.fixture(scope="module")
def peer() -> Iterator[XRootDPeer]:
    require(xrootd_missing())
    with xrootd_peer() as p:
        yield p


@pytest.fixture(scope="module")
def site(peer: XRootDPeer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The local stack inside the namespace; its copy function may PUT to
    XRootD (trusting the throwaway CA) and to loopback; a gateway allowing
    the same push destinations."""
    from dynafed_client.stack import StackError

    state = tmp_path_factory.mktemp("xrootd-push-stack")
    destinations = f"http://127.0.0.1,{peer.server.base_url}"
    try:
        st = stack_trusting(peer, state, {"DYNAFED_FN_HTTP_DESTINATIONS": destinations,
                                          "DYNAFED_FN_COPY_PART_BYTES": str(5 * MiB)})
    except StackError as exc:
        pytest.fail(f"local stack failed to start in the namespace:\n{exc}", pytrace=False)
    with st, gateway_trusting(peer, state, env={"DYNAFED_FN_HTTP_DESTINATIONS": destinations}) as gateway:
        yield {"stack": st, "gateway": gateway, "state": state}


def put(site: dict[str, Any], data: bytes) -> str:
    key = f"push-{uuid.uuid4().hex[:12]}/obj.bin"
    site["stack"].s3_client("default").put_object(Bucket=BUCKET, Key=key, Body=data)
    return key


def read(site: dict[str, Any], key: str) -> bytes:
    return bytes(site["stack"].s3_client("default").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def gw(site: dict[str, Any], key: str) -> str:
    return f"{site['gateway']}/default/{BUCKET}/{key}"


def gateway_log(site: dict[str, Any]) -> str:
    """What the gateway logged (one line per request: method, path, status)."""
    port = urlsplit(site["gateway"]).port
    return (site["state"] / f"test-gateway-{port}.log").read_text(errors="replace")


def test_push_copy_from_the_gateway_to_xrootd_is_byte_identical(peer: XRootDPeer, site: dict[str, Any]) -> None:
    data = os.urandom(11 * MiB + 3)
    key = put(site, data)
    name = f"public/push/{uuid.uuid4().hex}.bin"
    done = peer.gfal("gfal-copy", "-f", "-K", "ADLER32", "--copy-mode", "push", gw(site, key),
                     peer.server.url(name))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert peer.server.read(name) == data
    assert "COPY push job gw-" in gateway_log(site)  # third-party push, not a copy through gfal itself


def test_davix_cp_pushes_from_the_gateway(peer: XRootDPeer, site: dict[str, Any]) -> None:
    data = os.urandom(6 * MiB + 1)
    key = put(site, data)
    name = f"public/davix/{uuid.uuid4().hex}.bin"
    done = subprocess.run(["davix-cp", "--capath", str(peer.ca.cert_dir), gw(site, key), peer.server.url(name)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert peer.server.read(name) == data
    assert gateway_log(site).count("COPY push job gw-") >= 1


def test_xrootd_pushes_into_the_gateway(peer: XRootDPeer, site: dict[str, Any]) -> None:
    """gfal2 asks XRootD to push (COPY + Destination to XRootD); XRootD PUTs
    into the gateway, which streams the body into the store."""
    data = os.urandom(7 * MiB + 9)
    src = peer.server.write(f"public/outbound/{uuid.uuid4().hex}.bin", data)
    key = f"from-xrootd-{uuid.uuid4().hex}/obj.bin"
    done = peer.gfal("gfal-copy", "-f", "-K", "ADLER32", "--copy-mode", "push", src, gw(site, key))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert read(site, key) == data
    assert f"PUT /default/{BUCKET}/{key} -> 201" in gateway_log(site)  # XRootD's PUT reached us


def test_gfal_copy_uploads_a_local_file_to_the_gateway(peer: XRootDPeer, site: dict[str, Any],
                                                      tmp_path: Path) -> None:
    data = os.urandom(9 * MiB + 11)
    local = tmp_path / "upload.bin"
    local.write_bytes(data)
    key = f"upload-{uuid.uuid4().hex}/obj.bin"
    done = peer.gfal("gfal-copy", "-K", "ADLER32", f"file://{local}", gw(site, key))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert read(site, key) == data
    assert f"PUT /default/{BUCKET}/{key} -> 201" in gateway_log(site)
    listed = peer.gfal("gfal-ls", f"{site['gateway']}/default/")
    assert listed.returncode == 0 and BUCKET in listed.stdout.split(), listed.stdout + listed.stderr


def test_token_protected_push_to_xrootd(peer: XRootDPeer, site: dict[str, Any]) -> None:
    """With a macaroon granting UPLOAD as ``TransferHeaderAuthorization``
    (gfal2's BEARER_TOKEN) the push lands; without it the gateway's
    pre-flight HEAD is refused and the COPY is a 403 before any byte moves."""
    data = os.urandom(5 * MiB + 7)
    key = put(site, data)
    token = peer.server.mint_macaroon("protected/", activities=("UPLOAD", "MANAGE", "DELETE", "DOWNLOAD",
                                                                "READ_METADATA", "LIST"))
    refused_name = f"protected/push/{uuid.uuid4().hex}.bin"
    refused = requests.request("COPY", gw(site, key), headers={"Destination": peer.server.url(refused_name)},
                               timeout=120)
    assert refused.status_code == 403 and "refused access" in refused.text, refused.text[:300]
    assert not peer.server.exists(refused_name)
    name = f"protected/push/{uuid.uuid4().hex}.bin"
    done = peer.gfal("gfal-copy", "-K", "ADLER32", "--copy-mode", "push", gw(site, key), peer.server.url(name),
                     env={"BEARER_TOKEN": token})
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert peer.server.read(name) == data
    for path in site["state"].glob("*.log"):
        assert token not in path.read_text(errors="replace"), f"the token appears in {path.name}"


class _Counting(WebDavTarget):
    """Counts PUTs of a path being received at the same time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.active = 0
        self.most_active = 0
        self._count = threading.Lock()

    def _put(self, handler: Any) -> None:
        with self._count:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            super()._put(handler)
        finally:
            with self._count:
                self.active -= 1


def test_a_client_hanging_up_mid_copy_leaves_the_destination_absent_and_the_retry_alone(
        peer: XRootDPeer, site: dict[str, Any]) -> None:
    """A push COPY whose client disconnects once the destination holds bytes
    (the target's gate holds the PUT there): the gateway cancels the copy,
    the copy function shuts its PUT down and DELETEs — the DELETE reaching
    the target, while its PUT is still held, is the event the test waits
    for; then the target may go on. The client's retry (same source and
    destination: the same job) completes, and no two PUTs of the destination
    ever overlap."""
    data = os.urandom(40 * MiB)
    key = put(site, data)
    gate = Gate()
    with _Counting(gate=gate) as target:
        destination = f"{target.url}/site/obj.bin"
        parts = urlsplit(site["gateway"])
        client = socket.create_connection((parts.hostname, parts.port), timeout=120)
        client.sendall(f"COPY /default/{BUCKET}/{key} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                       f"Destination: {destination}\r\nContent-Length: 0\r\n\r\n".encode())
        assert client.recv(64).startswith(b"HTTP/1.1 202")  # accepted: the copy runs
        assert gate.reached.wait(120)  # the destination holds the first bytes
        client.shutdown(socket.SHUT_RDWR)  # hang up, as a killed client does
        client.close()
        assert target.wait_for_request("DELETE")  # cancelled while its PUT was held
        gate.go.set()
        retry = requests.request("COPY", gw(site, key), headers={"Destination": destination}, timeout=600)
        body = retry.text
        assert retry.status_code == 202 and body.rstrip().endswith("success: Created"), body[-300:]
        assert target.files["/site/obj.bin"] == data
        assert target.most_active == 1, "two PUTs of the destination overlapped"
        methods = target.methods()
    # the abandoned copy ended with a DELETE before the retry's PUT started
    assert methods.count("PUT") == 2 and "DELETE" in methods[methods.index("PUT"):]
    assert zlib.adler32(target.files["/site/obj.bin"]) == zlib.adler32(data)


def test_gfal_rename_moves_within_a_store(peer: XRootDPeer, site: dict[str, Any]) -> None:
    """``gfal-rename`` is a WebDAV MOVE with an absolute ``Destination``
    (cern-fts/gfal2 src/plugins/http/gfal_http_plugin_metadata.cpp,
    ``gfal_http_rename``); within one store the gateway does it server-side."""
    data = os.urandom(3 * MiB + 5)
    key = put(site, data)
    moved = f"moved-{uuid.uuid4().hex}/obj.bin"
    done = peer.gfal("gfal-rename", gw(site, key), gw(site, moved))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert read(site, moved) == data
    with pytest.raises(Exception, match="NoSuchKey|Not Found|404"):
        read(site, key)


def test_gfal2_with_a_wlcg_token_uploads_through_an_authenticating_gateway(peer: XRootDPeer, site: dict[str, Any],
                                                                          tmp_path: Path) -> None:
    """A gateway verifying WLCG JWTs (--jwt-keys): gfal2 sends ``BEARER_TOKEN``
    as ``Authorization`` to the endpoint it talks to (cern-fts/gfal2
    src/plugins/http/gfal_http_plugin.cpp, ``GfalHttpPluginData::get_token``);
    a token with ``storage.create`` on the bucket uploads, one with only
    ``storage.read`` and none at all are refused and store nothing, and the
    bucket's HEAD (the health probe) needs no token."""
    import json
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True),
                                          "kid": "t1", "alg": "RS256", "use": "sig"}]}))
    issuer, audience = "https://iam.test.example/", "https://gateway.test.example"

    def token(scope: str) -> str:
        now = int(time.time())
        return jwt.encode({"iss": issuer, "aud": audience, "sub": "tester", "exp": now + 600, "iat": now,
                           "wlcg.ver": "1.0", "scope": scope}, key, algorithm="RS256", headers={"kid": "t1"})

    data = os.urandom(2 * MiB + 3)
    local = tmp_path / "up.bin"
    local.write_bytes(data)
    with gateway_process(site["state"], "--jwt-keys", str(jwks), "--jwt-issuer", issuer, "--jwt-audience",
                         audience) as gateway:
        base = f"{gateway}/default/{BUCKET}"
        assert requests.head(f"{base}/", timeout=30).status_code == 200
        refused = {}
        for label, env in (("no token", {}), ("read-only", {"BEARER_TOKEN": token(f"storage.read:/default/{BUCKET}")})):
            key_name = f"jwt-refused-{uuid.uuid4().hex}.bin"
            done = peer.gfal("gfal-copy", f"file://{local}", f"{base}/{key_name}", env=env)
            refused[label] = done.returncode
            with pytest.raises(Exception, match="NoSuchKey|Not Found|404"):
                read(site, key_name)
        assert all(code != 0 for code in refused.values()), refused
        key_name = f"jwt-upload-{uuid.uuid4().hex}.bin"
        done = peer.gfal("gfal-copy", "-K", "ADLER32", f"file://{local}", f"{base}/{key_name}",
                         env={"BEARER_TOKEN": token(f"storage.create:/default/{BUCKET} storage.read:/default")})
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        assert read(site, key_name) == data
