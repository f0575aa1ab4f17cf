"""Retries against a real local HTTP server: 503 + Retry-After, connect errors, no retry on 4xx."""
from __future__ import annotations

import email.utils

import pytest

from dynafed_client import Client, ClientConfig, RetryPolicy
from dynafed_client import errors as e
from dynafed_client.retry import RetryState, parse_retry_after
from tests.unit.client_fakes import FakeFunction, SleepRecorder, checksum_answer, closed_port, ok, problem


def make_client(url: str, sleep: SleepRecorder, **retry: object) -> Client:
    policy = RetryPolicy(**retry) if retry else RetryPolicy()
    config = ClientConfig(retry=policy).with_function("checksum", url)
    return Client(config, sleep=sleep)


def test_503_with_retry_after_is_retried_and_honoured() -> None:
    def handler(req):  # two cold-start answers, then the result
        if req.index < 2:
            return problem(503, "UPSTREAM_UNAVAILABLE", retryable=True, headers={"Retry-After": "7"})
        return ok(checksum_answer(req.json))

    sleep = SleepRecorder()
    with FakeFunction(handler) as fn, make_client(fn.url, sleep) as client:
        result = client.checksum("demo/k", ["adler32"])
    assert result.checksums == {"adler32": "00000001"}
    assert len(fn.requests) == 3
    assert len(sleep.waits) == 2
    assert all(7.0 <= w <= 7.1 for w in sleep.waits)  # Retry-After + small jitter, never sooner


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    def handler(req):
        return problem(status, "X", retryable=True) if req.index == 0 else ok(checksum_answer(req.json))

    sleep = SleepRecorder()
    with FakeFunction(handler) as fn, make_client(fn.url, sleep) as client:
        client.checksum("demo/k")
    assert len(fn.requests) == 2


@pytest.mark.parametrize("status,code,cls", [
    (400, "INVALID_REQUEST", e.RequestError),
    (404, "NO_SUCH_OBJECT", e.NotFoundError),
    (403, "STORE_NOT_ALLOWED", e.NotAllowedError),
    (409, "DESTINATION_EXISTS", e.ConflictError),
    (500, "INTERNAL", e.ServerError),  # 500 is not a cold-start symptom: not retried
])
def test_no_retry_on_4xx_and_500(status: int, code: str, cls: type) -> None:
    sleep = SleepRecorder()
    with FakeFunction(lambda req: problem(status, code)) as fn, make_client(fn.url, sleep) as client:
        with pytest.raises(cls) as info:
            client.checksum("demo/k")
    assert len(fn.requests) == 1
    assert sleep.waits == []
    assert info.value.code == code and info.value.status == status


def test_retryable_false_in_problem_is_respected() -> None:
    sleep = SleepRecorder()
    with FakeFunction(lambda req: problem(503, "SOMETHING", retryable=False)) as fn, \
            make_client(fn.url, sleep) as client:
        with pytest.raises(e.ServerError):
            client.checksum("demo/k")
    assert len(fn.requests) == 1


def test_connect_error_on_closed_port_is_retried_then_raised() -> None:
    sleep = SleepRecorder()
    with make_client(f"http://127.0.0.1:{closed_port()}", sleep, attempts=4, base_delay=0.5) as client:
        with pytest.raises(e.ConnectError) as info:
            client.checksum("demo/k")
    assert info.value.retryable
    assert len(sleep.waits) == 3
    # full jitter: each wait within its exponential cap
    assert all(0 <= w <= 0.5 * 2 ** i for i, w in enumerate(sleep.waits))


def test_retries_stop_at_attempts() -> None:
    sleep = SleepRecorder()
    with FakeFunction(lambda req: problem(503, "UPSTREAM_UNAVAILABLE", retryable=True)) as fn, \
            make_client(fn.url, sleep, attempts=3) as client:
        with pytest.raises(e.ServerError) as info:
            client.checksum("demo/k")
    assert len(fn.requests) == 3
    assert info.value.code == "UPSTREAM_UNAVAILABLE" and info.value.retryable


def test_deadline_stops_retries_before_attempts() -> None:
    sleep = SleepRecorder()
    with FakeFunction(lambda req: problem(503, "X", retryable=True, headers={"Retry-After": "50"})) as fn, \
            make_client(fn.url, sleep, attempts=10, deadline=120.0) as client:
        with pytest.raises(e.ServerError):
            client.checksum("demo/k")
    # 50 s waits: the third would end past the 120 s deadline (clock is real, sleeps are not)
    assert len(fn.requests) == 3


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    date = email.utils.formatdate(1000.0 + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=1000.0) == pytest.approx(30.0)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_retry_after_is_clamped() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    error = e.ServerError(code="X", status=503, detail="", retryable=True, retry_after=3600)
    assert 5.0 <= policy.delay(0, error, rng=lambda: 0.5) <= 5.1


def test_backoff_caps() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=1.0)
    assert policy.backoff(0, rng=lambda: 1.0) == pytest.approx(0.2)
    assert policy.backoff(2, rng=lambda: 1.0) == pytest.approx(0.8)
    assert policy.backoff(10, rng=lambda: 1.0) == pytest.approx(1.0)
    assert policy.backoff(3, rng=lambda: 0.0) == 0.0


def test_read_timeouts_not_retried_by_default() -> None:
    state = RetryState(RetryPolicy())
    assert state.should_retry(e.ReadTimeoutError("slow")) is None
    assert RetryState(RetryPolicy(retry_read_timeouts=True)).should_retry(e.ReadTimeoutError("slow")) is not None


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
