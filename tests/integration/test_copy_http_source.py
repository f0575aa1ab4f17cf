"""Copies from http(s) sources: a local static server and a presigned
SeaweedFS URL into a real store, the allow-list and the private-address
rule, redirects refused, pinned resumption, no secret in any answer."""
from __future__ import annotations

import os
import uuid

import pytest

from tests.faults.copying import adler32, copy_body, exists, open_uploads, post, read, run_to_end
from tests.faults.httpsource import StaticHttpSource
from tests.faults.worker import FunctionProcess

MiB = 1024 * 1024
PART = 5 * MiB
SETTINGS = {"DYNAFED_FN_COPY_PART_BYTES": str(PART), "DYNAFED_FN_COPY_PARTS_IN_FLIGHT": "2"}


@pytest.fixture(scope="module")
def site():
    with StaticHttpSource() as server:
        yield server


@pytest.fixture(scope="module")
def copyfn(seaweed, tmp_path_factory):
    # the stack's settings: DYNAFED_FN_HTTP_SOURCES=http://127.0.0.1, private addresses allowed
    with FunctionProcess("copy", stores_file=seaweed.stores_file, state_dir=tmp_path_factory.mktemp("httpfn"),
                         env=SETTINGS) as fn:
        yield fn


@pytest.fixture(scope="module")
def archive(seaweed):
    return seaweed.s3_client("archive")


def dest(key: str) -> dict[str, str]:
    return {"store": "archive", "bucket": "archive", "key": key}


@pytest.mark.parametrize("size", [0, 1, PART + 1, 3 * PART + 5])
def test_http_source_is_streamed_byte_identical(copyfn, site, archive, size):
    data = os.urandom(size)
    path = f"/files/{uuid.uuid4().hex}.bin"
    site.put(path, data)
    key = f"http/{size}-{uuid.uuid4().hex[:8]}"
    response = post(copyfn.url, copy_body({"url": f"{site.url}{path}?X-Amz-Signature=topsecret&x=1"}, dest(key)))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["strategy"] == ("put-empty" if size == 0 else "stream")
    assert result["checksums"] == {"adler32": adler32(data)}
    assert result["source"] == {"url": f"{site.url}{path}"}  # no query: signatures stay out
    assert "topsecret" not in response.text
    assert read(archive, "archive", key) == data
    assert open_uploads(archive, "archive", key) == []


def test_stated_checksum_is_the_reference(copyfn, site, archive):
    data = os.urandom(PART + 1)
    good, bad = f"/files/{uuid.uuid4().hex}", f"/files/{uuid.uuid4().hex}"
    site.put(good, data, headers={"x-amz-meta-adler32": adler32(data)})
    site.put(bad, data, headers={"Digest": "adler32=0badc0de"})
    ok = post(copyfn.url, copy_body({"url": site.url + good}, dest(f"http/{uuid.uuid4().hex}")))
    assert ok.status_code == 200 and "source-checksum" in ok.json()["verified_by"]
    key = f"http/{uuid.uuid4().hex}"
    mismatch = post(copyfn.url, copy_body({"url": site.url + bad}, dest(key)))
    assert mismatch.status_code == 422 and mismatch.json()["code"] == "CHECKSUM_MISMATCH"
    assert not exists(archive, "archive", key)
    assert open_uploads(archive, "archive", key) == []


def test_presigned_url_of_another_store(copyfn, seaweed, archive):
    s3 = seaweed.s3_client("default")
    data = os.urandom(2 * PART + 9)
    key = f"presigned/{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket="demo", Key=key, Body=data, Metadata={"adler32": adler32(data)})
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "demo", "Key": key}, ExpiresIn=600)
    response = post(copyfn.url, copy_body({"url": url}, dest(key)))
    assert response.status_code == 200, response.text
    assert "source-checksum" in response.json()["verified_by"]  # x-amz-meta-adler32 came with the GET
    assert "Signature" not in response.text and "Credential" not in response.text
    assert read(archive, "archive", key) == data
    again = post(copyfn.url, copy_body({"url": url}, dest(key)))
    assert again.json()["status"] == "already-present"


def test_allow_list_redirects_and_missing_sources(copyfn, site):
    site.put("/files/here", b"x" * 10)
    site.redirect("/files/moved", "/files/here")
    port = site.url.rsplit(":", 1)[1]
    elsewhere = post(copyfn.url, copy_body({"url": f"http://localhost:{port}/files/here"}, dest("http/no")))
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == "SOURCE_NOT_ALLOWED"
    lookalike = post(copyfn.url, copy_body({"url": f"http://127.0.0.1.example:{port}/x"}, dest("http/no")))
    assert lookalike.status_code == 403
    moved = post(copyfn.url, copy_body({"url": f"{site.url}/files/moved"}, dest("http/no")))
    assert moved.status_code == 502 and moved.json()["code"] == "UPSTREAM_ERROR"
    missing = post(copyfn.url, copy_body({"url": f"{site.url}/files/none"}, dest("http/no")))
    assert missing.status_code == 404 and missing.json()["code"] == "NO_SUCH_OBJECT"
    scheme = post(copyfn.url, copy_body({"url": "ftp://127.0.0.1/x"}, dest("http/no")))
    assert scheme.status_code == 400


def test_private_addresses_are_refused_by_default(seaweed, site, tmp_path_factory):
    site.put("/files/private", b"secret")
    env = {**SETTINGS, "DYNAFED_FN_ALLOW_PRIVATE_SOURCES": "0"}
    with FunctionProcess("copy", stores_file=seaweed.stores_file, state_dir=tmp_path_factory.mktemp("strict"),
                         env=env) as strict:
        response = post(strict.url, copy_body({"url": f"{site.url}/files/private"}, dest("http/private")))
    assert response.status_code == 403
    assert response.json()["code"] == "SOURCE_NOT_ALLOWED"
    assert "non-public" in response.json()["detail"]


def test_http_copy_across_requests_resumes_pinned(seaweed, site, archive, tmp_path_factory):
    data = os.urandom(3 * PART + 1)
    path = f"/files/{uuid.uuid4().hex}"
    site.put(path, data)
    env = {**SETTINGS, "DYNAFED_FN_COPY_SLICE_SECONDS": "0"}
    key = f"http/sliced-{uuid.uuid4().hex[:8]}"
    with FunctionProcess("copy", stores_file=seaweed.stores_file, state_dir=tmp_path_factory.mktemp("httpslice"),
                         env=env) as fn:
        response, count = run_to_end(fn.url, copy_body({"url": site.url + path}, dest(key),
                                                       job_id=f"h-{uuid.uuid4().hex}"))
    assert response.status_code == 200, response.text
    assert count == 4
    assert read(archive, "archive", key) == data
    ranged = [h for m, p, h in site.requests if p == path and "range" in h]
    assert ranged and all(h.get("if-match") for h in ranged)


def test_unpinnable_source_copies_in_one_request(copyfn, site, archive):
    data = os.urandom(PART + 1)
    path = f"/files/{uuid.uuid4().hex}"
    site.put(path, data, etag=False, last_modified=False)
    key = f"http/unpinned-{uuid.uuid4().hex[:8]}"
    response = post(copyfn.url, copy_body({"url": site.url + path}, dest(key)))
    assert response.status_code == 200, response.text
    assert read(archive, "archive", key) == data
