"""The checksum function under faults, on the wire: real gunicorn (the
container CMD), real SeaweedFS, and tests/faults/proxy.py in between injecting
S3 errors, cut connections, flipped bytes and parked requests; plus worker
SIGKILL, a failing / slow / dead event sink, saturation, and a grep of every
byte the process wrote for the store's secret.

(SIGTERM mid-request for this function: test_runtime_contract.py.)
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dynafed_client.stack import Stack
from tests.faults.processes import EventSink, FunctionProcess, write_stores
from tests.faults.proxy import CutAfter, ErrorReply, FaultProxy, FlipByte, Hold, Request, Rule

pytestmark = pytest.mark.timeout(240)

BUCKET = "demo"
MAX_ATTEMPTS = 3  # DYNAFED_FN_S3_MAX_ATTEMPTS: requests per S3 call, retries included
MiB = 1024 * 1024
CHUNK = 256 * 1024


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data):08x}"


@pytest.fixture(scope="module")
def stores_file(seaweed: Stack, proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stores(tmp_path_factory.mktemp("faults") / "stores.json", seaweed.stores, proxy.url)


@pytest.fixture(scope="module")
def sink() -> Iterator[EventSink]:
    with EventSink() as s:
        yield s


@pytest.fixture(scope="module")
def fn(stores_file: Path, sink: EventSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionProcess]:
    env = {"THREADS": "4", "DYNAFED_FN_S3_MAX_ATTEMPTS": str(MAX_ATTEMPTS), "K_SERVICE": "checksum-faults",
           # small read buffers: cuts land well inside the object
           "DYNAFED_FN_CHECKSUM_CHUNK_BYTES": str(CHUNK)}
    with FunctionProcess("checksum", stores_file, tmp_path_factory.mktemp("fn"), env=env, sink=sink.url) as f:
        yield f
    # whatever the faults did, no store secret reached the log
    log = f.log_text()
    secrets = [store["secret_access_key"] for store in json.loads(stores_file.read_text())["stores"].values()]
    assert log and not any(secret in log for secret in secrets)


@pytest.fixture(scope="module")
def s3(seaweed: Stack) -> Any:
    """Direct to SeaweedFS (no proxy): setting up and overwriting objects."""
    return seaweed.s3_client()


def put(s3: Any, key: str, size: int, seed: int, **kwargs: Any) -> bytes:
    data = random.Random(seed).randbytes(size)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, **kwargs)
    return data


def post(fn: FunctionProcess, key: str, algorithms: list[str], **extra: Any) -> requests.Response:
    return requests.post(fn.url, json={"bucket": BUCKET, "key": key, "algorithms": algorithms, **extra}, timeout=120)


def problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    return body


class Observer:
    """Records the requests of one S3 operation as the store receives them."""

    def __init__(self, proxy: FaultProxy, op: str) -> None:
        self.seen: list[Request] = []
        proxy.add(Rule(op=op, action=ErrorReply(0, ""), where=self._record))

    def _record(self, request: Request) -> bool:
        self.seen.append(request)
        return False  # never fires: observation only


# --- transient S3 errors and the retry budget ------------------------------------------

@pytest.mark.parametrize("reply", [ErrorReply.slow_down(), ErrorReply.internal_error(),
                                   ErrorReply.request_timeout(), ErrorReply.service_unavailable()],
                         ids=lambda r: r.code)
def test_transient_errors_below_the_budget_succeed_with_correct_bytes(fn: FunctionProcess, proxy: FaultProxy,
                                                                     s3: Any, reply: ErrorReply) -> None:
    data = put(s3, f"transient/{reply.code}", 3 * MiB + 17, seed=1)
    rule = proxy.add(Rule(op="GetObject", action=reply, times=MAX_ATTEMPTS - 1))
    response = post(fn, f"transient/{reply.code}", ["adler32", "md5", "sha256"])
    assert response.status_code == 200, response.text
    assert response.json()["checksums"] == {"adler32": adler32(data), "md5": hashlib.md5(data).hexdigest(),  # noqa: S324
                                            "sha256": hashlib.sha256(data).hexdigest()}
    assert rule.applied == MAX_ATTEMPTS - 1


def test_transient_head_errors_below_the_budget(fn: FunctionProcess, proxy: FaultProxy, s3: Any) -> None:
    data = put(s3, "transient/head", 100_000, seed=2)
    rule = proxy.add(Rule(op="HeadObject", action=ErrorReply.slow_down(), times=MAX_ATTEMPTS - 1))
    response = post(fn, "transient/head", ["crc32c", "adler32"], cache="use")  # "use" reads with a HEAD first
    assert response.status_code == 200, response.text
    assert response.json()["checksums"]["adler32"] == adler32(data) and rule.applied == MAX_ATTEMPTS - 1


@pytest.mark.parametrize(("op", "reply"), [("GetObject", ErrorReply.slow_down()),
                                           ("GetObject", ErrorReply.internal_error()),
                                           ("HeadObject", ErrorReply.service_unavailable())],
                         ids=["get-slowdown", "get-500", "head-503"])
def test_errors_beyond_the_budget_fail_retryable_after_exactly_the_budget(
        fn: FunctionProcess, proxy: FaultProxy, s3: Any, op: str, reply: ErrorReply) -> None:
    put(s3, "beyond/obj", 10_000, seed=3)
    rule = proxy.add(Rule(op=op, action=reply))
    response = post(fn, "beyond/obj", ["adler32"], cache="use" if op == "HeadObject" else "none")
    body = problem(response, 503, "UPSTREAM_UNAVAILABLE")
    assert body["retryable"] is True
    assert "127.0.0.1" not in body["detail"] and str(proxy.port) not in body["detail"]
    assert rule.applied == MAX_ATTEMPTS  # bounded: the budget, not one request more


# --- a connection cut in the middle of a GET -------------------------------------------------

def test_cut_mid_get_resumes_with_a_ranged_get_pinned_to_the_etag(fn: FunctionProcess, proxy: FaultProxy,
                                                                  s3: Any) -> None:
    data = put(s3, "cut/resume", 6 * MiB + 5, seed=4)
    etag = s3.head_object(Bucket=BUCKET, Key="cut/resume")["ETag"]
    gets = Observer(proxy, "GetObject")
    # a clean close after N bytes (every byte sent arrives), so where the resume starts is exact
    cut = proxy.add(Rule(op="GetObject", action=CutAfter(MiB + 333, reset=False), times=2))
    response = post(fn, "cut/resume", ["adler32", "md5"])
    assert response.status_code == 200, response.text
    assert response.json()["checksums"] == {"adler32": adler32(data), "md5": hashlib.md5(data).hexdigest()}  # noqa: S324
    assert cut.applied == 2 and len(gets.seen) == 3
    starts = []
    for resume in gets.seen[1:]:
        assert resume.header("If-Match") == etag  # pinned to the version first seen
        starts.append(int(resume.header("Range", "bytes=0-").removeprefix("bytes=").split("-")[0]))
    # from the very byte where the bytes stopped, not from 0
    assert starts == [MiB + 333, 2 * (MiB + 333)]


def test_cuts_beyond_the_resume_budget_fail_and_never_yield_a_short_checksum(
        fn: FunctionProcess, proxy: FaultProxy, s3: Any) -> None:
    put(s3, "cut/always", 4 * MiB, seed=5)
    cut = proxy.add(Rule(op="GetObject", action=CutAfter(256 * 1024)))
    body = problem(post(fn, "cut/always", ["adler32", "sha1"]), 503, "UPSTREAM_UNAVAILABLE")
    assert body["retryable"] is True
    assert 2 <= cut.applied <= 8  # resumed a bounded number of times, then gave up


def test_overwrite_between_a_cut_and_its_resume_is_source_changed(fn: FunctionProcess, proxy: FaultProxy,
                                                                  s3: Any) -> None:
    """The resume is pinned with If-Match: the new version is refused (412)
    instead of its tail being hashed after the old version's head."""
    old = put(s3, "cut/overwritten", 4 * MiB, seed=6)
    proxy.add(Rule(op="GetObject", action=CutAfter(MiB, reset=False), times=1))  # exactly 1 MiB arrives
    hold = Hold(timeout=60)
    proxy.add(Rule(op="GetObject", action=hold, times=1))  # the resume waits here
    outcome: dict[str, requests.Response] = {}
    caller = threading.Thread(target=lambda: outcome.update(r=post(fn, "cut/overwritten", ["adler32"])))
    caller.start()
    try:
        assert hold.wait_for(1, timeout=60)
        new = put(s3, "cut/overwritten", 4 * MiB, seed=7)
    finally:
        hold.release()
        caller.join(120)
    response = outcome["r"]
    mixed = adler32(old[:MiB] + new[MiB:])
    assert not (response.status_code == 200 and response.json()["checksums"]["adler32"] == mixed), "mixed versions"
    body = problem(response, 412, "SOURCE_CHANGED")
    assert body["retryable"] is True
    assert post(fn, "cut/overwritten", ["adler32"]).json()["checksums"]["adler32"] == adler32(new)  # retry: fine


# --- a flipped byte between the store and the function -------------------------------------

def test_flipped_byte_is_reported_against_stored_metadata(fn: FunctionProcess, proxy: FaultProxy, s3: Any) -> None:
    data = random.Random(8).randbytes(2 * MiB)
    s3.put_object(Bucket=BUCKET, Key="flip/meta", Body=data,
                  Metadata={"adler32": adler32(data), "md5": hashlib.md5(data).hexdigest()})  # noqa: S324
    flip = proxy.add(Rule(op="GetObject", action=FlipByte(offset=1_234_567), times=1))
    body = problem(post(fn, "flip/meta", ["adler32", "md5"]), 422, "CHECKSUM_MISMATCH")
    assert "adler32" in body["detail"] or "md5" in body["detail"]
    assert flip.applied == 1
    clean = post(fn, "flip/meta", ["adler32", "md5"])  # the object itself is fine
    assert clean.status_code == 200 and clean.json()["checksums"]["adler32"] == adler32(data)


def test_flipped_byte_is_caught_by_the_stores_full_object_checksum(fn: FunctionProcess, proxy: FaultProxy,
                                                                   s3: Any) -> None:
    data = random.Random(9).randbytes(MiB + 3)
    crc = zlib.crc32(data).to_bytes(4, "big")
    s3.put_object(Bucket=BUCKET, Key="flip/crc", Body=data, ChecksumCRC32=base64.b64encode(crc).decode())
    proxy.add(Rule(op="GetObject", action=FlipByte(offset=777), times=1))
    response = post(fn, "flip/crc", ["crc32"])
    # either the mismatch is reported, or the corrupt read was refused and redone:
    # never a 200 carrying the checksum of bytes the store does not hold
    if response.status_code == 200:
        assert response.json()["checksums"]["crc32"] == crc.hex()
    else:
        problem(response, 422, "CHECKSUM_MISMATCH")


# --- process faults --------------------------------------------------------------------------

def test_sigkilled_worker_is_replaced_and_the_resubmission_succeeds(fn: FunctionProcess, proxy: FaultProxy,
                                                                     s3: Any) -> None:
    data = put(s3, "kill/worker", 2 * MiB, seed=10)
    hold = Hold(timeout=60)
    proxy.add(Rule(op="GetObject", action=hold, times=1))
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["response"] = post(fn, "kill/worker", ["adler32"])
        except requests.RequestException as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    try:
        assert hold.wait_for(1, timeout=60)
        victim = fn.kill_worker()
    finally:
        hold.release()
    caller.join(120)
    # the caller sees a broken connection (never a 200 with a made-up answer)
    assert "error" in outcome or outcome["response"].status_code >= 500
    fn.wait_workers(1, exclude=(victim,))
    response = post(fn, "kill/worker", ["adler32"])
    assert response.status_code == 200 and response.json()["checksums"]["adler32"] == adler32(data)


@pytest.mark.parametrize("mode", ["failing", "slow", "dead"])
def test_event_sink_trouble_never_affects_the_work(stores_file: Path, s3: Any, tmp_path: Path, mode: str) -> None:
    sink = EventSink(status=500 if mode == "failing" else 202, delay_s=30.0 if mode == "slow" else 0.0)
    if mode == "dead":
        sink.kill()
    data = put(s3, f"sink/{mode}", 100_000, seed=11)
    try:
        with FunctionProcess("checksum", stores_file, tmp_path, sink=sink.url, env={"THREADS": "2"}) as f:
            for _ in range(6):
                # each well under the slow sink's 30 s: emitting never waits for the sink
                response = requests.post(f.url, json={"bucket": BUCKET, "key": f"sink/{mode}"}, timeout=20)
                assert response.status_code == 200 and response.json()["checksums"]["adler32"] == adler32(data)
            warned = [r for r in _wait_for_records(f, "event not delivered") if r["level"] == "WARNING"]
            assert warned, f.log_text()[-2000:]
    finally:
        sink.kill()
    if mode == "failing":
        assert sink.attempts <= 6 * 3  # bounded retries (3 per event at most), no retry storm


def _wait_for_records(f: FunctionProcess, text: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in f.log_records() if text in str(r.get("msg", ""))]
        if found:
            return found
        time.sleep(0.2)
    return []


def test_saturated_worker_answers_429_with_retry_after_and_probes_stay_up(stores_file: Path, proxy: FaultProxy,
                                                                         s3: Any, tmp_path: Path) -> None:
    put(s3, "saturate/obj", 1000, seed=12)
    with FunctionProcess("checksum", stores_file, tmp_path, env={"THREADS": "2"}) as f:
        hold = Hold(timeout=60)
        proxy.add(Rule(op="GetObject", action=hold))
        results: list[int] = []
        callers = [threading.Thread(target=lambda: results.append(
            requests.post(f.url, json={"bucket": BUCKET, "key": "saturate/obj"}, timeout=90).status_code))
            for _ in range(2)]
        for caller in callers:
            caller.start()
        try:
            assert hold.wait_for(2, timeout=60)  # both work slots taken
            busy = requests.post(f.url, json={"bucket": BUCKET, "key": "saturate/obj"}, timeout=10)
            body = problem(busy, 429, "TOO_MANY_REQUESTS")
            assert body["retryable"] is True and int(busy.headers["Retry-After"]) >= 1
            # liveness and readiness are answered while saturated (not queued behind the work)
            assert requests.get(f"{f.url}/healthz", timeout=10).status_code == 200
            assert requests.get(f"{f.url}/metrics", timeout=10).status_code == 200
        finally:
            hold.release()
            for caller in callers:
                caller.join(90)
        assert results == [200, 200]


def test_store_secrets_never_reach_logs_or_responses_on_auth_failures(seaweed: Stack, proxy: FaultProxy,
                                                                      tmp_path: Path, s3: Any) -> None:
    """Canary credentials SeaweedFS does not know: every call is refused for real
    (InvalidAccessKeyId / SignatureDoesNotMatch), plus injected errors echoing them."""
    from tests.security.canary import SECRET_KEY, SESSION_TOKEN, Capture, canary_store

    put(s3, "secret/obj", 1000, seed=13)
    stores = write_stores(tmp_path / "canary.json", {"default": canary_store(proxy.url)})
    with FunctionProcess("checksum", stores, tmp_path, env={"DYNAFED_FN_LOG_LEVEL": "DEBUG"}) as f:
        capture = Capture()
        for algorithms, cache in ((["adler32"], "none"), (["md5"], "use"), (["crc32"], "write")):
            capture.responses.append(post(f, "secret/obj", algorithms, cache=cache).text)
        proxy.add(Rule(op="GetObject", action=ErrorReply(403, "SignatureDoesNotMatch",
                                                         f"key {SECRET_KEY} token {SESSION_TOKEN}")))
        capture.responses.append(post(f, "secret/obj", ["adler32"]).text)
        capture.responses.append(requests.get(f"{f.url}/readyz", timeout=30).text)
        capture.other.append(f.log_text())
    assert any('"STORE_NOT_ALLOWED"' in r for r in capture.responses)
    capture.assert_clean()
