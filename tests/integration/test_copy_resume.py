"""Long copies: a job spread over many requests (``in-progress`` answers),
resumed on the same worker (its checkpoint in memory) or on another one (the
upload's witness part), a worker SIGKILLed mid-copy and the job re-submitted,
and the cleanup of orphaned uploads (POST /cleanup and the CLI)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests

from dynafed_contract import events as ce
from tests.faults.copying import (
    PART,
    PART_SETTINGS,
    adler32,
    check_job_events,
    copy_body,
    open_uploads,
    post,
    post_ndjson,
    read,
    run_to_end,
    via,
    write_stores,
)
from tests.faults.proxy import Delay, FaultProxy, Rule
from tests.faults.receiver import EventRecorder
from tests.faults.worker import FunctionProcess

SLICED = {
    **PART_SETTINGS,
    "DYNAFED_FN_COPY_PARTS_IN_FLIGHT": "2",
    # a zero-second slice: every request moves exactly one new part
    "DYNAFED_FN_COPY_SLICE_SECONDS": "0",
    "DYNAFED_FN_COPY_PROGRESS_INTERVAL_SECONDS": "0",
}


@pytest.fixture(scope="module")
def sliced(seaweed, sink, tmp_path_factory):
    with FunctionProcess("copy", stores_file=seaweed.stores_file, state_dir=tmp_path_factory.mktemp("sliced"),
                         sink=sink.url, env=SLICED) as fn:
        yield fn


def new_source(s3, size: int) -> tuple[str, bytes]:
    key = f"resume/{uuid.uuid4().hex[:12]}"
    data = os.urandom(size)
    s3["default"].put_object(Bucket="demo", Key=key, Body=data)
    return key, data


DESTS = {"stream": ("archive", "archive"), "server-side-multipart": ("default", "demo-copy")}


@pytest.mark.parametrize("strategy", list(DESTS))
def test_a_job_spans_many_requests(sliced, s3, sink, strategy):
    key, data = new_source(s3, 4 * PART + 77)
    store, bucket = DESTS[strategy]
    job_id = f"sliced-{uuid.uuid4().hex}"
    body = copy_body({"store": "default", "bucket": "demo", "key": key},
                     {"store": store, "bucket": bucket, "key": key}, job_id=job_id)
    seen = []
    while True:
        response = post(sliced.url, body)
        assert response.status_code == 200, response.text
        answer = response.json()
        seen.append(answer["bytes"])
        if answer["status"] != "in-progress":
            break
        assert answer["strategy"] == strategy
        assert answer["resume"]["parts_total"] == 5
        assert len(seen) < 20
    assert answer["status"] == "completed"
    assert len(seen) == 5  # one new part per request
    assert seen == sorted(seen) and seen[-1] == len(data)
    assert read(s3[store], bucket, key) == data
    assert open_uploads(s3[store], bucket, key) == []
    events = sink.wait_for(lambda evs: any(e.subject == job_id and e.type in ce.COPY_TERMINAL for e in evs))
    mine = check_job_events(events, job_id, terminal=ce.COPY_COMPLETED)
    assert [e.type for e in mine].count(ce.COPY_STARTED) == 1


@pytest.mark.parametrize("strategy", list(DESTS))
def test_resume_on_another_worker_finds_the_upload_by_its_witness(seaweed, sliced, s3, sink, tmp_path_factory,
                                                                  strategy):
    key, data = new_source(s3, 3 * PART + 1)
    store, bucket = DESTS[strategy]
    job_id = f"elsewhere-{uuid.uuid4().hex}"
    body = copy_body({"store": "default", "bucket": "demo", "key": key},
                     {"store": store, "bucket": bucket, "key": key}, job_id=job_id, verify="md5")
    with FunctionProcess("copy", stores_file=seaweed.stores_file, state_dir=tmp_path_factory.mktemp("other"),
                         sink=sink.url, env=SLICED) as other:
        workers = [sliced.url, other.url]
        answers = []
        for attempt in range(12):
            response = post(workers[attempt % 2], body)  # never the same worker twice in a row
            assert response.status_code == 200, response.text
            answers.append(response.json())
            if answers[-1]["status"] != "in-progress":
                break
    assert answers[-1]["status"] == "completed"
    assert len(answers) == 4  # 4 parts, one new part per request, none uploaded twice
    assert [a["bytes"] for a in answers] == sorted(a["bytes"] for a in answers)
    assert read(s3[store], bucket, key) == data
    assert open_uploads(s3[store], bucket, key) == []
    events = sink.wait_for(lambda evs: any(e.subject == job_id and e.type in ce.COPY_TERMINAL for e in evs))
    mine = check_job_events(events, job_id, terminal=ce.COPY_COMPLETED)
    assert [e.type for e in mine].count(ce.COPY_STARTED) == 1


def test_source_changed_between_requests_starts_over_never_mixes(sliced, s3):
    key, data = new_source(s3, 3 * PART)
    job_id = f"changed-{uuid.uuid4().hex}"
    body = copy_body({"store": "default", "bucket": "demo", "key": key},
                     {"store": "archive", "bucket": "archive", "key": key}, job_id=job_id)
    first = post(sliced.url, body).json()
    assert first["status"] == "in-progress"
    newer = os.urandom(3 * PART)
    s3["default"].put_object(Bucket="demo", Key=key, Body=newer)
    response, _ = run_to_end(sliced.url, body)
    assert response.json()["status"] == "completed"
    assert read(s3["archive"], "archive", key) == newer
    # the stale upload is not this job's any more (its witness names the old version): cleanup's
    stale = open_uploads(s3["archive"], "archive", key)
    assert len(stale) == 1
    aborted = requests.post(f"{sliced.url}/cleanup", json={"store": "archive", "bucket": "archive",
                                                          "older_than_s": 0, "prefix": key}, timeout=30).json()
    assert [a["upload_id"] for a in aborted["aborted"]] == [stale[0]["UploadId"]]
    assert open_uploads(s3["archive"], "archive", key) == []


@contextlib.contextmanager
def own_worker(seaweed, tmp_path_factory, name: str, *, upload_part_delay: float, sink: str | None = None,
               env: dict[str, str] | None = None) -> Iterator[FunctionProcess]:
    """A copy function of the test's own (the test kills or drains its worker),
    not sliced, whose ``p-archive`` is SeaweedFS behind a FaultProxy that slows
    every UploadPart by ``upload_part_delay`` seconds, so the test lands mid-copy."""
    with FaultProxy(seaweed.endpoint_url) as proxy:
        stores = seaweed.stores
        stores_file = write_stores(tmp_path_factory.mktemp(name) / "stores.json",
                                   {**stores, "p-archive": via(stores["archive"], proxy.url)})
        settings = {k: v for k, v in SLICED.items() if k != "DYNAFED_FN_COPY_SLICE_SECONDS"}
        proxy.add(Rule(op="UploadPart", action=Delay(upload_part_delay)))
        with FunctionProcess("copy", stores_file=stores_file, state_dir=tmp_path_factory.mktemp(f"{name}fn"),
                             sink=sink, env={**settings, **(env or {})}) as fn:
            yield fn


def test_worker_killed_mid_copy_then_resubmitted_completes(seaweed, s3, tmp_path_factory):
    with EventRecorder() as sink:
        with own_worker(seaweed, tmp_path_factory, "kill", upload_part_delay=0.4, sink=sink.url) as fn:
            key, data = new_source(s3, 8 * PART + 3)
            job_id = f"killed-{uuid.uuid4().hex}"
            body = copy_body({"store": "default", "bucket": "demo", "key": key},
                             {"store": "p-archive", "bucket": "archive", "key": key}, job_id=job_id)
            moving = threading.Event()
            outcome: dict = {}

            def watch(line: dict) -> None:
                if line.get("type") == "progress" and line["bytes"] > 0:
                    moving.set()

            def first_attempt() -> None:
                try:
                    outcome["lines"] = post_ndjson(fn.url, body, on_line=watch)[1]
                except requests.RequestException as exc:
                    outcome["error"] = exc

            thread = threading.Thread(target=first_attempt)
            thread.start()
            assert moving.wait(60), "the copy never made progress"
            fn.kill_worker()
            thread.join(60)
            lines = outcome.get("lines") or []
            assert not any(line.get("type") == "result" for line in lines), "the kill came too late"
            assert open_uploads(s3["archive"], "archive", key), "the killed copy should leave its upload open"
            response, _ = run_to_end(fn.url, body)
            assert response.status_code == 200, response.text
            result = response.json()
            assert result["status"] == "completed" and result["checksums"] == {"adler32": adler32(data)}
            assert read(s3["archive"], "archive", key) == data
            head = s3["archive"].head_object(Bucket="archive", Key=key)
            assert head["Metadata"]["adler32"] == adler32(data)
            cleanup = requests.post(f"{fn.url}/cleanup", json={"store": "archive", "bucket": "archive",
                                                              "older_than_s": 0, "prefix": key}, timeout=30)
            assert cleanup.status_code == 200, cleanup.text
            assert open_uploads(s3["archive"], "archive", key) == []
        events = sink.wait_for(lambda evs: any(e.subject == job_id and e.type in ce.COPY_TERMINAL for e in evs))
        mine = check_job_events(events, job_id, terminal=ce.COPY_COMPLETED)
        # resumed, not restarted: the job started once
        assert [e.type for e in mine].count(ce.COPY_STARTED) == 1


def test_sigterm_ends_the_slice_early_and_the_job_resumes(seaweed, s3, tmp_path_factory):
    with own_worker(seaweed, tmp_path_factory, "term", upload_part_delay=0.4,
                    env={"GRACEFUL_TIMEOUT": "120"}) as fn:
        key, data = new_source(s3, 10 * PART)
        body = copy_body({"store": "default", "bucket": "demo", "key": key},
                         {"store": "p-archive", "bucket": "archive", "key": key},
                         job_id=f"term-{uuid.uuid4().hex}")
        moving = threading.Event()
        outcome: dict = {}

        def first_attempt() -> None:
            outcome["lines"] = post_ndjson(fn.url, body, on_line=lambda line: line.get("bytes") and moving.set())[1]

        thread = threading.Thread(target=first_attempt)
        thread.start()
        assert moving.wait(60), "the copy never made progress"
        fn.kill_worker(signal.SIGTERM)  # waits for the replacement worker
        thread.join(60)
        last = outcome["lines"][-1]
        # drained at a part boundary: a clean in-progress answer, not an error or a cut stream
        assert last["type"] == "result" and last["status"] == "in-progress", last
        assert 0 < last["bytes"] < len(data)
        response, _ = run_to_end(fn.url, body)
        assert response.json()["status"] == "completed"
        assert read(s3["archive"], "archive", key) == data
        assert open_uploads(s3["archive"], "archive", key) == []


def test_client_gone_mid_stream_stops_the_slice_and_keeps_the_job(seaweed, s3, tmp_path_factory):
    class Gone(Exception):
        pass

    with EventRecorder() as sink:
        with own_worker(seaweed, tmp_path_factory, "gone", upload_part_delay=2.0, sink=sink.url) as fn:
            key, data = new_source(s3, 8 * PART)
            job_id = f"gone-{uuid.uuid4().hex}"
            body = copy_body({"store": "default", "bucket": "demo", "key": key},
                             {"store": "p-archive", "bucket": "archive", "key": key}, job_id=job_id)

            def leave(line: dict) -> None:
                if line.get("type") == "progress" and line["bytes"] > 0:
                    raise Gone()  # closes the connection mid-answer

            with pytest.raises(Gone):
                post_ndjson(fn.url, body, on_line=leave)
            response, count = run_to_end(fn.url, body, pause=0.2)
            # "completed", not "already-present": the abandoned request stopped (at a part
            # boundary, seconds before it would have finished) and a re-post finished the job
            assert response.json()["status"] == "completed"
            assert read(s3["archive"], "archive", key) == data
            assert open_uploads(s3["archive"], "archive", key) == []
        events = sink.wait_for(lambda evs: any(e.subject == job_id and e.type in ce.COPY_TERMINAL for e in evs))
        mine = check_job_events(events, job_id, terminal=ce.COPY_COMPLETED)
        assert [e.type for e in mine].count(ce.COPY_STARTED) == 1


def test_cleanup_cli_aborts_old_uploads_only(seaweed, s3):
    client = s3["default"]
    key = f"orphans/{uuid.uuid4().hex[:8]}"
    upload_id = client.create_multipart_upload(Bucket="demo-copy", Key=key)["UploadId"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYNAFED_FN_", "K_"))}
    env["DYNAFED_FN_STORES_FILE"] = str(seaweed.stores_file)

    def cli(*args: str) -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "functions.copy.cleanup", "--store", "default",
                               "--bucket", "demo-copy", "--prefix", key, *args],
                              capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    assert cli("--older-than", "1h")[0]["aborted"] == []
    listed = cli("--older-than", "0s", "--dry-run")[0]
    assert [a["upload_id"] for a in listed["aborted"]] == [upload_id]
    assert open_uploads(client, "demo-copy", key)
    assert [a["upload_id"] for a in cli("--older-than", "0")[0]["aborted"]] == [upload_id]
    assert open_uploads(client, "demo-copy", key) == []


def test_cleanup_endpoint_validates(sliced):
    bad = requests.post(f"{sliced.url}/cleanup", json={"store": "default", "bucket": "demo"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
