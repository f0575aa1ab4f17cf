"""The dispatch client when the function dies under it: a batch of streamed
copies is running when the copy function's whole process group is SIGKILLed
(no drain, no cleanup) and started again on the same port. The client's
retries and job-id re-posts must finish every copy, byte-identical, with no
copy done twice (one CompleteMultipartUpload per destination, seen on the
wire) and no multipart upload left open once the documented cleanup ran
(orphans of the kill hold no data)."""
from __future__ import annotations

import collections
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dynafed_client.client import Client
from dynafed_client.config import ClientConfig, FunctionEndpoint
from dynafed_client.retry import RetryPolicy
from dynafed_client.stack import Stack
from functions.copy.cleanup import abort_older
from tests.faults.processes import FunctionProcess, write_stores
from tests.faults.proxy import Delay, FaultProxy, Rule

pytestmark = pytest.mark.timeout(300)

MiB = 1024 * 1024
PART = 5 * MiB
SETTINGS = {
    "DYNAFED_FN_COPY_PART_BYTES": str(PART),
    "DYNAFED_FN_COPY_PARTS_IN_FLIGHT": "2",
    "THREADS": "4",
}


def test_batch_survives_a_restart_of_the_function_without_duplicate_copies(seaweed: Stack, proxy: FaultProxy,
                                                                          tmp_path: Path) -> None:
    s3d, s3a = seaweed.s3_client("default"), seaweed.s3_client("archive")
    stores = {**seaweed.stores, "p-archive": {**seaweed.stores["archive"], "endpoint_url": proxy.url}}
    stores_file = write_stores(tmp_path / "stores.json", stores)
    run = uuid.uuid4().hex[:8]
    jobs, data = [], {}
    for i in range(6):
        key = f"restart/{run}/{i}"
        data[key] = os.urandom(3 * PART - 1000 * i)  # three parts each: multipart, streamed
        s3d.put_object(Bucket="demo", Key=key, Body=data[key])
        jobs.append({"source": f"default:demo/{key}", "destination": f"p-archive:archive/{key}",
                     "job_id": f"restart-{run}-{i}"})
    proxy.add(Rule(op="UploadPart", action=Delay(0.3)))  # long enough to be caught mid-flight

    fn = FunctionProcess("copy", stores_file, tmp_path, env=SETTINGS).start()
    config = ClientConfig(functions={"copy": FunctionEndpoint(fn.url)}, concurrency=3, read_timeout=60,
                          stream_idle_timeout=30,
                          retry=RetryPolicy(attempts=30, base_delay=0.2, max_delay=2.0, deadline=180))
    outcomes: list[Any] = []
    try:
        with Client(config) as client:
            batch = threading.Thread(target=lambda: outcomes.extend(client.copy_many(jobs)))
            batch.start()
            deadline = time.monotonic() + 60
            while proxy.requests("UploadPart") < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proxy.requests("UploadPart") >= 3, "the batch never got going"
            fn.kill()  # mid-batch, mid-part: connections drop, nothing is cleaned up
            fn = FunctionProcess("copy", stores_file, tmp_path, env=SETTINGS, port=fn.port).start()
            batch.join(240)
            assert not batch.is_alive()
    finally:
        fn.stop()

    failed = [(o.item["job_id"], o.error) for o in outcomes if not o.ok]
    assert not failed and len(outcomes) == len(jobs), failed
    for job in jobs:
        key = job["destination"].split("archive/", 1)[1]
        assert s3a.get_object(Bucket="archive", Key=key)["Body"].read() == data[key], key
    completes = collections.Counter(target.split("?")[0] for op, target, _ in proxy.log
                                    if op == "CompleteMultipartUpload")
    assert all(count == 1 for count in completes.values()), f"a copy was completed twice: {completes}"
    assert len(completes) == len(jobs)
    # A worker killed while its witness part (part 10000) is still being stored leaves an
    # upload the re-post cannot recognise (the witness is not listed yet), so the job
    # starts a new one: such an orphan holds nothing but the witness, and the documented
    # cleanup (POST /cleanup, or the bucket lifecycle rule) aborts it.
    left = s3a.list_multipart_uploads(Bucket="archive", Prefix=f"restart/{run}/").get("Uploads") or []
    for upload in left:
        parts = s3a.list_parts(Bucket="archive", Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts") or []
        assert [p["PartNumber"] for p in parts] in ([], [10000]), f"an orphan holds data parts: {upload}"
    aborted = abort_older(s3a, "archive", older_than_s=0, prefix=f"restart/{run}/")  # the cleanup CLI's code
    assert len(aborted) == len(left)
    assert (s3a.list_multipart_uploads(Bucket="archive", Prefix=f"restart/{run}/").get("Uploads") or []) == []
    assert sum(o.result.retries + o.result.resubmissions for o in outcomes) > 0  # the client did recover
