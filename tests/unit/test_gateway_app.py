"""The gateway's WSGI app against moto S3 and a recording dispatcher (no network).

Edge cases of issue 4: both/neither Source and Destination, bad scheme,
unknown store, missing key, unknown digest algorithm, mid-transfer failure.
"""
from __future__ import annotations

import base64
import hashlib
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import Client as WsgiClient

from dynafed_client import errors as ce
from dynafed_client.gateway import GatewayApp, GatewayConfig, Storage
from dynafed_client.gateway import errors as gerrors
from dynafed_client.mapping import StoreMapping
from dynafed_client.progress import CopyProgress
from dynafed_client.results import ChecksumResult, CopyResult
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlSource
from tests.perf_markers import markers_and_rest

DATA = b"Wikipedia" * 1000
STORES = {name: {"endpoint_url": "https://s3.amazonaws.com", "access_key_id": "AKID",
                 "secret_access_key": "secret"} for name in ("default", "archive", "hidden")}


class RecordingDispatcher:
    """Computes checksums from moto and copies within it; records every call.
    ``fail_copy`` makes the copy report progress and then raise it."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.checksums: list[tuple[ObjectRef, list[str], str]] = []
        self.copies: list[dict[str, Any]] = []
        self.fail_copy: BaseException | None = None
        self.fail_checksum: BaseException | None = None

    def checksum(self, obj: ObjectRef, algorithms: list[str], *, cache: str = "none") -> ChecksumResult:
        self.checksums.append((obj, list(algorithms), cache))
        if self.fail_checksum is not None:
            raise self.fail_checksum
        resp = self.s3.get_object(Bucket=obj.bucket, Key=obj.key)
        data = resp["Body"].read()
        values = {}
        for name in algorithms:
            values[name] = f"{zlib.adler32(data):08x}" if name == "adler32" else hashlib.new(name, data).hexdigest()
        return ChecksumResult(store=obj.store, bucket=obj.bucket, key=obj.key, size=len(data),
                              etag=resp["ETag"], checksums=values)

    def copy(self, source: ObjectRef | UrlSource, destination: ObjectRef, *, job_id: str | None = None,
             verify: str = "adler32", overwrite: bool = False,
             on_progress: Callable[[CopyProgress], None] | None = None,
             cancel: threading.Event | None = None) -> CopyResult:
        self.copies.append({"source": source, "destination": destination, "job_id": job_id, "verify": verify,
                            "overwrite": overwrite, "cancel": cancel})
        assert on_progress is not None
        if isinstance(source, UrlSource):
            data = b"from-url"
        else:
            data = self.s3.get_object(Bucket=source.bucket, Key=source.key)["Body"].read()
        for part in (1, 2, 3):
            on_progress(CopyProgress(job_id or "", len(data) * part // 4, len(data)))
            threading.Event().wait(0.01)
        if self.fail_copy is not None:
            raise self.fail_copy
        if isinstance(destination, ObjectRef):  # a URL destination (push to another site) is not ours to fake
            self.s3.put_object(Bucket=destination.bucket, Key=destination.key, Body=data)
        return CopyResult(job_id=job_id or "", status="completed", strategy="stream", bytes=len(data),
                          checksums={}, verified=True)


class RecordingProbe:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.error: gerrors.GatewayError | None = None

    def __call__(self, url: str, headers: Mapping[str, str]) -> None:
        self.calls.append((url, dict(headers)))
        if self.error is not None:
            raise self.error


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    # clients of one warm session are cheap to build (the service model is loaded once)
    return boto3.session.Session(aws_access_key_id="AKID", aws_secret_access_key="secret", region_name="us-east-1")


@pytest.fixture
def s3(session: boto3.session.Session) -> Iterator[Any]:
    with mock_aws():
        client = session.client("s3")
        for bucket in ("demo", "archive", "hid"):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket="demo", Key="dir/obj.bin", Body=DATA)
        client.put_object(Bucket="demo", Key="empty", Body=b"")
        yield client


@pytest.fixture
def dispatcher(s3: Any) -> RecordingDispatcher:
    return RecordingDispatcher(s3)


@pytest.fixture
def probe() -> RecordingProbe:
    return RecordingProbe()


def make_app(s3: Any, dispatcher: Any, probe: RecordingProbe, **overrides: Any) -> GatewayApp:
    options: dict[str, Any] = {"stores": STORES, "exposed": ("default", "archive"),
                               "http_sources": ("http://src.example",), "marker_interval_s": 0.05,
                               "marker_min_gap_s": 0.0}
    options.update(overrides)
    return GatewayApp(GatewayConfig(**options), dispatcher, storage=Storage(STORES, client_factory=lambda _: s3),
                      probe=probe)


@pytest.fixture
def client(s3: Any, dispatcher: RecordingDispatcher, probe: RecordingProbe) -> WsgiClient:
    return WsgiClient(make_app(s3, dispatcher, probe))


def b64(name: str, data: bytes) -> str:
    return base64.b64encode(hashlib.new(name, data).digest()).decode()


# -- Want-Digest ----------------------------------------------------------------------


def test_head_want_digest(client: WsgiClient, dispatcher: RecordingDispatcher) -> None:
    resp = client.head("/default/demo/dir/obj.bin", headers={"Want-Digest": "ADLER32, md5;q=0.5, UNIXcksum"})
    assert resp.status_code == 200
    assert resp.headers["Digest"] == f"adler32={zlib.adler32(DATA):08x},md5={b64('md5', DATA)}"
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert resp.headers["ETag"].strip('"') == hashlib.md5(DATA).hexdigest()
    assert resp.headers["Last-Modified"].endswith("GMT")
    assert resp.data == b""
    (ref, algorithms, cache), = dispatcher.checksums
    assert ref == ObjectRef("default", "demo", "dir/obj.bin") and algorithms == ["adler32", "md5"]
    assert cache == "use"


def test_unknown_digest_algorithm_is_absent(client: WsgiClient, dispatcher: RecordingDispatcher) -> None:
    resp = client.head("/default/demo/dir/obj.bin", headers={"Want-Digest": "UNIXcksum, foo;q=1"})
    assert resp.status_code == 200
    assert "Digest" not in resp.headers
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert dispatcher.checksums == []


def test_get_with_want_digest_streams_content(client: WsgiClient) -> None:
    resp = client.get("/default/demo/dir/obj.bin", headers={"Want-Digest": "sha-256"})
    assert resp.status_code == 200
    assert resp.headers["Digest"] == f"sha-256={b64('sha256', DATA)}"
    assert resp.data == DATA


def test_plain_get_redirects_to_presigned_url(client: WsgiClient, dispatcher: RecordingDispatcher) -> None:
    resp = client.get("/default/demo/dir/obj.bin")
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert "dir/obj.bin?" in location and "Signature=" in location
    assert dispatcher.checksums == []


def test_plain_head_has_no_digest(client: WsgiClient) -> None:
    resp = client.head("/default/demo/empty")
    assert resp.status_code == 200 and "Digest" not in resp.headers
    assert resp.headers["Content-Length"] == "0"


@pytest.mark.parametrize(("path", "status"), [
    ("/default/demo/missing", 404),        # missing key
    ("/nosuchstore/demo/x", 404),          # unknown store
    ("/hidden/hid/x", 403),                # configured but not exposed
    ("/default/demo", 404),                # not an object path
    ("/default/nosuchbucket/x", 404),
    ("/", 404),
])
def test_head_errors(client: WsgiClient, path: str, status: int) -> None:
    assert client.head(path, headers={"Want-Digest": "adler32"}).status_code == status


@pytest.mark.parametrize(("error", "status"), [
    (ce.NotFoundError(code="NO_SUCH_OBJECT", status=404, detail="gone"), 404),
    (ce.ConnectError("refused"), 503),
    (ce.ServerError(code="UPSTREAM_ERROR", status=502, detail="s3 said no"), 502),
    (ce.ConfigError("no URL for function 'checksum'"), 503),
])
def test_checksum_function_errors(client: WsgiClient, dispatcher: RecordingDispatcher, error: Exception,
                                  status: int) -> None:
    dispatcher.fail_checksum = error
    assert client.head("/default/demo/dir/obj.bin", headers={"Want-Digest": "adler32"}).status_code == status


# -- WebDAV bits gfal2 uses ---------------------------------------------------------------


def test_propfind_depth0(client: WsgiClient) -> None:
    resp = client.open("/default/demo/dir/obj.bin", method="PROPFIND", headers={"Depth": "0"})
    assert resp.status_code == 207
    body = resp.get_data(as_text=True)
    assert f"<D:getcontentlength>{len(DATA)}</D:getcontentlength>" in body
    assert "<D:resourcetype/>" in body and body.count("<D:response>") == 1
    assert client.open("/default/demo/nothing", method="PROPFIND", headers={"Depth": "0"}).status_code == 404


def test_propfind_collections(client: WsgiClient) -> None:
    resp = client.open("/default/demo/", method="PROPFIND", headers={"Depth": "1"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 207
    assert "<D:href>/default/demo/</D:href>" in body
    assert "<D:href>/default/demo/dir/</D:href>" in body and "<D:href>/default/demo/empty</D:href>" in body
    dir_resp = client.open("/default/demo/dir", method="PROPFIND", headers={"Depth": "0"})
    assert dir_resp.status_code == 207 and "<D:collection/>" in dir_resp.get_data(as_text=True)


def test_delete_then_absent(client: WsgiClient) -> None:
    assert client.delete("/default/demo/empty").status_code == 204
    assert client.head("/default/demo/empty").status_code == 404
    assert client.delete("/default/demo/empty").status_code == 404


def test_mkcol_options_and_unsupported_methods(client: WsgiClient) -> None:
    assert client.open("/default/demo/newdir", method="MKCOL").status_code == 201
    assert client.open("/default/nobucket/newdir", method="MKCOL").status_code == 404
    assert "COPY" in client.options("/default/demo/x").headers["Allow"]
    resp = client.open("/default/demo/x", method="PATCH", data=b"no")
    assert resp.status_code == 405 and "PUT" in resp.headers["Allow"]


# -- COPY ----------------------------------------------------------------------------------


def copy(client: WsgiClient, path: str, **headers: str) -> Any:
    return client.open(path, method="COPY", headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_copy_pull_success(client: WsgiClient, dispatcher: RecordingDispatcher, s3: Any) -> None:
    resp = copy(client, "/archive/archive/copy.bin", Source="http://localhost/default/demo/dir/obj.bin",
                Credential="none", X_Number_Of_Streams="0", Secure_Redirection="1", X_No_Delegate="true",
                RequireChecksumVerification="false")
    assert resp.status_code == 202
    assert resp.mimetype == "text/plain"
    seen, final = markers_and_rest(resp.get_data(as_text=True))
    assert final == "success: Created\n"
    assert seen[0] == 0 and seen[-1] == len(DATA) and seen == sorted(seen) and len(seen) >= 2
    (call,) = dispatcher.copies
    assert call["source"] == ObjectRef("default", "demo", "dir/obj.bin")
    assert call["destination"] == ObjectRef("archive", "archive", "copy.bin")
    assert call["overwrite"] is True and call["job_id"].startswith("gw-")
    assert s3.get_object(Bucket="archive", Key="copy.bin")["Body"].read() == DATA


def test_copy_push_to_our_namespace(client: WsgiClient, dispatcher: RecordingDispatcher) -> None:
    resp = copy(client, "/default/demo/dir/obj.bin", Destination="http://localhost/archive/archive/pushed")
    assert resp.status_code == 202 and resp.get_data(as_text=True).endswith("success: Created\n")
    assert dispatcher.copies[0]["destination"] == ObjectRef("archive", "archive", "pushed")


def test_copy_from_url_forwards_transfer_headers_to_the_probe(client: WsgiClient, dispatcher: RecordingDispatcher,
                                                              probe: RecordingProbe) -> None:
    resp = copy(client, "/default/demo/fromurl", Source="http://src.example/data/f?sig=1",
                TransferHeaderAuthorization="Bearer abc", TransferHeaderX_Extra="1")
    assert resp.status_code == 202 and resp.get_data(as_text=True).endswith("success: Created\n")
    assert probe.calls == [("http://src.example/data/f?sig=1", {"Authorization": "Bearer abc", "X-Extra": "1"})]
    assert dispatcher.copies[0]["source"] == UrlSource("http://src.example/data/f?sig=1")


def test_mapping_file_prefixes_are_ours(s3: Any, dispatcher: RecordingDispatcher, probe: RecordingProbe) -> None:
    mapping = StoreMapping.from_dict({"prefix": [{"url": "https://s3.example.org/demo/", "store": "default",
                                                  "bucket": "demo"}]})
    client = WsgiClient(make_app(s3, dispatcher, probe, mapping=mapping))
    resp = copy(client, "/archive/archive/m", Source="https://s3.example.org/demo/dir/obj.bin")
    assert resp.status_code == 202
    assert dispatcher.copies[0]["source"] == ObjectRef("default", "demo", "dir/obj.bin")
    assert probe.calls == []


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/archive/archive/x", {"Source": "http://localhost/default/demo/dir/obj.bin",
                            "Destination": "http://localhost/archive/archive/y"}, 400),   # both
    ("/archive/archive/x", {"Credential": "none"}, 400),                                  # neither
    ("/archive/archive/x", {"Source": "ftp://localhost/default/demo/dir/obj.bin"}, 400),   # bad scheme
    ("/archive/archive/x", {"Destination": "file:///etc/passwd"}, 400),
    ("/nosuch/archive/x", {"Source": "http://localhost/default/demo/dir/obj.bin"}, 404),  # unknown store
    ("/hidden/hid/x", {"Source": "http://localhost/default/demo/dir/obj.bin"}, 403),      # not exposed
    ("/archive/archive/x", {"Source": "http://localhost/nosuch/demo/dir/obj.bin"}, 404),  # unknown source store
    ("/archive/archive/x", {"Source": "http://localhost/default/demo/missing"}, 404),     # missing source
    ("/archive/nobucket/x", {"Source": "http://localhost/default/demo/dir/obj.bin"}, 404),
    ("/archive/archive/x", {"Source": "http://elsewhere.example/f"}, 403),                # not allowed
    ("/default/demo/dir/obj.bin", {"Destination": "http://elsewhere.example/f"}, 403),    # push out
    ("/default/demo/dir/obj.bin", {"Destination": "http://localhost/default/demo/dir/obj.bin"}, 400),  # itself
    ("/default/demo/empty", {"Source": "http://localhost/default/demo/dir/obj.bin", "Overwrite": "F"}, 412),
])
def test_copy_refused_before_the_body(client: WsgiClient, dispatcher: RecordingDispatcher, path: str,
                                      headers: dict[str, str], status: int) -> None:
    resp = client.open(path, method="COPY", headers=headers)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert "Perf Marker" not in resp.get_data(as_text=True)
    assert dispatcher.copies == []


@pytest.mark.parametrize(("error", "status"), [
    (gerrors.NotFound("source not found"), 404), (gerrors.Forbidden("source refused access (HTTP 403)"), 403)])
def test_url_source_probe_failures(client: WsgiClient, probe: RecordingProbe, dispatcher: RecordingDispatcher,
                                   error: gerrors.GatewayError, status: int) -> None:
    probe.error = error
    assert copy(client, "/default/demo/u", Source="http://src.example/f").status_code == status
    assert dispatcher.copies == []


def test_mid_transfer_failure_ends_with_failure_line(client: WsgiClient, dispatcher: RecordingDispatcher,
                                                     s3: Any) -> None:
    dispatcher.fail_copy = ce.ServerError(code="UPSTREAM_ERROR", status=502, detail="connection reset by store")
    resp = copy(client, "/archive/archive/broken", Source="http://localhost/default/demo/dir/obj.bin")
    assert resp.status_code == 202
    seen, final = markers_and_rest(resp.get_data(as_text=True))
    assert final == "failure: UPSTREAM_ERROR: connection reset by store\n"
    assert seen == sorted(seen) and seen[-1] > 0
    assert "Contents" not in s3.list_objects_v2(Bucket="archive")


def test_bearer_token_required_when_configured(s3: Any, dispatcher: RecordingDispatcher,
                                               probe: RecordingProbe) -> None:
    client = WsgiClient(make_app(s3, dispatcher, probe, token="s3cret"))
    assert client.head("/default/demo/empty").status_code == 401
    assert client.head("/default/demo/empty", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.head("/default/demo/empty", headers={"Authorization": "Bearer s3cret"}).status_code == 200


# -- Want-Repr-Digest (RFC 9530) -----------------------------------------------------


def test_head_want_repr_digest(client: WsgiClient, dispatcher: RecordingDispatcher) -> None:
    """RFC 9530 §3: byte sequences between colons, adler32 as ``adler`` (4 bytes
    big-endian) — what XRootD's TPC puller asks for (xrootd src/XrdHttpTpc);
    one checksum call serves Want-Digest and Want-Repr-Digest together."""
    resp = client.head("/default/demo/dir/obj.bin", headers={"Want-Repr-Digest": "sha-256=3, adler=9, crc32=5",
                                                             "Want-Digest": "adler32"})
    assert resp.status_code == 200
    adler = base64.b64encode(zlib.adler32(DATA).to_bytes(4, "big")).decode()
    assert resp.headers["Repr-Digest"] == f"adler=:{adler}:, sha-256=:{b64('sha256', DATA)}:"
    assert resp.headers["Digest"] == f"adler32={zlib.adler32(DATA):08x}"
    (_, algorithms, _), = dispatcher.checksums
    assert algorithms == ["adler32", "sha256"]


def test_want_repr_digest_weight_zero_and_unknown_are_not_answered(client: WsgiClient,
                                                                   dispatcher: RecordingDispatcher) -> None:
    resp = client.head("/default/demo/dir/obj.bin", headers={"Want-Repr-Digest": "sha-512=0, unixsum=4"})
    assert resp.status_code == 200
    assert "Repr-Digest" not in resp.headers and "Digest" not in resp.headers
    assert dispatcher.checksums == []


def test_want_digest_adler_alias(client: WsgiClient) -> None:
    """XRootD maps ``adler`` to adler32; answered under the token asked (hex)."""
    resp = client.head("/default/demo/dir/obj.bin", headers={"Want-Digest": "adler"})
    assert resp.headers["Digest"] == f"adler={zlib.adler32(DATA):08x}"


def test_double_slash_from_a_dynafed_endpoint_url_names_the_same_key(client: WsgiClient) -> None:
    """``locplugin.<id>: https://gw/default/demo/`` + ``/dir/obj.bin`` = ``//dir/obj.bin``
    (Dynafed ``LocationPlugin::doNameXlation`` keeps the leading slash)."""
    resp = client.head("/default/demo//dir/obj.bin", headers={"Want-Digest": "adler32"})
    assert resp.status_code == 200
    assert resp.headers["Digest"] == f"adler32={zlib.adler32(DATA):08x}"
