"""The COPY body: Perf Marker format, pacing, and the final line whatever happens."""
from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from dynafed_client import errors as ce
from dynafed_client.gateway.perfmarkers import failure_line, perf_marker
from dynafed_client.gateway.transfers import TransferStream, describe
from tests.perf_markers import MARKER, parse_tpc_body


def test_marker_format_exact() -> None:
    assert perf_marker(1234, timestamp=1700000000.7) == (
        "Perf Marker\nTimestamp: 1700000000\nStripe Index: 0\nStripe Bytes Transferred: 1234\n"
        "Total Stripe Count: 1\nEnd\n")


def test_failure_line_is_one_bounded_line() -> None:
    line = failure_line("boom\r\nsecond line\x00" + "x" * 1000)
    assert line.startswith("failure: boom second line")
    assert line.count("\n") == 1 and len(line) < 420
    assert failure_line("") == "failure: transfer failed\n"


def run_stream(run: Callable[[Callable[[int], None]], int | None], **kwargs: object) -> tuple[list[int], str]:
    return parse_tpc_body("".join(TransferStream(run, **kwargs)))  # type: ignore[arg-type]


def test_success_markers_increase_and_end_with_success() -> None:
    def run(report: Callable[[int], None]) -> int:
        for n in (10, 20, 20, 15, 30):  # a late smaller report must not lower the count
            report(n)
            threading.Event().wait(0.03)
        return 40

    seen, final = run_stream(run, heartbeat_s=1.0, min_gap_s=0.0)
    assert final == "success: Created"
    assert seen[0] == 0 and seen[-1] == 40
    assert seen == sorted(seen)
    assert len(seen) >= 3


def test_first_marker_comes_before_the_copy_reports() -> None:
    release = threading.Event()

    def run(report: Callable[[int], None]) -> int:
        release.wait(5)
        return 7

    stream = iter(TransferStream(run, heartbeat_s=5.0))
    first = next(stream)  # while the copy is still blocked
    assert not release.is_set()
    match = MARKER.fullmatch(first)
    assert match is not None and match.group("bytes") == "0"
    release.set()
    seen, final = parse_tpc_body("".join(stream))
    assert final == "success: Created" and seen == [7]


def test_heartbeat_when_nothing_moves() -> None:
    gate = threading.Event()

    def run(report: Callable[[int], None]) -> int:
        gate.wait(0.35)
        return 0

    seen, final = run_stream(run, heartbeat_s=0.05, min_gap_s=0.0)
    assert final == "success: Created"
    assert len(seen) >= 3 and set(seen) == {0}


def test_exception_becomes_failure_line() -> None:
    def run(report: Callable[[int], None]) -> int:
        report(5)
        raise ce.IntegrityError(code="CHECKSUM_MISMATCH", status=422, detail="adler32 differs")

    seen, final = run_stream(run, heartbeat_s=1.0, min_gap_s=0.0)
    assert final == "failure: CHECKSUM_MISMATCH: adler32 differs"
    assert seen[-1] == 5


def test_unexpected_exception_still_ends_the_body() -> None:
    def run(report: Callable[[int], None]) -> int:
        raise RuntimeError("disk on fire")

    _, final = run_stream(run)
    assert final == "failure: RuntimeError: disk on fire"


def test_base_exception_in_the_copy_thread_still_ends_the_body() -> None:
    def run(report: Callable[[int], None]) -> int:
        raise SystemExit(3)

    _, final = run_stream(run)
    assert final.startswith("failure: SystemExit")


def test_timeout_ends_with_failure() -> None:
    stop = threading.Event()

    def run(report: Callable[[int], None]) -> int:
        stop.wait(10)
        return 1

    try:
        _, final = run_stream(run, heartbeat_s=0.05, timeout_s=0.2)
    finally:
        stop.set()
    assert final == "failure: timed out after 0 s" or final.startswith("failure: timed out")


def test_describe_redacts_query_strings() -> None:
    exc = ce.ClientError("fetch http://127.0.0.1:9/b/k?X-Amz-Signature=secret failed")
    assert "secret" not in describe(exc)
    assert "http://127.0.0.1:9/b/k?<redacted>" in describe(exc)


def test_bad_pacing_arguments() -> None:
    with pytest.raises(ValueError):
        TransferStream(lambda report: 0, heartbeat_s=0)
