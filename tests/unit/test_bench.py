"""The benchmark's own logic (no timing asserted): CPU accounting from /proc,
target maths (machine-limit and overhead ratios, CPU comparisons), the
"inconclusive (machine load)" verdict, interleaved rounds, the report files,
metric parsing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.copy_client import CopyClient
from bench.cpu import CLIENT, CpuMeter, process_cpu_seconds, process_tick_seconds, process_tree
from bench.measure import Figure, Sampler, per_gib, run_rounds, spread
from bench.ours import bytes_counters
from bench.references import COPY_CLIENT
from bench.targets import CPU_TOLERANCE, FAIL, INCONCLUSIVE, INFO, NOT_MEASURED, PASS, SEVEN, Target, evaluate

GiB = 1024 ** 3
GB = 1e9


def rate(seconds_per_gib: float) -> float:
    """GB/s of a run that took ``seconds_per_gib`` for one GiB."""
    return GiB / seconds_per_gib / GB


def fig(unit: str, runs: list[float], *, cpu: list[dict[str, float]] | None = None, service: str | None = None,
        load: list[float] | None = None, **extra: object) -> Figure:
    return Figure("f", unit, runs=list(runs), extra=dict(extra), cpu_runs=list(cpu or []),
                  cpu_unit="s/GiB" if cpu else "", service=service, load=list(load or []))


def steady(n: int, **cpu: float) -> list[dict[str, float]]:
    return [dict(cpu) for _ in range(n)]


def figures() -> dict[str, Figure]:
    """A run like the one in issue 15 (1 GiB, s/GiB): md5 in memory 1.6 s,
    adler32 0.04 s, GET 0.27 client CPU; the function's md5 2.0 s wall with
    SeaweedFS 1.4 + worker 1.78 CPU-s/GiB."""
    out = {
        "mem.md5": fig("GB/s", [rate(1.6)] * 3, cpu=steady(3, client=1.55), bytes=GiB),
        "mem.adler32": fig("GB/s", [rate(0.04)] * 3, cpu=steady(3, client=0.04), bytes=GiB),
        "get.single.8MiB": fig("GB/s", [rate(1.0)] * 3, cpu=steady(3, client=0.27, seaweedfs=1.3)),
        "fn.md5": fig("GB/s", [rate(2.0), rate(2.2), rate(2.0)], service="checksum",
                      cpu=steady(3, seaweedfs=1.4, checksum=1.78, client=0.01)),
        "fn.adler32": fig("GB/s", [rate(1.02)] * 3, service="checksum",
                          cpu=steady(3, seaweedfs=1.34, checksum=0.42, client=0.0)),
        "naive.md5": fig("GB/s", [rate(2.4)] * 3, service="naive", cpu=steady(3, naive=1.91, seaweedfs=1.4)),
        "naive.adler32": fig("GB/s", [rate(1.03)] * 3, service="naive", cpu=steady(3, naive=0.51)),
        "fn.copy.stream": fig("GB/s", [0.1] * 3, service="copy", cpu=steady(3, copy=0.9),
                              strategy=["stream"]),
        "boto3.stream_copy": fig("GB/s", [0.1] * 3, cpu=steady(3, client=0.8)),
        "fn.copy.server": fig("s", [4.4], service="copy", cpu=steady(1, copy=0.001),
                              bytes_counted_by_function_per_copy=0.0),
        "fn.small": fig("ms", [5.0, 9.0, 30.0], service="checksum", load=[0.5, 0.7],
                        cpu=[{"checksum": 7.0, "seaweedfs": 2.0, CLIENT: 1.0}], p90_ms=30.0),
        "get.small": fig("ms", [4.0] * 3, cpu=steady(3, client=3.0)),
        "rss.checksum.seven": fig("MiB", [97.0]),
        "fresh.python": fig("ms", [800.0]),
        "fresh.legacy": fig("ms", [700.0, 900.0]),
        "cold.checksum": fig("s", [0.8, 1.3], load=[0.4]),
    }
    for algorithm in SEVEN:
        if algorithm not in ("md5", "adler32"):
            out[f"mem.{algorithm}"] = fig("GB/s", [rate(0.5)] * 3, cpu=steady(3, client=0.5), bytes=GiB)
            out[f"fn.{algorithm}"] = fig("GB/s", [rate(1.2)] * 3, service="checksum",
                                         cpu=steady(3, checksum=0.8, seaweedfs=1.3))
            out[f"naive.{algorithm}"] = fig("GB/s", [rate(1.3)] * 3, service="naive", cpu=steady(3, naive=0.75))
    out["fn.seven"] = fig("GB/s", [rate(3.0)] * 3, service="checksum", cpu=steady(3, checksum=4.5, seaweedfs=1.24))
    out["naive.seven"] = fig("GB/s", [rate(5.77)] * 3, service="naive", cpu=steady(3, naive=5.36))
    return out


def by_name(figs: dict[str, Figure], cores: int = 2) -> dict[str, Target]:
    return {t.name: t for t in evaluate(figs, GiB, cores=cores)}


def test_machine_limit_ratio_is_the_larger_bound_over_the_measured_time() -> None:
    targets = by_name(figures())
    md5 = targets["machine-limit ratio, checksum md5 (limit / measured wall time)"]
    # runs 2.0, 2.2, 2.0 s/GiB; limit max(1.6 in memory, (1.4 + 1.78 + 0.01) / 2 = 1.595) = 1.6
    assert md5.value == pytest.approx(1.6 / 2.0) and md5.best_value == pytest.approx(1.6 / 2.0)
    assert md5.verdict == FAIL and "1.6" in md5.detail
    adler = targets["machine-limit ratio, checksum adler32 (limit / measured wall time)"]
    # the CPU bound wins: (1.34 + 0.42) / 2 = 0.88 against 1.02 measured (issue 15: ≈ 0.86)
    assert adler.value == pytest.approx(0.88 / 1.02) and adler.verdict == FAIL


def test_overhead_ratio_is_worker_cpu_over_digests_and_get() -> None:
    targets = by_name(figures())
    adler = targets["overhead ratio, checksum adler32 (worker CPU / digests + GET)"]
    assert adler.value == pytest.approx(0.42 / (0.04 + 0.27)) and adler.verdict == FAIL
    md5 = targets["overhead ratio, checksum md5 (worker CPU / digests + GET)"]
    assert md5.value == pytest.approx(1.78 / (1.55 + 0.27)) and md5.verdict == PASS
    seven = targets["overhead ratio, checksum seven (worker CPU / digests + GET)"]
    assert seven.value == pytest.approx(4.5 / (1.55 + 0.04 + 5 * 0.5 + 0.27))


def test_cpu_comparisons_with_the_references() -> None:
    targets = by_name(figures())
    md5 = targets["worker CPU-s/GiB, ours / straightforward function, md5"]
    assert md5.value == pytest.approx(1.78 / 1.91) and md5.verdict == PASS
    sha1 = targets["worker CPU-s/GiB, ours / straightforward function, sha1"]
    assert sha1.value == pytest.approx(0.8 / 0.75) and sha1.verdict == FAIL
    copy = targets["streamed copy: worker CPU-s/GiB / boto3 GET+PUT client CPU-s/GiB"]
    assert copy.value == pytest.approx(0.9 / 0.8) and copy.verdict == PASS
    small = targets["4 KiB checksum: worker CPU ms per request / boto3 CPU ms per 4 KiB GET"]
    assert small.value == pytest.approx(7.0 / 3.0) and small.verdict == FAIL


def test_absolute_targets_kept() -> None:
    targets = by_name(figures())
    assert targets["4 KiB checksum p50 latency (ms)"].value == 9.0
    assert targets["4 KiB checksum p50 latency (ms)"].verdict == PASS
    assert targets["fresh-process baseline / 4 KiB checksum latency"].value == pytest.approx(800 / 9)
    assert targets["bytes through the function during a server-side copy"].verdict == PASS
    assert targets["cold start: exec to first successful checksum (s)"].value == pytest.approx(1.05)
    assert targets["peak worker RSS, f (MiB)"].verdict == PASS


def test_a_moving_reference_makes_the_target_inconclusive_not_failed() -> None:
    figs = figures()
    # in-memory md5 took 1.6, 2.4, 1.6, 3.0, 1.6 s/GiB: a colleague's tests shared the core
    figs["mem.md5"] = fig("GB/s", [rate(x) for x in (1.6, 2.4, 1.6, 3.0, 1.6)],
                          cpu=steady(5, client=1.55), bytes=GiB)
    targets = by_name(figs)
    md5 = targets["machine-limit ratio, checksum md5 (limit / measured wall time)"]
    assert md5.verdict == INCONCLUSIVE and md5.passed is None and "mem.md5 moved" in str(md5.inconclusive)
    # CPU of the same reference did not move: the overhead target is still judged
    assert targets["overhead ratio, checksum md5 (worker CPU / digests + GET)"].verdict == PASS

    # boto3's lowest 4 KiB GET round (0.7 CPU ms) is not confirmed by its next (1.2): the
    # function's 2.0 is above twice one and below twice the other
    figs["fn.small"].cpu_runs = [{"checksum": 2.0}]
    figs["get.small"].cpu_runs = [{CLIENT: x} for x in (1.2, 0.7, 1.3, 1.25)]
    small_name = "4 KiB checksum: worker CPU ms per request / boto3 CPU ms per 4 KiB GET"
    small = by_name(figs)[small_name]
    assert small.value == pytest.approx(2.0 / 0.7)
    assert small.verdict == INCONCLUSIVE and f"{CPU_TOLERANCE:.0%}" in str(small.inconclusive)
    assert "the next ones give 1.67" in small.detail
    # a wobble above a confirmed minimum, or around a clear difference, does not stop the verdict
    figs["get.small"].cpu_runs = [{CLIENT: x} for x in (0.75, 1.2, 0.7, 1.3)]
    assert by_name(figs)[small_name].verdict == FAIL
    figs["get.small"].cpu_runs = [{CLIENT: x} for x in (1.6, 2.4, 1.5, 2.6)]
    assert by_name(figs)[small_name].verdict == PASS


def sha1_against_naive(ours: tuple[float, ...], naive: tuple[float, ...]) -> Target:
    figs = figures()
    figs["fn.sha1"].cpu_runs = [{"checksum": x} for x in ours]
    figs["naive.sha1"].cpu_runs = [{"naive": x} for x in naive]
    return by_name(figs)["worker CPU-s/GiB, ours / straightforward function, sha1"]


def test_ours_against_the_straightforward_function_pairs_the_rounds() -> None:
    """Both run in every round, one right after the other: the median of the
    per-round ratios, not the least-disturbed run of each series taken apart
    (which can come from different rounds: here 0.74 / 0.73 would fail)."""
    sha1 = sha1_against_naive((0.80, 0.74, 0.81, 0.79, 0.80), (0.84, 0.76, 0.73, 0.83, 0.84))
    assert sha1.value == pytest.approx(0.80 / 0.84) and sha1.verdict == PASS
    assert sha1.best_value == pytest.approx(0.79 / 0.83)
    assert "median of 5 paired rounds" in sha1.detail and "apart give 1.01" in sha1.detail
    # the same work, ours a little dearer in most rounds: a fail
    assert sha1_against_naive((0.80, 0.78, 0.81), (0.79, 0.76, 0.83)).verdict == FAIL


def test_paired_rounds_on_both_sides_of_the_limit_under_load_are_inconclusive() -> None:
    # the straightforward sha1 moved 46 % between rounds (a colleague's tests), ours did not
    moved = sha1_against_naive((0.8, 0.8, 0.8, 0.8), (0.7, 1.2, 0.75, 1.3))
    assert moved.verdict == INCONCLUSIVE and moved.passed is None
    assert f"{CPU_TOLERANCE:.0%}" in str(moved.inconclusive) and "both sides of 1" in str(moved.inconclusive)
    # moved as much, but every round says ours is cheaper: judged
    assert sha1_against_naive((0.8, 0.8, 0.8, 0.8), (1.6, 2.4, 1.5, 2.6)).verdict == PASS
    # rounds on both sides of the limit on a steady reference: judged by the median
    steady_naive = sha1_against_naive((0.7, 0.82, 0.74, 0.76), (0.8, 0.8, 0.8, 0.8))
    assert steady_naive.value == pytest.approx(0.75 / 0.8) and steady_naive.verdict == PASS


def test_cpu_ratios_take_the_least_disturbed_run() -> None:
    """Contention only adds CPU time: where two series are not measured in the
    same rounds (the 4 KiB requests run in blocks of their own), the smallest
    run of each is the cost."""
    figs = figures()
    figs["fn.small"].cpu_runs = [{"checksum": x} for x in (2.4, 1.78, 1.8, 2.9)]
    figs["get.small"].cpu_runs = [{CLIENT: x} for x in (1.0, 1.5, 1.05)]
    small = by_name(figs)["4 KiB checksum: worker CPU ms per request / boto3 CPU ms per 4 KiB GET"]
    assert small.value == pytest.approx(1.78 / 1.0) and small.verdict == PASS


def test_the_overhead_and_the_copy_pair_their_rounds_too() -> None:
    figs = figures()
    # the copy and boto3's copy in the same 3 rounds: 1.0/0.8, 0.9/0.85, 1.5/0.9
    figs["fn.copy.stream"].cpu_runs = [{"copy": x} for x in (1.0, 0.9, 1.5)]
    figs["boto3.stream_copy"].cpu_runs = [{CLIENT: x} for x in (0.8, 0.85, 0.9)]
    copy = by_name(figs)["streamed copy: worker CPU-s/GiB / boto3 GET+PUT client CPU-s/GiB"]
    assert copy.value == pytest.approx(1.25) and copy.verdict == FAIL and "median of 3 paired" in copy.detail
    # the overhead's reference is the sum of the digests in memory and the GET, round by round
    figs["fn.md5"].cpu_runs = [{"checksum": x} for x in (1.78, 2.2, 1.9)]
    figs["mem.md5"].cpu_runs = [{CLIENT: x} for x in (1.55, 1.9, 1.6)]
    md5 = by_name(figs)["overhead ratio, checksum md5 (worker CPU / digests + GET)"]
    # rounds 1.78 / 1.82, 2.2 / 2.17, 1.9 / 1.87: the middle one
    assert md5.value == pytest.approx(2.2 / (1.9 + 0.27)) and "median of 3 paired" in md5.detail


def test_the_streamed_copy_reference_is_read_from_its_own_process_group() -> None:
    """The boto3 copy runs in a child of its own (bench.copy_client) metered
    as the group ``boto3-copy``: the target reads that group, not the bench
    process that only waited on a pipe; a summary from before the child
    (no service on the figure) is still read from the client."""
    figs = figures()
    figs["boto3.stream_copy"] = fig("GB/s", [0.1] * 3, service=COPY_CLIENT,
                                    cpu=[{COPY_CLIENT: x, CLIENT: 0.01} for x in (2.1, 2.2, 2.3)])
    figs["fn.copy.stream"].cpu_runs = [{"copy": x} for x in (3.5, 3.6, 3.7)]
    copy = by_name(figs)["streamed copy: worker CPU-s/GiB / boto3 GET+PUT client CPU-s/GiB"]
    assert copy.value == pytest.approx(3.6 / 2.2) and copy.verdict == FAIL
    figs["boto3.stream_copy"] = fig("GB/s", [0.1] * 3, cpu=[{CLIENT: x} for x in (3.0, 3.1, 3.2)])
    assert by_name(figs)["streamed copy: worker CPU-s/GiB / boto3 GET+PUT client CPU-s/GiB"].value == \
        pytest.approx(3.6 / 3.1)


def test_the_copy_client_copies_in_a_process_the_meter_sees(moto_url: str) -> None:
    """bench.copy_client: a real child streams a GET into upload_fileobj
    (three 64 MiB parts would be too big here: 5 MiB goes up in one PUT);
    the bytes arrive whole, a missing source is the child's error line
    (the figure's error) and the child stays up for the next copy; its CPU
    is the group's, not this process's."""
    store = {"endpoint_url": moto_url, "access_key_id": "AKIDA", "secret_access_key": "a-secret"}
    from dynafed_client.stack.s3 import client_for_store

    client = client_for_store(store)
    client.create_bucket(Bucket="src")
    client.create_bucket(Bucket="dst")
    data = os.urandom(5 * 1024 * 1024 + 7)
    client.put_object(Bucket="src", Key="a.bin", Body=data)
    with CopyClient(store, store) as copier:
        meter = CpuMeter({COPY_CLIENT: copier.pid})
        before = meter.snapshot()
        copier.copy("src", "a.bin", "dst", "b.bin")
        used = meter.since(before)
        assert client.get_object(Bucket="dst", Key="b.bin")["Body"].read() == data
        assert used[COPY_CLIENT] > 0
        with pytest.raises(RuntimeError, match="copy client: NoSuchKey"):
            copier.copy("src", "missing.bin", "dst", "c.bin")
        copier.copy("src", "a.bin", "dst", "c.bin")
        assert client.head_object(Bucket="dst", Key="c.bin")["ContentLength"] == len(data)
        child = copier.process
    assert child is not None and child.returncode == 0  # end of input ended it


def test_wall_clock_targets_need_a_quiet_machine() -> None:
    figs = figures()
    figs["fn.small"].load = [6.5, 7.0]  # 2 cores, 6 other engineers' tests
    # a pass under load stands: load only ever lengthens wall time
    assert by_name(figs)["4 KiB checksum p50 latency (ms)"].verdict == PASS
    figs["fn.small"].runs = [9.0, 14.0, 30.0]
    targets = by_name(figs)
    latency = targets["4 KiB checksum p50 latency (ms)"]
    assert latency.verdict == INCONCLUSIVE and "load average 6.8" in str(latency.inconclusive)
    figs["fn.small"].load = [1.5, 1.9]
    assert by_name(figs)["4 KiB checksum p50 latency (ms)"].verdict == FAIL
    # the CPU target on the same measurement is judged all the same
    assert targets["4 KiB checksum: worker CPU ms per request / boto3 CPU ms per 4 KiB GET"].verdict == FAIL


def test_missing_figures_are_not_measured_and_comparisons_never_judged() -> None:
    figs = figures()
    del figs["mem.md5"]
    figs["fn.seven"].error = "RuntimeError: boom"
    targets = evaluate(figs, GiB, cores=2)
    named = {t.name: t for t in targets}
    assert named["machine-limit ratio, checksum md5 (limit / measured wall time)"].verdict == NOT_MEASURED
    assert named["overhead ratio, checksum seven (worker CPU / digests + GET)"].passed is None
    info = [t for t in targets if t.kind == "info"]
    assert info and all(t.passed is None for t in info)
    assert {t.verdict for t in info} <= {INFO, NOT_MEASURED}


def test_spread_ignores_one_odd_run_of_several() -> None:
    assert spread([1.0, 1.0, 1.0, 1.0, 9.0]) == 0.0
    assert spread([1.0, 1.1, 1.2, 1.3, 1.4]) == pytest.approx((1.3 - 1.1) / 1.2)
    assert spread([2.0, 3.0]) == pytest.approx(1.0 / 2.5)
    assert spread([1.0]) is None


def test_rounds_interleave_rotate_and_drop_failures() -> None:
    order: list[str] = []

    def sampler(key: str, fail_on: int | None = None) -> Sampler:
        calls = {"n": 0}

        def sample() -> float:
            calls["n"] += 1
            order.append(key)
            if calls["n"] == fail_on:
                raise RuntimeError("broken reference")
            return float(calls["n"])

        return Sampler(key, Figure(key, "s"), sample)

    out: dict[str, Figure] = {}
    loads: list[Mapping[str, Any]] = []
    run_rounds([sampler("a"), sampler("b", fail_on=2), sampler("c")], 3, out, log=lambda _: None, loads=loads,
               label="x")
    assert order == ["a", "b", "c", "b", "c", "a", "a", "c"]
    assert out["a"].runs == [1.0, 2.0, 3.0] and out["c"].runs == [1.0, 2.0, 3.0]
    assert out["b"].runs == [1.0] and out["b"].error == "RuntimeError: broken reference"
    assert [r["round"] for r in loads] == [1, 2, 3] and all(len(r["load_average"]) == 3 for r in loads)


def test_rounds_record_cpu_per_unit_of_every_group() -> None:
    class Meter(CpuMeter):
        """Recording fake: each sample costs the S3 server 3 s and the worker 1.5 s."""

        def __init__(self) -> None:
            super().__init__()
            self.now = {"seaweedfs": 0.0, "checksum": 0.0, CLIENT: 0.0}

        def snapshot(self) -> dict[str, float]:
            return dict(self.now)

        def work(self) -> float:
            self.now["seaweedfs"] += 3.0
            self.now["checksum"] += 1.5
            return 1.0

    meter = Meter()
    out: dict[str, Figure] = {}
    sampler = per_gib(Sampler("fn.md5", Figure("md5", "GB/s"), meter.work), 2 * GiB, "checksum")
    run_rounds([sampler], 2, out, log=lambda _: None, meter=meter)
    assert out["fn.md5"].cpu_runs == [{"seaweedfs": 1.5, "checksum": 0.75, CLIENT: 0.0}] * 2
    assert out["fn.md5"].to_json()["cpu_median"] == {"checksum": 0.75, CLIENT: 0.0, "seaweedfs": 1.5}
    assert len(out["fn.md5"].load) == 2


GRANDCHILD = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()                       # "go"
started = time.process_time()
while time.process_time() - started < 0.3:  # burn 0.3 s of CPU
    pass
print("done", flush=True)
sys.stdin.readline()                       # stay alive until told
"""


def test_cpu_meter_reads_a_real_process_tree() -> None:
    """A real grandchild burns 0.3 CPU-s between two lines it prints: the
    meter, rooted at its parent, sees them (the CPU-time clock
    of every process of the tree). Driven by the child's lines, not a clock."""
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {GRANDCHILD!r}])"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert parent.stdin is not None and parent.stdout is not None
    try:
        assert parent.stdout.readline().strip() == "ready"
        meter = CpuMeter({"tree": parent.pid})
        assert len(process_tree(parent.pid)) == 2
        before = meter.snapshot()
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "done"
        used = meter.since(before)
        assert 0.3 <= used["tree"] < 5.0
        assert used[CLIENT] < used["tree"]  # this process only waited
    finally:
        parent.communicate("\n")
    assert process_cpu_seconds(os.getpid()) > 0
    assert process_cpu_seconds(2 ** 22 + 7) == 0.0  # no such process


ENDED_THREAD = """
import sys, threading, time
def burn():
    started = time.thread_time()
    while time.thread_time() - started < 0.3:
        pass
print("ready", flush=True)
sys.stdin.readline()
worker = threading.Thread(target=burn)
worker.start(); worker.join()              # the thread that did the work is gone
print("done", flush=True)
sys.stdin.readline()
"""


def test_process_clock_counts_ended_threads_to_the_nanosecond() -> None:
    """The meter reads each process's CPU-time clock (bench/cpu.py): a thread
    that burnt 0.3 CPU-s and ended still counts (a gunicorn worker's request
    threads come and go), and the clock agrees with /proc/<pid>/stat's 10 ms
    ticks to within a few ticks while resolving far below one."""
    child = subprocess.Popen([sys.executable, "-c", ENDED_THREAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        clock, ticks = process_cpu_seconds(child.pid), process_tick_seconds(child.pid)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        by_clock = process_cpu_seconds(child.pid) - clock
        by_ticks = process_tick_seconds(child.pid) - ticks
        assert len(list(Path(f"/proc/{child.pid}/task").iterdir())) == 1  # the burning thread ended
        assert 0.3 <= by_clock < 5.0
        assert abs(by_clock - by_ticks) < 0.05 + 0.1 * by_clock
        assert by_clock != round(by_clock, 2)  # not a multiple of a 10 ms tick
    finally:
        child.communicate("\n")


def test_report_files(tmp_path: Path) -> None:
    figs = figures()
    targets = evaluate(figs, GiB, cores=2)
    loads = [{"group": "checksums", "round": 1, "load_average": [1.0, 0.5, 0.2]}]
    markdown = report.write(tmp_path, figures=figs, targets=targets, environment={"cpus": 2},
                            profile={"wsgi_import_ms": 300}, notes=["a note"], loads=loads)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["figures"]["fn.md5"]["cpu_median"]["checksum"] == 1.78
    assert summary["load_by_round"] == loads
    assert {t["verdict"] for t in summary["targets"]} >= {PASS, FAIL, INFO}
    assert (tmp_path / "results.md").read_text() == markdown
    assert "| PASS |" in markdown and "| FAIL |" in markdown and "a note" in markdown
    assert "**checksum** 1.78" in markdown and "| checksums | 1 | 1.0 0.5 0.2 |" in markdown


def test_bytes_counters_of_a_prometheus_page() -> None:
    page = """# HELP dynafed_fn_bytes_total Object bytes processed
# TYPE dynafed_fn_bytes_total counter
dynafed_fn_bytes_total{direction="read",function="copy"} 1.073741824e+09
dynafed_fn_bytes_created{direction="read",function="copy"} 1.7e+09
# HELP dynafed_fn_requests_total Requests
# TYPE dynafed_fn_requests_total counter
dynafed_fn_requests_total{function="copy",method="POST",status="200"} 3.0
# HELP dynafed_fn_request_bytes A histogram, not a counter
# TYPE dynafed_fn_request_bytes histogram
dynafed_fn_request_bytes_bucket{le="+Inf"} 2.0
dynafed_fn_request_bytes_count 2.0
dynafed_fn_request_bytes_sum 9.0
"""
    assert bytes_counters(page) == {'dynafed_fn_bytes_total{direction="read",function="copy"}': 1073741824.0}


# -- Knative sizing from the figures (bench.sizing) ----------------------------------

def sizing_figures() -> dict[str, dict[str, Any]]:
    """summary.json figures as in issue 15: adler32 0.42 worker CPU-s/GiB at
    1.02 s/GiB, md5 1.78 at 2.02, all seven 4.5 at 2.99; a 4 KiB checksum
    costs the worker 6 ms; an idle service holds 80 MiB (worker 50, master
    30); the worker peaks at 97 MiB during one checksum, 140 MiB during one
    streamed copy."""
    def fn(service: str, s_per_gib: float, cpu: float, s3: float = 1.3) -> dict[str, Any]:
        return {"unit": "GB/s", "runs": [rate(s_per_gib), rate(s_per_gib * 1.1)], "service": service,
                "cpu_median": {service: cpu, "seaweedfs": s3}}

    def mem(cpu: float) -> dict[str, Any]:
        return {"unit": "GB/s", "runs": [1.0], "cpu_median": {"client": cpu}}

    def peak(mib: float) -> dict[str, Any]:
        return {"unit": "MiB", "runs": [mib], "median": mib, "extra": {"rss_before_mib": 65.0,
                                                                        "master_rss_mib": 30.0}}

    def idle() -> dict[str, Any]:
        return {"unit": "MiB", "runs": [80.0], "median": 80.0, "extra": {"worker_mib": 50.0, "master_mib": 30.0}}

    return {"rss.idle.checksum": idle(), "rss.idle.copy": idle(),
            "fn.adler32": fn("checksum", 1.02, 0.42), "fn.md5": fn("checksum", 2.02, 1.78),
            "fn.seven": fn("checksum", 2.99, 4.5), "fn.copy.stream": fn("copy", 10.0, 3.0, s3=12.0),
            **{f"mem.{a}": mem(c) for a, c in (("adler32", 0.05), ("crc32", 0.05), ("crc32c", 0.1), ("md5", 1.5),
                                               ("sha1", 0.6), ("sha256", 0.65), ("sha512", 1.1))},
            "fn.small": {"unit": "ms", "runs": [9.0], "service": "checksum", "cpu_median": {"checksum": 6.0}},
            "rss.checksum.adler32": peak(90.0), "rss.checksum.seven": peak(97.0),
            "rss.copy.stream": peak(140.0), "rss.copy.server": peak(120.0)}


def test_sizing_rule_from_cpu_per_gib_rss_and_concurrency() -> None:
    from bench.sizing import ManifestFacts, size_service

    s = size_service("checksum", sizing_figures(), ManifestFacts(container_concurrency=8, utilization_pct=70))
    # an adler32 request at the machine's limit takes (0.42 + 1.3) / 2 cores = 0.86 s/GiB
    c = 0.42 / 0.86  # cores it keeps busy
    assert s.cores_per_request == pytest.approx(c)
    assert s.cpu_limit == 2  # all seven: 4.5 CPU-s over (4.5 + 1.3) / 2 = 2.9 s: 1.55 cores -> 2
    assert s.target == 4  # floor(2 / 0.49): more in flight would slice the CPU
    assert s.cpu_request_m == 1400  # 0.49 x 4 x 0.7 = 1.367 cores -> up to 50m
    assert s.baseline_mib == 80 and s.rss_per_request_mib == 47  # 97 - the idle worker's 50
    assert s.memory_limit_mib == 576  # 1.25 x (80 + 8 x 47) = 570 -> 64 Mi steps
    assert s.memory_request_mib == 256  # 80 + ceil(2.8) x 47 = 221
    assert s.sustained_gbps == pytest.approx(1.4 / (0.42 * 1e9 / 2 ** 30))
    assert s.small_rps == pytest.approx(1.4 / 0.006)
    assert s.manifest_values() == {"requests.cpu": "1400m", "limits.cpu": "2", "requests.memory": "256Mi",
                                   "limits.memory": "576Mi", "target": "4"}

    copy = size_service("copy", sizing_figures(), ManifestFacts(container_concurrency=4, utilization_pct=75))
    # md5 per part bounds nothing here: the copy's CPU is SeaweedFS's writes, (3 + 12) / 2 = 7.5 s/GiB
    assert copy.cores_per_request == pytest.approx(3.0 / 7.5)
    assert (copy.cpu_limit, copy.target) == (1, 2)  # floor(1 / 0.4) = 2 <= 4
    assert copy.memory_limit_mib == 576  # 1.25 x (80 + 4 x 90) = 550
    # the target never exceeds containerConcurrency
    small = size_service("copy", sizing_figures(), ManifestFacts(container_concurrency=2, utilization_pct=75))
    assert small.target == 2


def test_sizing_rewrites_only_the_sized_values_of_a_manifest() -> None:
    from bench.sizing import apply_to_manifest

    text = """    metadata:
      annotations:
        # why this target
        autoscaling.knative.dev/target: "8"
        autoscaling.knative.dev/target-utilization-percentage: "70"
    spec:
      containers:
        - name: checksum
          resources:
            requests:
              cpu: 500m
              memory: 256Mi
            limits:
              # Hashing releases the GIL
              cpu: "2"
              memory: 512Mi
          startupProbe:
            periodSeconds: 1
"""
    values = {"requests.cpu": "1200m", "limits.cpu": "3", "requests.memory": "192Mi", "limits.memory": "448Mi",
              "target": "4"}
    out = apply_to_manifest(text, values)
    assert 'autoscaling.knative.dev/target: "4"' in out and 'target-utilization-percentage: "70"' in out
    assert "cpu: 1200m\n              memory: 192Mi" in out
    assert '# Hashing releases the GIL\n              cpu: "3"\n              memory: 448Mi' in out
    assert "# why this target" in out and "periodSeconds: 1" in out
    assert apply_to_manifest(out, values) == out


def test_machine_limit_names_the_measured_bound_when_the_run_has_it() -> None:
    """A miss the same work without the function shares (raw GET beside the
    digests in memory, ``pack.<name>``) is the machine's; the detail says both."""
    figs = figures()
    figs["pack.md5"] = fig("GB/s", [rate(x) for x in (1.9, 2.0, 2.1)], cpu=steady(3, client=1.8))
    md5 = by_name(figs)["machine-limit ratio, checksum md5 (limit / measured wall time)"]
    # ours 2.0 s/GiB (median of 2.0, 2.2, 2.0), the packed work 2.0, the ideal 1.6
    assert "measured bound 2 s/GiB" in md5.detail
    assert "ideal / measured bound 0.8" in md5.detail and "measured bound / ours 1" in md5.detail
    assert md5.value == pytest.approx(1.6 / 2.0)  # the target itself is unchanged
