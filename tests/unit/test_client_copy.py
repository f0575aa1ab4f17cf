"""Client.copy: ndjson progress, in-progress resubmission, broken streams, event-fed progress."""
from __future__ import annotations

import threading

import pytest

from dynafed_client import Client, ClientConfig, RecordingProgress, RetryPolicy
from dynafed_client import errors as e
from dynafed_client.events import EventHub, ReceivedEvent
from dynafed_contract import events as ce
from dynafed_contract.copy import UrlSource, parse_copy_request
from tests.unit.client_fakes import FakeFunction, SleepRecorder, ndjson, ok, problem

TOTAL = 1000


def result(job_id: str, status: str = "completed", nbytes: int = TOTAL) -> dict:
    return {"type": "result", "job_id": job_id, "status": status, "strategy": "stream", "bytes": nbytes,
            "checksums": {"adler32": "0a1b2c3d"}, "verified": status != "in-progress", "elapsed_s": 0.5}


def progress(job_id: str, n: int) -> dict:
    return {"type": "progress", "job_id": job_id, "bytes": n, "total": TOTAL, "rate_bps": 100.0, "elapsed_s": 0.1}


def make_client(url: str, sleep: SleepRecorder | None = None, **config: object) -> Client:
    return Client(ClientConfig(**config).with_function("copy", url), sleep=sleep or SleepRecorder())  # type: ignore[arg-type]


def test_streamed_copy_reports_progress_and_result() -> None:
    def handler(req):
        job = req.json["job_id"]
        return ndjson([progress(job, 0), progress(job, 250), progress(job, 600), result(job)])

    seen = RecordingProgress()
    with FakeFunction(handler) as fn, make_client(fn.url) as client:
        res = client.copy("demo/a", "archive:archive/a", verify="md5", on_progress=seen)
    req = fn.requests[0]
    assert "application/x-ndjson" in req.headers["Accept"]
    parsed = parse_copy_request(req.json)  # the function's parser accepts what we send
    assert parsed.verify == "md5" and parsed.overwrite is False
    assert parsed.destination.store == "archive" and parsed.job_id == res.job_id
    assert res.status == "completed" and res.bytes == TOTAL and res.verified and res.strategy == "stream"
    assert res.resubmissions == 0
    assert seen.bytes_seen == [0, 250, 600, TOTAL]
    assert all(u.total == TOTAL for u in seen.updates)


def test_in_progress_answers_are_resubmitted_with_the_same_job_id() -> None:
    def handler(req):
        job = req.json["job_id"]
        if req.index == 0:
            return ndjson([progress(job, 100), progress(job, 300), result(job, "in-progress", 300)])
        if req.index == 1:  # a resumed request may restart its own counter lower: must not go backwards
            return ndjson([progress(job, 200), progress(job, 700), result(job, "in-progress", 700)])
        return ndjson([progress(job, 900), result(job)])

    seen = RecordingProgress()
    with FakeFunction(handler) as fn, make_client(fn.url) as client:
        res = client.copy("demo/a", "demo-copy/a", job_id="job-42", on_progress=seen)
    assert [r.json["job_id"] for r in fn.requests] == ["job-42"] * 3
    assert res.job_id == "job-42" and res.status == "completed" and res.resubmissions == 2
    assert seen.bytes_seen == sorted(seen.bytes_seen) and seen.bytes_seen[-1] == TOTAL
    assert 200 not in seen.bytes_seen


def test_plain_json_in_progress_loop() -> None:
    def handler(req):
        job = req.json["job_id"]
        return ok(result(job, "in-progress", 100 * (req.index + 1)) if req.index < 4 else result(job))

    with FakeFunction(handler) as fn, make_client(fn.url) as client:
        res = client.copy("demo/a", "demo-copy/a", stream=False)
    assert fn.requests[0].headers["Accept"] == "application/json"
    assert len(fn.requests) == 5 and res.resubmissions == 4


def test_resubmission_limit() -> None:
    with FakeFunction(lambda req: ok(result(req.json["job_id"], "in-progress", req.index))) as fn, \
            make_client(fn.url, max_resubmissions=3) as client:
        with pytest.raises(e.ProtocolError, match="in progress"):
            client.copy("demo/a", "demo-copy/a")
    assert len(fn.requests) == 4


def test_stream_cut_before_result_is_resubmitted() -> None:
    def handler(req):
        job = req.json["job_id"]
        if req.index == 0:
            return ndjson([progress(job, 100), b'{"type": "progress", "by'])  # worker died mid-line
        return ndjson([progress(job, 500), result(job, "completed")])

    sleep = SleepRecorder()
    with FakeFunction(handler) as fn, make_client(fn.url, sleep) as client:
        res = client.copy("demo/a", "demo-copy/a")
    assert len(fn.requests) == 2 and fn.requests[0].json["job_id"] == fn.requests[1].json["job_id"]
    assert res.retries == 1 and len(sleep.waits) == 1


def test_stream_ending_without_result_gives_up_after_retries() -> None:
    with FakeFunction(lambda req: ndjson([progress(req.json["job_id"], 1)])) as fn, \
            make_client(fn.url, retry=RetryPolicy(attempts=2)) as client:
        with pytest.raises(e.ProtocolError, match="without a result"):
            client.copy("demo/a", "demo-copy/a")
    assert len(fn.requests) == 2


def test_error_line_raises_typed_error_without_resubmission() -> None:
    def handler(req):
        job = req.json["job_id"]
        return ndjson([progress(job, 500), {"type": "error", "status": 422, "code": "CHECKSUM_MISMATCH",
                                            "title": "Checksum mismatch", "detail": "adler32 differs",
                                            "retryable": False}])

    with FakeFunction(handler) as fn, make_client(fn.url) as client:
        with pytest.raises(e.IntegrityError) as info:
            client.copy("demo/a", "demo-copy/a")
    assert info.value.code == "CHECKSUM_MISMATCH" and info.value.detail == "adler32 differs"
    assert len(fn.requests) == 1


def test_retryable_error_line_is_resubmitted() -> None:
    def handler(req):
        job = req.json["job_id"]
        if req.index == 0:
            return ndjson([{"type": "error", "status": 503, "code": "UPSTREAM_UNAVAILABLE", "retryable": True,
                            "detail": "SlowDown"}])
        return ndjson([result(job)])

    with FakeFunction(handler) as fn, make_client(fn.url) as client:
        res = client.copy("demo/a", "demo-copy/a")
    assert res.status == "completed" and len(fn.requests) == 2


def test_conflict_before_stream_is_typed() -> None:
    with FakeFunction(lambda req: problem(409, "DESTINATION_EXISTS", "different object exists")) as fn, \
            make_client(fn.url) as client:
        with pytest.raises(e.ConflictError) as info:
            client.copy("demo/a", "demo-copy/a")
    assert info.value.code == "DESTINATION_EXISTS" and len(fn.requests) == 1


def test_json_answer_even_when_stream_was_asked() -> None:
    with FakeFunction(lambda req: ok({**result(req.json["job_id"], "already-present"), "verified": True})) as fn, \
            make_client(fn.url) as client:
        res = client.copy("demo/a", "demo-copy/a")
    assert res.status == "already-present"


def test_url_source_is_sent_in_full_and_overwrite_flag() -> None:
    url = "http://127.0.0.1:1/bucket/obj?X-Amz-Signature=abc&X-Amz-Expires=60"
    with FakeFunction(lambda req: ok(result(req.json["job_id"]))) as fn, make_client(fn.url) as client:
        client.copy(url, "demo/obj", overwrite=True, verify_mode="full")
    body = fn.requests[0].json
    assert body["source"] == {"url": url} and body["overwrite"] is True and body["verify_mode"] == "full"
    assert parse_copy_request(body).source == UrlSource(url)


def test_generated_job_ids_are_valid_and_unique() -> None:
    with FakeFunction(lambda req: ok(result(req.json["job_id"]))) as fn, make_client(fn.url) as client:
        ids = {client.copy("demo/a", "demo-copy/a").job_id for _ in range(3)}
    assert len(ids) == 3
    for r in fn.requests:
        assert parse_copy_request(r.json).job_id == r.json["job_id"]


def _event(job: str, n: int, etype: str = ce.COPY_PROGRESS, eid: str | None = None) -> ReceivedEvent:
    return ReceivedEvent(id=eid or f"{job}-{n}", source="/dynafed-fn/copy", type=etype, subject=job,
                         data={"bytes": n, "total": TOTAL})


def test_progress_from_cloudevents_when_not_streaming() -> None:
    hub = EventHub()
    seen = RecordingProgress()
    got = threading.Condition()

    def on_progress(update):
        seen(update)
        with got:
            got.notify_all()

    def handler(req):
        job = req.json["job_id"]
        hub.publish(_event("some-other-job", 999))
        hub.publish(_event(job, 0, ce.COPY_STARTED))
        hub.publish(_event(job, 400))
        hub.publish(_event(job, 400))  # duplicate delivery: dropped by the hub
        hub.publish(_event(job, 300, eid="late"))  # out of order: must not move progress back
        hub.publish(_event(job, 800))
        with got:  # let the pump deliver before answering (bounded wait, no timing assertion)
            got.wait_for(lambda: any(u.bytes == 800 for u in seen.updates), timeout=5)
        return ok(result(job))

    with FakeFunction(handler) as fn, make_client(fn.url) as client:
        res = client.copy("demo/a", "demo-copy/a", stream=False, on_progress=on_progress, events=hub)
    assert [u.bytes for u in seen.updates if u.origin == "event"] == [0, 400, 800]
    assert seen.bytes_seen[-1] == TOTAL and res.status == "completed"
    assert hub.duplicates == 1


def test_progress_callback_errors_do_not_fail_the_copy() -> None:
    def boom(update):
        raise RuntimeError("display broke")

    with FakeFunction(lambda req: ndjson([progress(req.json["job_id"], 5), result(req.json["job_id"])])) as fn, \
            make_client(fn.url) as client:
        assert client.copy("demo/a", "demo-copy/a", on_progress=boom).status == "completed"


def test_progress_arrives_while_the_stream_is_open() -> None:
    seen_first = threading.Event()
    observed: dict[str, bool] = {}

    def handler(req):
        job = req.json["job_id"]

        def lines():
            yield progress(job, 10)
            # the answer stays open until the client has shown the first line
            observed["live"] = seen_first.wait(timeout=10)
            yield result(job)

        return ndjson(lines())

    with FakeFunction(handler) as fn, make_client(fn.url) as client:
        client.copy("demo/a", "demo-copy/a", on_progress=lambda u: seen_first.set())
    assert observed == {"live": True}
