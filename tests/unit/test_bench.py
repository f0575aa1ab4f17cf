"""The benchmark's own logic (no timing asserted): targets computed from
figures, interleaved rounds, the report files, metric parsing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report
from bench.measure import Figure, Sampler, run_rounds
from bench.ours import bytes_counters
from bench.targets import SEVEN, evaluate

pytestmark = pytest.mark.unit

GiB = 1024 ** 3


def fig(unit: str, *runs: float, **extra: object) -> Figure:
    return Figure("f", unit, runs=list(runs), extra=dict(extra))


def figures() -> dict[str, Figure]:
    out = {
        "get.single.1MiB": fig("GB/s", 0.8, 1.0),
        "get.ranged.8": fig("GB/s", 1.2, 0.9),
        "mem.md5": fig("GB/s", 0.6),
        "fn.md5": fig("GB/s", 0.57),
        "rclone.md5": fig("GB/s", 0.5),
        "fn.seven": fig("GB/s", 0.3),
        "naive.seven": fig("GB/s", 0.1),
        "boto3.copy_object": fig("s", 5.0, 4.0),
        "boto3.managed_copy": fig("s", 4.5),
        "fn.copy.server": fig("s", 4.4, bytes_counted_by_function_per_copy=0.0),
        "fn.copy.stream": fig("GB/s", 0.1),
        "rclone.copy": fig("GB/s", 0.12),
        "rss.checksum.seven": fig("MiB", 97.0),
        "fn.small": fig("ms", 5.0, 9.0, 30.0),
        "fresh.python": fig("ms", 800.0),
        "fresh.legacy": fig("ms", 700.0, 900.0),
        "cold.checksum": fig("s", 0.8, 1.3),
    }
    for algorithm in SEVEN:
        out.setdefault(f"fn.{algorithm}", fig("GB/s", 1.0))
    out["fn.adler32"] = fig("GB/s", 1.1)
    return out


def test_targets_are_ratios_of_the_best_runs() -> None:
    targets = {t.name: t for t in evaluate(figures(), GiB)}
    adler = targets["checksum adler32 via the function / best raw GET throughput"]
    assert adler.value == pytest.approx(1.1 / 1.2) and adler.passed is True
    md5 = targets["checksum md5 via the function / in-memory md5"]
    assert md5.value == pytest.approx(0.95) and md5.passed is True
    seven = targets["all seven in one request / sum of the seven single requests (time)"]
    # 1/0.3 s against 1/1.1 + 6 * 1/1.0 (fn.md5 is 0.57)
    assert seven.value == pytest.approx((1 / 0.3) / (1 / 1.1 + 5 / 1.0 + 1 / 0.57))
    assert targets["all seven in one request / straightforward function (throughput)"].value == pytest.approx(3.0)
    copy = targets["server-side copy via the function / direct boto3 server-side copy (time)"]
    assert copy.value == pytest.approx(4.4 / 4.0) and copy.passed is True
    assert targets["bytes through the function during a server-side copy"].passed is True
    assert targets["streamed copy via the function / rclone copy (throughput)"].passed is False
    small = targets["small-object (4 KiB) checksum median latency (ms)"]
    assert small.value == 9.0 and small.passed is True
    assert targets["fresh-process baseline / small-object latency"].value == pytest.approx(800 / 9)
    cold = targets["cold start: exec to first successful checksum (s)"]
    assert cold.value == 0.8 and cold.median_value == pytest.approx(1.05)


def test_missing_or_failed_figures_are_not_measured_never_passed() -> None:
    partial = figures()
    del partial["mem.md5"]
    partial["fn.seven"].error = "RuntimeError: boom"
    targets = {t.name: t for t in evaluate(partial, GiB)}
    assert targets["checksum md5 via the function / in-memory md5"].passed is None
    assert targets["all seven in one request / straightforward function (throughput)"].passed is None


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
    run_rounds([sampler("a"), sampler("b", fail_on=2), sampler("c")], 3, out, log=lambda _: None)
    assert order == ["a", "b", "c", "b", "c", "a", "a", "c"]
    assert out["a"].runs == [1.0, 2.0, 3.0] and out["c"].runs == [1.0, 2.0, 3.0]
    assert out["b"].runs == [1.0] and out["b"].error == "RuntimeError: broken reference"


def test_report_files(tmp_path: Path) -> None:
    figs = figures()
    markdown = report.write(tmp_path, figures=figs, targets=evaluate(figs, GiB), environment={"cpus": 2},
                            profile={"wsgi_import_ms": 300}, notes=["a note"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["figures"]["fn.md5"]["best"] == 0.57
    assert {t["target"] for t in summary["targets"]} >= {"fresh-process baseline / small-object latency"}
    assert (tmp_path / "results.md").read_text() == markdown
    assert "| PASS |" in markdown and "| FAIL |" in markdown and "a note" in markdown


def test_bytes_counters_of_a_prometheus_page() -> None:
    page = """# HELP dynafed_fn_bytes_total Object bytes processed
# TYPE dynafed_fn_bytes_total counter
dynafed_fn_bytes_total{direction="read",function="copy"} 1.073741824e+09
dynafed_fn_bytes_created{direction="read",function="copy"} 1.7e+09
dynafed_fn_requests_total{function="copy",method="POST",status="200"} 3.0
"""
    assert bytes_counters(page) == {'dynafed_fn_bytes_total{direction="read",function="copy"}': 1073741824.0}
