"""The gateway as a full WLCG HTTP endpoint (moto S3, a recording dispatcher,
real loopback WebDAV targets): push COPY to another site, one job per
(source, destination), cancel on hang-up, PUT, MOVE, PROPFIND paging and
bucket listing, WLCG token authentication.

Peer behaviour these follow, from the peers' source:

* gfal2's push: ``COPY`` to the source with ``Destination:`` (cern-fts/gfal2
  src/plugins/http/gfal_http_copy.cpp, ``gfal_http_third_party_copy``) and,
  holding a token, ``TransferHeaderAuthorization`` for the far side
  (src/plugins/http/gfal_http_plugin.cpp, ``GfalHttpPluginData::get_token``);
  with overwrite it DELETEs the destination first (``gfal_http_copy_overwrite``)
  and FTS retries a failed transfer with a new COPY.
* XRootD pushing into us: ``PUT`` with ``Content-Length`` and ``Expect:
  100-continue``, following redirects (xrootd/xrootd
  src/XrdHttpTpc/XrdHttpTpcState.cc, ``State::InstallHandlers``,
  ``State::SetupHeaders``).
* WLCG Common JWT Profile v1.0 §3.3: ``storage.read`` / ``storage.create`` /
  ``storage.modify`` with a path; ``https://wlcg.cern.ch/jwt/v1/any`` audience.
"""
# ruff: noqa: F811 - the fixtures of test_gateway_app are imported and used as arguments
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import zlib
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.test import Client as WsgiClient

from dynafed_client.gateway import GatewayConfig, auth, upload
from dynafed_client.gateway.jobs import RunningCopies, job_id_for
from dynafed_client.gateway.transfers import TransferStream
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlDestination, UrlSource
from tests.faults.webdavtarget import WebDavTarget
from tests.unit.test_gateway_app import (  # noqa: F401 - fixtures
    STORES,
    RecordingDispatcher,
    dispatcher,
    make_app,
    probe,
    s3,
    session,
)

MiB = 1024 * 1024
ISSUER = "https://iam.example.org/"
AUDIENCE = "https://gateway.example.org"


# -- push COPY to another site's storage ----------------------------------------------------

def test_push_copy_to_an_allowed_url_sends_the_transfer_headers_with_the_destination(s3, dispatcher, probe):
    with WebDavTarget(token="Bearer far") as far:
        app = make_app(s3, dispatcher, probe, http_destinations=(far.url,), allow_private_sources=True)
        resp = WsgiClient(app).open("/default/demo/dir/obj.bin", method="COPY",
                                    headers={"Destination": far.url + "/store/obj.bin",
                                             "TransferHeaderAuthorization": "Bearer far"})
        body = resp.get_data(as_text=True)
        (head,) = far.requests  # the pre-flight HEAD, with the far side's credential
    assert resp.status_code == 202 and body.endswith("success: Created\n")
    assert head[0] == "HEAD" and head[2]["Authorization"] == "Bearer far"
    (call,) = dispatcher.copies
    assert call["destination"] == UrlDestination(far.url + "/store/obj.bin")
    assert dict(call["destination"].headers) == {"Authorization": "Bearer far"}
    assert call["job_id"] == job_id_for(ObjectRef("default", "demo", "dir/obj.bin"), call["destination"])


@pytest.mark.parametrize(("case", "status"), [("not-allowed", 403), ("refused", 403), ("exists", 412),
                                              ("private", 403)])
def test_push_copy_refusals_are_statuses_before_the_body(s3, dispatcher, probe, case, status):
    with WebDavTarget(token="Bearer far") as far:
        far.files["/store/obj.bin"] = b"old"
        allowed = ("http://elsewhere.example",) if case == "not-allowed" else (far.url,)
        app = make_app(s3, dispatcher, probe, http_destinations=allowed, allow_private_sources=case != "private")
        headers = {"Destination": far.url + "/store/obj.bin", "Overwrite": "F"}
        if case != "refused":
            headers["TransferHeaderAuthorization"] = "Bearer far"
        resp = WsgiClient(app).open("/default/demo/dir/obj.bin", method="COPY", headers=headers)
        contacted = list(far.requests)
    assert resp.status_code == status and not dispatcher.copies
    assert contacted == [] if case in ("not-allowed", "private") else len(contacted) == 1


def test_job_id_is_one_per_source_and_destination():
    a, b = ObjectRef("default", "demo", "a"), ObjectRef("archive", "demo", "a")
    assert job_id_for(a, b) == job_id_for(a, b) != job_id_for(b, a)
    # a presigned source re-signed for the retry is the same job
    assert job_id_for(UrlSource("https://h.example/o?X-Amz-Signature=1"), b) == \
        job_id_for(UrlSource("https://h.example/o?X-Amz-Signature=2"), b)
    assert job_id_for(a, UrlDestination("https://far.example/x", {"Authorization": "t1"})) == \
        job_id_for(a, UrlDestination("https://far.example/x", {"Authorization": "t2"}))


# -- cancel on disconnect, one running copy per job -------------------------------------------

class BlockingRun:
    """A copy that reports progress, then waits for its cancel (event-driven)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    def __call__(self, cancel: threading.Event) -> Any:
        def run(report: Any) -> int:
            report(1)
            self.started.set()
            if not cancel.wait(30):
                raise AssertionError("never cancelled")
            self.cancelled.set()
            raise RuntimeError("cancelled")
        return run


def test_a_client_hanging_up_cancels_the_copy():
    copies = RunningCopies()
    handle = copies.begin("job")
    blocking = BlockingRun()
    stream = TransferStream(blocking(handle.cancel), heartbeat_s=5, cancel=handle.cancel,
                            on_end=lambda: copies.end("job", handle))
    chunks = iter(stream)
    assert next(chunks).startswith("Perf Marker")
    assert blocking.started.wait(10)
    chunks.close()  # the WSGI server closes the body when the client is gone
    assert handle.done.wait(10) and blocking.cancelled.is_set() and copies.running("job") is None


def test_a_body_never_sent_still_ends_its_job():
    copies = RunningCopies()
    handle = copies.begin("job")
    stream = TransferStream(lambda report: 0, cancel=handle.cancel, on_end=lambda: copies.end("job", handle))
    stream.close()
    assert handle.done.is_set() and handle.cancel.is_set() and copies.running("job") is None


def test_a_retried_copy_replaces_the_running_one_instead_of_racing_it():
    copies = RunningCopies(stop_wait_s=30)
    first = copies.begin("job")
    order: list[str] = []

    def older() -> None:  # the first COPY's copy thread: runs until cancelled
        assert first.cancel.wait(30)
        order.append("first stopped")
        copies.end("job", first)

    thread = threading.Thread(target=older)
    thread.start()
    second = copies.begin("job")  # returns only once the first has ended
    order.append("second started")
    thread.join(10)
    assert order == ["first stopped", "second started"] and copies.running("job") is second


def test_a_copy_that_will_not_stop_makes_the_retry_a_409():
    copies = RunningCopies(stop_wait_s=0.01)
    copies.begin("job")
    with pytest.raises(Exception) as raised:
        copies.begin("job")
    assert getattr(raised.value, "status", None) == 409


# -- PUT ----------------------------------------------------------------------------------------

def test_put_creates_then_replaces_and_states_adler32(s3, dispatcher, probe):
    client = WsgiClient(make_app(s3, dispatcher, probe))
    data = b"uploaded by gfal-copy" * 100
    created = client.put("/default/demo/up/new.bin", data=data)
    replaced = client.put("/default/demo/up/new.bin", data=data[::-1])
    assert created.status_code == 201 and replaced.status_code == 204
    assert created.headers["Digest"] == f"adler32={zlib.adler32(data):08x}"
    assert s3.get_object(Bucket="demo", Key="up/new.bin")["Body"].read() == data[::-1]


def test_put_with_a_wrong_stated_digest_stores_nothing(s3, dispatcher, probe):
    client = WsgiClient(make_app(s3, dispatcher, probe))
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()  # noqa: S324
    wrong_adler = base64.b64encode((12345).to_bytes(4, "big")).decode()
    for headers in ({"Content-MD5": wrong_md5}, {"Repr-Digest": f"adler=:{wrong_adler}:"}):
        resp = client.put("/default/demo/up/bad.bin", data=b"payload", headers=headers)
        assert resp.status_code == 400 and "nothing was stored" in resp.get_data(as_text=True)
    assert "Contents" not in s3.list_objects_v2(Bucket="demo", Prefix="up/")


def test_put_if_none_match_and_missing_bucket(s3, dispatcher, probe):
    client = WsgiClient(make_app(s3, dispatcher, probe))
    assert client.put("/default/demo/dir/obj.bin", data=b"x", headers={"If-None-Match": "*"}).status_code == 412
    assert client.put("/default/nobucket/a", data=b"x").status_code == 404


def test_streamed_multipart_upload_checks_before_completing(s3):
    data = bytes(range(256)) * (4 * 5 * MiB // 256) + b"tail"
    ref = ObjectRef("default", "demo", "big.bin")
    adler = f"{zlib.adler32(data):08x}"
    result = upload.receive(s3, ref, _Reader(data), length=len(data), content_type=None,
                            stated={"adler32": adler}, existed=False, part_size=5 * MiB)
    stored = s3.get_object(Bucket="demo", Key="big.bin")
    assert result.adler32 == adler and stored["ETag"].endswith('-5"') and stored["Body"].read() == data
    assert stored["Metadata"]["adler32"] == adler
    with pytest.raises(Exception, match="nothing was stored"):
        upload.receive(s3, ObjectRef("default", "demo", "big2.bin"), _Reader(data), length=len(data),
                       content_type=None, stated={"adler32": "00000001"}, existed=False, part_size=5 * MiB)
    with pytest.raises(Exception, match="ended after"):
        upload.receive(s3, ObjectRef("default", "demo", "big3.bin"), _Reader(data[:7 * MiB]), length=len(data),
                       content_type=None, stated={}, existed=False, part_size=5 * MiB)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="demo").get("Contents", [])]
    assert "big2.bin" not in keys and "big3.bin" not in keys
    assert not s3.list_multipart_uploads(Bucket="demo").get("Uploads")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int) -> bytes:
        chunk = self._data[self._pos:self._pos + n]
        self._pos += len(chunk)
        return chunk


# -- MOVE, PROPFIND ------------------------------------------------------------------------------

def test_move_within_a_store(s3, dispatcher, probe):
    client = WsgiClient(make_app(s3, dispatcher, probe))
    s3.put_object(Bucket="demo", Key="m/a", Body=b"moving")
    s3.put_object(Bucket="demo", Key="m/taken", Body=b"here")
    host = "http://localhost"
    assert client.open("/default/demo/m/a", method="MOVE",
                       headers={"Destination": f"{host}/default/demo/m/taken", "Overwrite": "F"}).status_code == 412
    assert client.open("/default/demo/m/a", method="MOVE",
                       headers={"Destination": f"{host}/default/demo/m/b"}).status_code == 201
    assert s3.get_object(Bucket="demo", Key="m/b")["Body"].read() == b"moving"
    assert "m/a" not in [o["Key"] for o in s3.list_objects_v2(Bucket="demo", Prefix="m/")["Contents"]]
    across = client.open("/default/demo/m/b", method="MOVE", headers={"Destination": f"{host}/archive/archive/b"})
    assert across.status_code == 502 and "between stores" in across.get_data(as_text=True)


def test_propfind_depth1_lists_beyond_1000_children(s3, dispatcher, probe):
    for i in range(2345):
        s3.put_object(Bucket="archive", Key=f"many/f{i:05d}", Body=b"")
    client = WsgiClient(make_app(s3, dispatcher, probe))
    resp = client.open("/default/archive/many/", method="PROPFIND", headers={"Depth": "1"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 207 and body.count("<D:response>") == 2345 + 1
    assert body.rstrip().endswith("</D:multistatus>")


def test_propfind_of_a_store_lists_its_buckets(s3, dispatcher, probe):
    resp = WsgiClient(make_app(s3, dispatcher, probe)).open("/default/", method="PROPFIND", headers={"Depth": "1"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 207 and "/default/demo/" in body and "/default/archive/" in body


def test_propfind_of_a_store_whose_credentials_may_not_list_says_why(s3, dispatcher, probe):
    from botocore.exceptions import ClientError

    class NoListing:
        def __getattr__(self, name: str) -> Any:
            return getattr(s3, name)

        def list_buckets(self) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                              "ListBuckets")

    app = make_app(s3, dispatcher, probe)
    app.storage._clients["default"] = NoListing()
    resp = WsgiClient(app).open("/default/", method="PROPFIND", headers={"Depth": "1"})
    assert resp.status_code == 403 and "ListAllMyBuckets" in resp.get_data(as_text=True)


# -- authentication ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signing_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_file(tmp_path: Any, signing_key: Any) -> str:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    return str(path)


def token(key: Any, scope: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 600, "iat": now, "nbf": now,
            "wlcg.ver": "1.0", "scope": scope, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def authed(s3, dispatcher, probe, jwks_file) -> WsgiClient:
    settings = auth.JwtSettings.from_files(jwks_file, issuers=[ISSUER], audiences=[AUDIENCE])
    return WsgiClient(make_app(s3, dispatcher, probe, jwt=settings, token="static-secret"))


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_health_probes_stay_open_everything_else_needs_a_token(authed):
    """Dynafed's availability check is a bare HEAD of the endpoint's ping URL,
    OFFLINE outside 200-399 (indigo-dc/dynafed src/plugins/httpclient/
    httpavailabilitychecker.cc, ``HttpAvailabilityChecker::polling_task``)."""
    assert authed.head("/").status_code == 200 and authed.head("/default/demo/").status_code == 200
    for path in ("/default", "/default/demo/"):
        assert authed.open(path, method="OPTIONS").status_code == 200
    refused = [authed.head("/default/demo/dir/obj.bin"), authed.put("/default/demo/x", data=b"x"),
               authed.delete("/default/demo/dir/obj.bin"),
               authed.open("/default/demo/x", method="COPY", headers={"Source": "http://src.example/a"})]
    assert all(r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"] for r in refused)


def test_scopes_decide_per_activity_and_path(authed, signing_key, s3):
    reader = bearer(token(signing_key, "storage.read:/default"))
    creator = bearer(token(signing_key, "storage.create:/default/demo/up storage.read:/"))
    modifier = bearer(token(signing_key, "storage.modify:/default/demo"))
    assert authed.head("/default/demo/dir/obj.bin", headers=reader).status_code == 200
    assert authed.put("/default/demo/up/a", data=b"x", headers=reader).status_code == 403
    assert authed.put("/default/demo/up/a", data=b"x", headers=creator).status_code == 201
    # storage.create creates; replacing needs storage.modify
    assert authed.put("/default/demo/up/a", data=b"y", headers=creator).status_code == 412
    assert authed.put("/default/demo/up/a", data=b"y", headers=modifier).status_code == 204
    assert authed.delete("/default/demo/up/a", headers=creator).status_code == 403
    assert authed.delete("/default/demo/up/a", headers=modifier).status_code == 204
    assert authed.put("/default/demo/other", data=b"x", headers=creator).status_code == 403
    assert authed.head("/archive/archive/x", headers=reader).status_code == 403


@pytest.mark.parametrize(("claims", "reason"), [
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"aud": "https://someone-else.example"}, "audience"),
    ({"iss": "https://rogue.example/"}, "issuer"),
])
def test_unusable_tokens_are_401_with_the_reason(authed, signing_key, claims, reason):
    resp = authed.get("/default/demo/dir/obj.bin", headers=bearer(token(signing_key, "storage.read:/", **claims)))
    assert resp.status_code == 401 and reason in resp.get_data(as_text=True)


def test_a_token_signed_by_another_key_and_the_wlcg_any_audience(authed, signing_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = authed.head("/default/demo/dir/obj.bin", headers=bearer(token(other, "storage.read:/")))
    anyone = authed.head("/default/demo/dir/obj.bin",
                         headers=bearer(token(signing_key, "storage.read:/", aud=auth.WLCG_ANY_AUDIENCE)))
    assert forged.status_code == 401 and anyone.status_code == 200


def test_the_static_token_still_works_and_pem_keys_load(authed, signing_key, tmp_path):
    assert authed.head("/default/demo/dir/obj.bin", headers=bearer("static-secret")).status_code == 200
    pem = tmp_path / "keys.pem"
    pem.write_bytes(signing_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    settings = auth.JwtSettings.from_files(str(pem), issuers=[ISSUER], audiences=[AUDIENCE])
    principal = auth.Authenticator(jwt_settings=settings).authenticate(f"Bearer {token(signing_key, 'storage.read:/')}")
    assert principal.subject == "alice" and principal.may(auth.READ, "/default/x")


def test_tokens_never_reach_the_log(authed, signing_key, caplog):
    value = token(signing_key, "storage.read:/", exp=int(time.time()) - 3600)
    caplog.set_level("DEBUG")
    authed.head("/default/demo/dir/obj.bin", headers=bearer(value))
    assert value not in caplog.text and value.split(".")[2] not in caplog.text


def test_gateway_config_takes_the_jwt_settings(jwks_file):
    settings = auth.JwtSettings.from_files(jwks_file, issuers=[ISSUER], audiences=[AUDIENCE])
    config = GatewayConfig(stores=STORES, jwt=settings, http_destinations=("https://far.example/",))
    assert "keys" not in repr(config) and config.destination_allow_list
    assert isinstance(RecordingDispatcher, type)
