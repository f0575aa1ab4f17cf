"""A job id names one source -> destination (issue 13, class 5), and
``overwrite: false`` is decided by the store at the write (class 4): the copy
function through its WSGI interface with moto as S3.

moto honours ``If-None-Match: *`` on PutObject and CompleteMultipartUpload
(moto/s3/responses.py ``put_object`` / ``complete_multipart_upload``); the
race of two real copies against SeaweedFS is tests/integration/test_copy_races.py.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from dynafed_contract import events as types
from dynafed_runtime import errors
from functions.copy import jobs
from functions.copy.create_only import CREATE_ONLY
from tests.unit.moto_s3 import moto_s3
from tests.unit.sink_fakes import RecordingSink
from tests.unit.test_copy_app import PART, flush, make_app


@pytest.fixture
def s3() -> Iterator[Any]:
    session = boto3.session.Session(aws_access_key_id="AKIDA", aws_secret_access_key="a-secret",
                                    region_name="us-east-1")
    with moto_s3(session, "src", "dst") as client:
        yield client


def body(key: str, *, job_id: str, dest: str, store: str = "other") -> dict[str, Any]:
    return {"source": {"store": "default", "bucket": "src", "key": key},
            "destination": {"store": store, "bucket": "dst", "key": dest}, "job_id": job_id}


def conflict(response: Any, code: str = "JOB_ID_CONFLICT") -> dict[str, Any]:
    assert response.status_code == 409, response.get_data(as_text=True)
    problem = response.get_json()
    assert problem["code"] == code and response.mimetype == "application/problem+json"
    assert problem["retryable"] is False
    return problem


def terminal(recorded: RecordingSink, job_id: str) -> list[str]:
    kinds = [e.get_attributes()["type"] for e in recorded.events(job_id)]
    return [kind for kind in kinds if kind in types.COPY_TERMINAL]


def test_same_job_id_for_another_destination_is_a_conflict_and_copies_nothing(s3, sink):
    app = make_app(s3, sink)
    s3.put_object(Bucket="src", Key="a", Body=b"a" * 100)
    client = app.test_client()
    assert client.post("/", json=body("a", job_id="j1", dest="first")).get_json()["status"] == "completed"
    problem = conflict(client.post("/", json=body("a", job_id="j1", dest="second")))
    assert "j1" in problem["detail"]
    assert "Contents" not in s3.list_objects_v2(Bucket="dst", Prefix="second")
    flush(app)
    assert terminal(sink, "j1") == [types.COPY_COMPLETED]  # the refused request is not this job's: no event


def test_same_job_id_for_another_source_is_a_conflict(s3, sink):
    app = make_app(s3, sink)
    s3.put_object(Bucket="src", Key="a", Body=b"a" * 100)
    s3.put_object(Bucket="src", Key="b", Body=b"b" * 100)
    client = app.test_client()
    assert client.post("/", json=body("a", job_id="j2", dest="d")).status_code == 200
    conflict(client.post("/", json=body("b", job_id="j2", dest="d")))
    assert s3.get_object(Bucket="dst", Key="d")["Body"].read() == b"a" * 100


def test_same_job_id_with_the_same_request_stays_idempotent(s3, sink):
    app = make_app(s3, sink)
    s3.put_object(Bucket="src", Key="a", Body=b"a" * 100)
    client = app.test_client()
    assert client.post("/", json=body("a", job_id="j3", dest="d")).get_json()["status"] == "completed"
    again = client.post("/", json={**body("a", job_id="j3", dest="d"), "overwrite": True})
    assert again.status_code == 200 and again.get_json()["status"] == "already-present"  # options are not identity


def test_another_worker_finds_the_binding_on_the_destination(s3, sink):
    """A fresh worker (empty memory) sees the job's identity digest in the destination's metadata."""
    s3.put_object(Bucket="src", Key="a", Body=b"a" * 100)
    s3.put_object(Bucket="src", Key="b", Body=b"b" * 100)
    assert make_app(s3, sink).test_client().post("/", json=body("a", job_id="j4", dest="d")).status_code == 200
    stored = s3.head_object(Bucket="dst", Key="d")["Metadata"]
    assert stored[jobs.JOB_REQUEST_METADATA] == stored[jobs.JOB_REQUEST_METADATA].lower()
    conflict(make_app(s3, sink).test_client().post("/", json=body("b", job_id="j4", dest="d")))


def test_the_registry_binds_a_job_id_across_workers_and_destinations(s3, sink):
    s3.create_bucket(Bucket="jobs")
    s3.put_object(Bucket="src", Key="a", Body=b"a" * 100)
    env = {"DYNAFED_FN_COPY_JOB_REGISTRY": "default/jobs"}
    assert make_app(s3, sink, **env).test_client().post("/", json=body("a", job_id="j5", dest="x")).status_code == 200
    conflict(make_app(s3, sink, **env).test_client().post("/", json=body("a", job_id="j5", dest="y")))
    assert "Contents" not in s3.list_objects_v2(Bucket="dst", Prefix="y")
    # the same request through a third worker is still the same job
    same = make_app(s3, sink, **env).test_client().post("/", json=body("a", job_id="j5", dest="x"))
    assert same.get_json()["status"] == "already-present"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="jobs")["Contents"]] == [jobs.REGISTRY_PREFIX + "j5"]


def test_the_registry_setting_is_validated_at_start(s3, sink):
    from dynafed_runtime.config import ConfigError

    for bad in ("default", "nostore/jobs", "default/a/b"):
        with pytest.raises(ConfigError, match="DYNAFED_FN_COPY_JOB_REGISTRY"):
            make_app(s3, sink, DYNAFED_FN_COPY_JOB_REGISTRY=bad)


def test_bindings_expire_and_stay_bounded():
    now = [0.0]
    table = jobs.Bindings(ttl=10, max_entries=2, clock=lambda: now[0])
    table.bind("a", "1")
    with pytest.raises(errors.JobIdConflict):
        table.bind("a", "2")
    now[0] = 11.0
    table.bind("a", "2")  # expired: the id may name a new copy
    table.bind("b", "1")
    table.bind("c", "1")  # evicts the oldest ("a")
    table.bind("a", "3")


# --- class 4: overwrite false is create-only at the store ---------------------------------


@pytest.mark.parametrize(("size", "dest_store", "strategy"), [
    (0, "other", "put-empty"), (100, "other", "stream"), (2 * PART + 3, "other", "stream"),
    (2 * PART + 3, "mirror", "server-side-multipart"),
    # CopyObject: moto ignores If-None-Match there; tests/integration/test_copy_races.py runs it on SeaweedFS
])
def test_a_destination_created_after_prepare_is_not_replaced(s3, sink, size, dest_store, strategy):
    """Another writer creates the destination between our HEAD (absent) and our
    write: the create-only write is refused and the answer is 409, the other
    writer's object stays. The interleaving is forced with a botocore hook that
    writes the object just before our write is sent."""
    app = make_app(s3, sink)
    s3.put_object(Bucket="src", Key="a", Body=b"s" * size)
    writes = {"put-empty": "PutObject", "stream": "CompleteMultipartUpload", "server-side": "CopyObject",
              "server-side-multipart": "CompleteMultipartUpload"}[strategy]
    seen: list[dict[str, Any]] = []

    def intruder(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == "race" and not seen:
            seen.append(dict(params))
            s3.meta.events.unregister(f"before-parameter-build.s3.{writes}", intruder)
            s3.put_object(Bucket="dst", Key="race", Body=b"theirs")

    s3.meta.events.register(f"before-parameter-build.s3.{writes}", intruder)
    response = app.test_client().post("/", json=body("a", job_id="mine", dest="race", store=dest_store))
    conflict(response, "DESTINATION_EXISTS")
    assert seen and seen[0].get("IfNoneMatch") == CREATE_ONLY["IfNoneMatch"]
    assert s3.get_object(Bucket="dst", Key="race")["Body"].read() == b"theirs"
    assert not s3.list_multipart_uploads(Bucket="dst").get("Uploads")
    flush(app)
    assert terminal(sink, "mine") == [types.COPY_FAILED]


def test_overwrite_true_writes_unconditionally(s3, sink):
    app = make_app(s3, sink)
    s3.put_object(Bucket="src", Key="a", Body=b"s" * 100)
    sent: list[dict[str, Any]] = []
    s3.meta.events.register("before-parameter-build.s3.CompleteMultipartUpload",
                            lambda params, **_: sent.append(dict(params)))
    request = {**body("a", job_id="w", dest="k"), "overwrite": True}
    assert app.test_client().post("/", json=request).status_code == 200
    assert sent and "IfNoneMatch" not in sent[0]


def test_a_store_ignoring_the_condition_still_reports_a_replaced_destination(s3, sink):
    """moto ignores If-None-Match on CopyObject, like a store without conditional
    writes: another writer's object landing right after our write is found by the
    HEAD that follows it (create_only.check_ours) and the answer is 409, not completed."""
    app = make_app(s3, sink)
    s3.put_object(Bucket="src", Key="a", Body=b"s" * 100)

    def intruder(**_: Any) -> None:
        s3.meta.events.unregister("after-call.s3.CopyObject", intruder)
        s3.put_object(Bucket="dst", Key="late", Body=b"theirs")

    s3.meta.events.register("after-call.s3.CopyObject", intruder)
    conflict(app.test_client().post("/", json=body("a", job_id="mine", dest="late", store="mirror")),
             "DESTINATION_EXISTS")
    assert s3.get_object(Bucket="dst", Key="late")["Body"].read() == b"theirs"


def test_the_gateway_job_id_names_exactly_what_the_function_binds():
    """The gateway derives a COPY's job id from its source and destination
    (dynafed_client/gateway/jobs.py ``job_id_for``): two COPYs get the same job
    id exactly when the function sees the same identity, so a gateway retry
    (a re-signed presigned URL included) is never a JOB_ID_CONFLICT and two
    different COPYs never share a job id."""
    from dynafed_client.gateway.jobs import job_id_for
    from dynafed_contract.copy import parse_copy_request

    def request(source: dict[str, Any], key: str) -> Any:
        return parse_copy_request({"source": source, "destination": {"store": "d", "bucket": "dst", "key": key}})

    url = "https://s.example.org/data/f?X-Amz-Signature="
    requests_ = [request({"url": url + "one"}, "k"), request({"url": url + "two"}, "k"),
                 request({"url": url + "one"}, "other"), request({"store": "s", "bucket": "src", "key": "f"}, "k")]
    for a in requests_:
        for b in requests_:
            same_job = job_id_for(a.source, a.destination) == job_id_for(b.source, b.destination)
            assert same_job == (jobs.request_identity(a) == jobs.request_identity(b))
    assert jobs.request_identity(requests_[0]) == jobs.request_identity(requests_[1])
