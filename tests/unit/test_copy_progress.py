"""ProgressThrottle and ProgressReporter with a fake clock."""
from __future__ import annotations

import threading

from functions.copy.progress import ProgressReporter, ProgressThrottle, event_publisher


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttle_publishes_at_most_every_interval_plus_every_step():
    clock = Clock()
    throttle = ProgressThrottle(1000, interval=0.5, step=0.05, clock=clock)
    assert throttle.should_emit(10) is False  # same 5 % bucket, no time passed
    assert throttle.should_emit(50) is True  # entered the 5 % bucket
    assert throttle.should_emit(60) is False
    clock.now += 0.5
    assert throttle.should_emit(61) is True  # interval elapsed
    assert throttle.should_emit(61) is False  # never without growth
    clock.now += 10
    assert throttle.should_emit(61) is False


def test_throttle_bounds_the_number_of_updates():
    clock = Clock()
    throttle = ProgressThrottle(10_000, interval=0.5, step=0.05, clock=clock)
    published = sum(throttle.should_emit(done) for done in range(1, 10_001))
    assert published == 20  # one per 5 %, no time passed


def test_throttle_without_total_uses_time_only():
    clock = Clock()
    throttle = ProgressThrottle(None, interval=1.0, clock=clock)
    assert throttle.should_emit(5) is False
    clock.now += 1
    assert throttle.should_emit(6) is True
    assert throttle.force(6) is False and throttle.force(7) is True


def test_reporter_fans_out_monotonic_lines():
    clock = Clock()
    reporter = ProgressReporter("job-1", 100, base=0, interval=0.5, step=0.1, clock=clock)
    lines: list[dict] = []
    other: list[dict] = []
    reporter.subscribe(lines.append)
    reporter.subscribe(other.append)
    reporter.advance(10)
    reporter.reach(5)  # smaller: ignored
    reporter.advance(30)
    clock.now += 1
    reporter.advance(1)
    reporter.flush()
    reporter.flush()
    assert [line["bytes"] for line in lines] == [10, 40, 41]
    assert lines == other
    assert all(line["job_id"] == "job-1" and line["total"] == 100 and line["type"] == "progress" for line in lines)
    assert lines[-1]["rate_bps"] == 41.0


def test_reporter_counts_rate_from_its_base():
    clock = Clock()
    reporter = ProgressReporter("j", 100, base=50, clock=clock)
    lines: list[dict] = []
    reporter.subscribe(lines.append)
    clock.now += 2
    reporter.reach(70)
    assert lines[-1]["bytes"] == 70 and lines[-1]["rate_bps"] == 10.0


def test_reporter_is_monotonic_under_threads():
    reporter = ProgressReporter("j", 4000, interval=0.0, step=0.001)
    lines: list[dict] = []
    reporter.subscribe(lines.append)
    threads = [threading.Thread(target=lambda: [reporter.advance(1) for _ in range(1000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    values = [line["bytes"] for line in lines]
    assert values == sorted(values) and reporter.done == 4000


def test_event_publisher_drops_the_line_type():
    sent = []

    class Emitter:
        def emit(self, event_type, subject, data):
            sent.append((event_type, subject, data))

    event_publisher(Emitter(), "job-9")({"type": "progress", "bytes": 1, "job_id": "job-9"})
    assert sent == [("ch.cern.dynafed.copy.progress", "job-9", {"bytes": 1, "job_id": "job-9"})]
