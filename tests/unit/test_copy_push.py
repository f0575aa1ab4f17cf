"""Push: the copy function PUTs an object to an http(s)/WebDAV destination
(functions/copy/push.py), through its WSGI interface with moto's server as
the source store and a real loopback WebDAV target that records every request
(tests/faults/webdavtarget.py).

The peer behaviour copied here: XRootD as a push destination answers a PUT
with 201 (xrootd/xrootd src/XrdHttp/XrdHttpReq.cc,
``XrdHttpReq::PostProcessHTTPReq``, ``rtPUT``) and a HEAD asking
``Want-Digest`` with ``Digest: adler32=<hex>`` (the same file,
``XrdHttpReq::parseLine`` for ``want-digest``; src/XrdHttp/XrdHttpChecksumHandler.cc);
as a pusher itself it sends
``Content-Length`` and the client's ``TransferHeader*`` headers stripped of
the prefix (src/XrdHttpTpc/XrdHttpTpcState.cc, ``State::SetupHeaders``), which
is what the destination headers of the copy request carry. gfal2 deletes an
existing destination before an overwriting copy (cern-fts/gfal2
src/plugins/http/gfal_http_copy.cpp, ``gfal_http_copy_overwrite``).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from dynafed_contract.copy import UrlDestination, parse_copy_request
from dynafed_contract.errors import ContractViolation
from dynafed_contract.events import COPY_COMPLETED, COPY_FAILED, COPY_STARTED
from dynafed_runtime.config import Config
from dynafed_runtime.incoming import Incoming
from functions.copy.app import create_app
from functions.copy.service import CopyService
from functions.copy.settings import CopySettings
from tests.faults.webdavtarget import Gate, WebDavTarget, adler32_hex
from tests.unit.sink_fakes import RecordingSink

MiB = 1024 * 1024
TOKEN = "Bearer push-secret-7f3a"


@pytest.fixture
def s3(moto_url: str) -> Iterator[Any]:
    client = boto3.client("s3", endpoint_url=moto_url, aws_access_key_id="AKIDA", aws_secret_access_key="a-secret",
                          region_name="us-east-1",
                          config=BotoConfig(request_checksum_calculation="when_required",
                                            response_checksum_validation="when_required",
                                            s3={"addressing_style": "path"}))
    client.create_bucket(Bucket="src")
    yield client
    for item in client.list_objects_v2(Bucket="src").get("Contents", []):
        client.delete_object(Bucket="src", Key=item["Key"])
    client.delete_bucket(Bucket="src")


def make(s3: Any, sink: RecordingSink, target: WebDavTarget, **env: str) -> Any:
    store = {"endpoint_url": s3.meta.endpoint_url, "region": "us-east-1", "access_key_id": "AKIDA",
             "secret_access_key": "a-secret"}
    variables = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": store}}), "K_SINK": "http://127.0.0.1:9/",
                 "DYNAFED_FN_COPY_PART_BYTES": str(5 * MiB), "DYNAFED_FN_HTTP_DESTINATIONS": target.url,
                 "DYNAFED_FN_ALLOW_PRIVATE_SOURCES": "1", **env}
    return create_app(Config.from_env(variables, function="copy"), sink_transport=sink)


def request(target: WebDavTarget, path: str = "/dir/a.bin", *, headers: dict[str, str] | None = None,
            **extra: Any) -> dict[str, Any]:
    destination: dict[str, Any] = {"url": target.url + path}
    if headers is not None:
        destination["headers"] = headers
    return {"source": {"store": "default", "bucket": "src", "key": "a.bin"}, "destination": destination,
            "job_id": "push-1", **extra}


def events(app: Any, sink: RecordingSink) -> list[str]:
    assert app.extensions["dynafed_fn"].events.flush(5)
    return [e.get_attributes()["type"] for e in sink.events("push-1")]


@pytest.mark.parametrize("size", [0, 1, 5 * MiB, 2 * 5 * MiB + 7])
def test_push_is_byte_identical_and_carries_the_headers(s3, size):
    data = os.urandom(size)
    s3.put_object(Bucket="src", Key="a.bin", Body=data)
    sink = RecordingSink()
    with WebDavTarget(token=TOKEN, digest=True) as target:
        app = make(s3, sink, target)
        response = app.test_client().post("/", json=request(target, headers={"Authorization": TOKEN}))
        assert response.status_code == 200, response.get_data(as_text=True)
        result = response.get_json()
        assert target.files["/dir/a.bin"] == data
        (put,) = [h for m, _, h in target.requests if m == "PUT"]
    assert put["Content-Length"] == str(size) and put["Authorization"] == TOKEN
    assert "chunked" not in put.get("Transfer-Encoding", "")
    assert result["status"] == "completed" and result["strategy"] == "http-put"
    assert result["checksums"] == {"adler32": adler32_hex(data)} and result["verified"] is True
    assert "destination-digest" in result["verified_by"]
    assert result["destination"] == {"url": target.url + "/dir/a.bin"}
    assert TOKEN not in response.get_data(as_text=True)
    kinds = events(app, sink)
    assert kinds[0] == COPY_STARTED and kinds[-1] == COPY_COMPLETED
    assert all(TOKEN not in body.decode() for _, body in sink.sent)


def test_a_stored_source_checksum_is_sent_as_repr_digest(s3):
    data = b"checked" * 1000
    s3.put_object(Bucket="src", Key="a.bin", Body=data, Metadata={"adler32": adler32_hex(data)})
    with WebDavTarget() as target:
        result = make(s3, RecordingSink(), target).test_client().post("/", json=request(target)).get_json()
        (put,) = [h for m, _, h in target.requests if m == "PUT"]
    assert result["verified_by"] == ["source-checksum"]
    assert put["Repr-Digest"].startswith("adler=:") and put["Repr-Digest"].endswith(":")


def test_without_a_destination_digest_full_verification_reads_back(s3):
    data = os.urandom(3 * MiB)
    s3.put_object(Bucket="src", Key="a.bin", Body=data)
    with WebDavTarget() as target:
        app = make(s3, RecordingSink(), target)
        plain = app.test_client().post("/", json=request(target)).get_json()
        full = app.test_client().post("/", json=request(target, "/dir/b.bin", verify="full",
                                                        job_id="push-2")).get_json()
        gets = [p for m, p, _ in target.requests if m == "GET"]
    assert plain["verified"] is False and plain["verified_by"] == []  # nothing offered, nothing claimed
    assert full["verified"] is True and full["verified_by"] == ["reread"] and gets == ["/dir/b.bin"]


def test_a_destination_stating_another_digest_is_deleted(s3):
    s3.put_object(Bucket="src", Key="a.bin", Body=b"payload" * 100)
    sink = RecordingSink()
    with WebDavTarget(digest=True, lie=True) as target:
        app = make(s3, sink, target)
        response = app.test_client().post("/", json=request(target))
        methods = target.methods()
        assert "/dir/a.bin" not in target.files
    assert response.status_code == 422 and response.get_json()["code"] == "CHECKSUM_MISMATCH"
    assert methods[-1] == "DELETE"
    assert events(app, sink)[-1] == COPY_FAILED


def test_a_connection_cut_mid_put_leaves_nothing(s3):
    s3.put_object(Bucket="src", Key="a.bin", Body=os.urandom(6 * MiB))
    with WebDavTarget(drop_after=MiB) as target:
        response = make(s3, RecordingSink(), target).test_client().post("/", json=request(target))
        methods = target.methods()
        assert "/dir/a.bin" not in target.files  # the partial file the target kept is gone
    assert response.status_code == 503 and response.get_json()["code"] == "UPSTREAM_UNAVAILABLE"
    assert methods == ["HEAD", "PUT", "DELETE"]


def test_an_existing_destination_is_a_conflict_unless_overwrite(s3):
    s3.put_object(Bucket="src", Key="a.bin", Body=b"new")
    with WebDavTarget() as target:
        target.files["/dir/a.bin"] = b"old"
        client = make(s3, RecordingSink(), target).test_client()
        refused = client.post("/", json=request(target))
        assert target.files["/dir/a.bin"] == b"old" and "PUT" not in target.methods()
        replaced = client.post("/", json=request(target, overwrite=True, job_id="push-2"))
        assert target.files["/dir/a.bin"] == b"new"
        methods = target.methods()
    assert refused.status_code == 409 and refused.get_json()["code"] == "DESTINATION_EXISTS"
    # HEAD (exists?), DELETE (gfal2's overwrite), PUT, HEAD (the digest the PUT answer did not state)
    assert replaced.status_code == 200 and methods[-4:] == ["HEAD", "DELETE", "PUT", "HEAD"]


def test_an_identical_destination_is_already_present(s3):
    data = b"same" * 500
    s3.put_object(Bucket="src", Key="a.bin", Body=data, Metadata={"adler32": adler32_hex(data)})
    with WebDavTarget(digest=True) as target:
        target.files["/dir/a.bin"] = data
        result = make(s3, RecordingSink(), target).test_client().post("/", json=request(target)).get_json()
        assert "PUT" not in target.methods()
    assert result["status"] == "already-present"


def test_a_destination_refusing_the_caller_fails_before_any_byte(s3):
    s3.put_object(Bucket="src", Key="a.bin", Body=b"x" * 1000)
    with WebDavTarget(token=TOKEN) as target:
        client = make(s3, RecordingSink(), target).test_client()
        without = client.post("/", json=request(target))
        wrong = client.post("/", json=request(target, headers={"Authorization": "Bearer nope"}, job_id="push-2"))
        assert "PUT" not in target.methods()
    for response, status in ((without, "401"), (wrong, "403")):
        assert response.status_code == 403 and response.get_json()["code"] == "STORE_NOT_ALLOWED"
        assert status in response.get_json()["detail"]


@pytest.mark.parametrize(("allowed", "private", "code"), [
    ("http://elsewhere.example", "1", "STORE_NOT_ALLOWED"),  # not under the allow-list
    (None, "0", "STORE_NOT_ALLOWED"),  # allowed prefix, but loopback is a forbidden address
])
def test_the_url_policy_applies_to_destinations(s3, allowed, private, code):
    s3.put_object(Bucket="src", Key="a.bin", Body=b"x")
    with WebDavTarget() as target:
        app = make(s3, RecordingSink(), target, DYNAFED_FN_HTTP_DESTINATIONS=allowed or target.url,
                   DYNAFED_FN_ALLOW_PRIVATE_SOURCES=private)
        response = app.test_client().post("/", json=request(target))
        assert target.requests == []  # refused before anything was contacted
    assert response.status_code == 403 and response.get_json()["code"] == code


@pytest.mark.parametrize(("headers", "fragment"), [
    ({"Content-Length": "1"}, "set by the copy function"),
    ({"Bad Name": "x"}, "not an HTTP token"),
    ({"Authorization": "Bearer a\r\nX-Injected: 1"}, "printable"),
])
def test_bad_destination_headers_are_400_without_their_value(s3, headers, fragment):
    with WebDavTarget() as target:
        response = make(s3, RecordingSink(), target).test_client().post("/", json=request(target, headers=headers))
    problem = response.get_json()
    assert response.status_code == 400 and problem["code"] == "INVALID_REQUEST" and fragment in problem["detail"]
    assert "X-Injected" not in json.dumps(problem)


def test_the_token_never_reaches_the_logs(s3, caplog):
    s3.put_object(Bucket="src", Key="a.bin", Body=b"x" * 100)
    caplog.set_level(logging.DEBUG)
    with WebDavTarget(token=TOKEN, lie=True, digest=True) as target:
        app = make(s3, RecordingSink(), target)
        app.test_client().post("/", json=request(target, headers={"Authorization": TOKEN}))
    assert caplog.records and TOKEN.split()[1] not in caplog.text


def test_a_cancel_mid_put_deletes_what_was_written(s3):
    """The caller going away (the ndjson generator closed sets ``cancel``)
    while the PUT body flows: the push stops and DELETEs. Driven by the
    target's gate: cancel is set only once the target holds body bytes. The
    object is larger than loopback's socket buffers (a few MiB each way), so
    the sender is still reading the source when it is told to stop."""
    s3.put_object(Bucket="src", Key="a.bin", Body=os.urandom(40 * MiB))
    gate = Gate()
    with WebDavTarget(gate=gate) as target:
        app = make(s3, RecordingSink(), target)
        ctx = app.extensions["dynafed_fn"]
        service = CopyService(ctx, CopySettings.from_config(ctx.config))
        prepared = service.prepare(Incoming(data=request(target), event_type=None, event_id=None))
        cancel = threading.Event()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = service.execute(prepared, cancel=cancel)
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        assert gate.reached.wait(30)
        cancel.set()
        gate.go.set()
        worker.join(60)
        assert not worker.is_alive()
        assert "/dir/a.bin" not in target.files and target.methods()[-1] == "DELETE"
    assert "result" not in outcome and "cancelled" in str(outcome["error"])


def test_url_destination_never_shows_its_credentials():
    pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" \
          "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n"
    parsed = parse_copy_request({"source": {"store": "default", "bucket": "src", "key": "k"},
                                 "destination": {"url": "https://site.example/p/f?sig=s",
                                                 "headers": {"Authorization": TOKEN}, "x509": pem}})
    destination = parsed.destination
    assert isinstance(destination, UrlDestination) and destination.x509 == pem
    assert TOKEN not in repr(destination) and "BBBB" not in repr(destination)
    assert destination.to_json() == {"url": "https://site.example/p/f"}
    with pytest.raises(ContractViolation, match="x509 must hold"):
        parse_copy_request({"source": {"store": "default", "bucket": "src", "key": "k"},
                            "destination": {"url": "https://site.example/p/f", "x509": "not a pem"}})


def test_a_source_failing_mid_push_leaves_nothing(s3):
    """An http source that ends before its stated size (its resumed read then
    fails): the bytes already PUT are DELETEd, the error is the source's."""
    from tests.faults.httpsource import StaticHttpSource

    data = os.urandom(7 * MiB)
    with StaticHttpSource() as site, WebDavTarget() as target:
        site.put("/f.bin", data, length=str(len(data) + 5 * MiB))  # promises 5 MiB it never sends
        app = make(s3, RecordingSink(), target, DYNAFED_FN_HTTP_SOURCES=site.url)
        body = {**request(target), "source": {"url": site.url + "/f.bin"}}
        response = app.test_client().post("/", json=body)
        methods = target.methods()
        assert "/dir/a.bin" not in target.files
    problem = response.get_json()
    print("source ended early:", response.status_code, problem["code"], problem["detail"])
    assert response.status_code in (502, 503) and problem["code"].startswith("UPSTREAM")
    assert "PUT" in methods and methods[-1] == "DELETE"


def test_a_retry_while_the_job_still_writes_answers_in_progress(s3):
    """The same job posted again while its PUT is held at the destination: the
    retry neither races it nor calls its partial file a conflict — it answers
    in-progress, and once the first has finished, a re-post finds the job done."""
    data = os.urandom(12 * MiB)
    s3.put_object(Bucket="src", Key="a.bin", Body=data)
    gate = Gate()
    with WebDavTarget(gate=gate) as target:
        target.files["/dir/a.bin"] = b"partial"  # what a file-backed server shows while the first PUT runs
        app = make(s3, RecordingSink(), target)
        first: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: first.update(
            response=app.test_client().post("/", json=request(target, overwrite=True))))
        worker.start()
        assert gate.reached.wait(30)
        retry = app.test_client().post("/", json=request(target))  # overwrite false, same job
        gate.go.set()
        worker.join(60)
        again = app.test_client().post("/", json=request(target))
        puts = target.methods().count("PUT")
    assert retry.status_code == 200 and retry.get_json()["status"] == "in-progress"
    assert first["response"].get_json()["status"] == "completed" and puts == 1
    # the client's re-post once the first request ended: the job is done, not a conflict
    assert again.status_code == 200 and again.get_json()["status"] == "already-present"
