"""``overwrite: false`` under concurrency (issue 13, class 4), against real
SeaweedFS and the copy function under real gunicorn.

Two copies of *different* sources to one *new* destination both find it
absent in ``prepare``. A FaultProxy in front of SeaweedFS parks the write
that would make each destination appear (PutObject, CopyObject or
CompleteMultipartUpload) until *both* are parked, then releases them
together: the store decides. Exactly one answers ``completed``; the other
answers ``409 DESTINATION_EXISTS`` and its bytes are nowhere.

SeaweedFS enforces ``If-None-Match: *`` under its per-object write lock
(seaweedfs ``weed/s3api/s3api_object_handlers_put.go`` ``withObjectWriteLock``
/ ``checkConditionalHeaders``; ``s3api_object_handlers_copy.go``
``CopyObjectHandler``; ``filer_multipart.go`` ``completeMultipartUpload``).
"""
from __future__ import annotations

import os
import threading
import uuid

import pytest

from tests.faults.copying import PART, PART_SETTINGS, copy_body, exists, open_uploads, post, read
from tests.faults.proxy import Hold, Rule
from tests.faults.worker import FunctionProcess

SETTINGS = {**PART_SETTINGS, "DYNAFED_FN_S3_MAX_ATTEMPTS": "2"}


@pytest.fixture(scope="module")
def copyfn(proxied_stores_file, tmp_path_factory):
    with FunctionProcess("copy", stores_file=proxied_stores_file, state_dir=tmp_path_factory.mktemp("copy-races"),
                         env=SETTINGS) as fn:
        yield fn


#: strategy -> (destination store, bucket, S3 operation that makes the object appear, source size)
CASES = {
    "put-empty": ("p-archive", "archive", "PutObject", 0),
    "stream": ("p-archive", "archive", "CompleteMultipartUpload", 2 * PART + 7),
    "server-side": ("p-default", "demo-copy", "CopyObject", 1000),
    "server-side-multipart": ("p-default", "demo-copy", "CompleteMultipartUpload", 2 * PART + 7),
}


@pytest.mark.parametrize("strategy", list(CASES))
def test_two_copies_to_one_new_destination_exactly_one_wins(copyfn, proxy, s3, strategy):
    dest_store, bucket, creating_write, size = CASES[strategy]
    dest_key = f"races/{uuid.uuid4().hex[:12]}"
    sources = {}
    for name in ("a", "b"):
        key = f"races/src-{name}-{uuid.uuid4().hex[:8]}"
        # two different objects (the empty case: same bytes, different keys and jobs)
        sources[name] = (key, os.urandom(size))
        s3["default"].put_object(Bucket="demo", Key=key, Body=sources[name][1])
    hold = Hold(timeout=60)
    proxy.add(Rule(op=creating_write, path=f"/{bucket}/{dest_key}$", action=hold, times=2))
    answers: dict[str, object] = {}

    def run(name: str) -> None:
        body = copy_body({"store": "p-default", "bucket": "demo", "key": sources[name][0]},
                         {"store": dest_store, "bucket": bucket, "key": dest_key},
                         job_id=f"race-{name}-{uuid.uuid4().hex[:8]}", overwrite=False)
        answers[name] = post(copyfn.url, body)

    threads = [threading.Thread(target=run, args=(name,)) for name in sources]
    for thread in threads:
        thread.start()
    try:
        # the barrier: both copies have passed prepare and parked their creating write
        assert hold.wait_for(2, timeout=60), f"the copies did not both reach {creating_write}: {answers}"
    finally:
        hold.release()
        for thread in threads:
            thread.join(90)
    responses = {name: answers[name] for name in sources}
    statuses = sorted(r.status_code for r in responses.values())  # type: ignore[attr-defined]
    client = s3["archive"] if bucket == "archive" else s3["default"]
    assert statuses == [200, 409], {n: r.text for n, r in responses.items()}  # type: ignore[attr-defined]
    winner = next(n for n, r in responses.items() if r.status_code == 200)  # type: ignore[attr-defined]
    loser = next(n for n in sources if n != winner)
    assert responses[winner].json()["status"] == "completed"  # type: ignore[attr-defined]
    problem = responses[loser].json()  # type: ignore[attr-defined]
    assert problem["code"] == "DESTINATION_EXISTS" and problem["retryable"] is False
    assert exists(client, bucket, dest_key)
    assert read(client, bucket, dest_key) == sources[winner][1]
    head = client.head_object(Bucket=bucket, Key=dest_key)
    assert head["Metadata"]["dynafed-job-id"].startswith(f"race-{winner}-")
    assert open_uploads(client, bucket, dest_key) == []
