"""Validation of answers, the request log, cold-start detection, summary,
report and comparison on synthetic results directories."""
from __future__ import annotations

import base64
import csv
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from loadtest import coldstart, compare, report, validation
from loadtest.requestlog import COLUMNS, RequestLog, read_rows
from loadtest.seed import SeededObject

OBJ = SeededObject("small-cached", "lt/x/small-cached/00001.bin", 1000,
                   {"adler32": "0a1b2c3d", "md5": "d41d8cd98f00b204e9800998ecf8427e"})


# -- validation -----------------------------------------------------------------------------

def answer(**changes):
    body = {"store": "default", "bucket": "demo", "key": OBJ.key, "size": 1000,
            "checksums": {"adler32": "0a1b2c3d"}, "cached": ["adler32"]}
    body.update(changes)
    return body


def test_a_right_checksum_passes_and_a_wrong_one_fails():
    assert validation.check_checksum(answer(), OBJ, ["adler32"], expect_cached=True) is None
    assert validation.check_checksum(answer(checksums={"adler32": "0A1B2C3D"}), OBJ, ["adler32"]) is None
    assert "wrong adler32" in validation.check_checksum(answer(checksums={"adler32": "deadbeef"}), OBJ, ["adler32"])
    assert "md5 missing" in validation.check_checksum(answer(), OBJ, ["adler32", "md5"])
    assert "size" in validation.check_checksum(answer(size=999), OBJ, ["adler32"])
    assert "key" in validation.check_checksum(answer(key="other"), OBJ, ["adler32"])
    assert "without a 'checksums'" in validation.check_checksum({"detail": "x"}, OBJ, ["adler32"])


def test_cache_hits_and_misses_are_checked():
    assert "expected a metadata-cache hit" in validation.check_checksum(answer(cached=[]), OBJ, ["adler32"],
                                                                          expect_cached=True)
    assert "expected a cache miss" in validation.check_checksum(answer(), OBJ, ["adler32"], expect_cached=False)
    assert validation.check_checksum(answer(cached=[]), OBJ, ["adler32"], expect_cached=False) is None


def copy_answer(**changes):
    body = {"type": "result", "job_id": "j", "status": "completed", "strategy": "server-side", "bytes": 1000,
            "checksums": {"adler32": "0a1b2c3d"}, "verified": True}
    body.update(changes)
    return body


@pytest.mark.parametrize(("changes", "reason"), [
    ({}, None),
    ({"strategy": "server-side-multipart"}, None),
    ({"status": "already-present"}, "status"),
    ({"verified": False}, "not verified"),
    ({"bytes": 999}, "999 bytes"),
    ({"checksums": {"adler32": "00000001"}}, "wrong adler32"),
    ({"checksums": {}}, "missing"),
    ({"strategy": "stream"}, "strategy 'stream'"),
])
def test_copy_results_are_checked(changes, reason):
    got = validation.check_copy(copy_answer(**changes), OBJ, verify="adler32", strategies=validation.SERVER_SIDE)
    assert got is None if reason is None else reason in got


def test_ndjson_copy_streams():
    lines = [json.dumps({"type": "progress", "bytes": 10, "total": 1000}),
             json.dumps({"type": "progress", "bytes": 1000, "total": 1000}), json.dumps(copy_answer())]
    result, progress, error = validation.last_ndjson_result("\n".join(lines) + "\n")
    assert (progress, error) == (2, None) and result["status"] == "completed"
    _, _, error = validation.last_ndjson_result(lines[0] + "\n")
    assert "without a result" in error
    problem = json.dumps({"type": "error", "code": "UPSTREAM_ERROR", "status": 502, "detail": "S3 said no"})
    _, _, error = validation.last_ndjson_result(lines[0] + "\n" + problem)
    assert error == "UPSTREAM_ERROR: S3 said no"
    _, _, error = validation.last_ndjson_result("not json\n")
    assert "not JSON" in error


def test_error_codes():
    assert validation.error_code(404, {"code": "NO_SUCH_OBJECT"}) == "NO_SUCH_OBJECT"
    assert validation.error_code(502, "<html>") == "HTTP 502"
    assert validation.error_code(0, None, ConnectionResetError()) == "ConnectionResetError"


# -- request log --------------------------------------------------------------------------------

class FakeResponse:
    status_code = 200
    elapsed = timedelta(milliseconds=12.5)


def test_request_log_rows(tmp_path):
    log = RequestLog(tmp_path / "requests.csv", mode="functions")
    log.on_request(request_type="POST", name="checksum:small-cached", response_time=15.0, response_length=10,
                   response=FakeResponse(), context={"function": "checksum", "bytes": 1000, "validated": True},
                   exception=None, start_time=100.0)
    log.on_request(request_type="POST", name="checksum:large", response_time=3.0, response_length=0,
                   response=type("R", (), {"status_code": 0})(), context={"function": "checksum"},
                   exception=ConnectionRefusedError("no"), start_time=101.0)
    log.on_request(request_type="PROC", name="copy:stream", response_time=900.0, response_length=0,
                   context={"function": "copy", "mode": "baseline", "code": "WRONG_ANSWER", "ttfb_ms": 900.0,
                            "validated": True, "bytes": 5},
                   exception=AssertionError("wrong"), start_time=102.0)
    log.close()
    rows = read_rows(tmp_path / "requests.csv")
    assert [(r["name"], r["ok"], r["code"], r["ttfb_ms"], r["validated"], r["mode"]) for r in rows] == [
        ("checksum:small-cached", True, "", 12.5, True, "functions"),
        ("checksum:large", False, "ConnectionRefusedError", None, False, "functions"),
        ("copy:stream", False, "WRONG_ANSWER", 900.0, True, "baseline"),
    ]
    assert log.validated == 2


# -- cold starts in the load ------------------------------------------------------------------------

def test_the_first_request_after_each_zero_episode_is_a_cold_start():
    replicas = []
    for t, ready in [(0, 1), (1, 1), (2, 0), (3, 0), (4, 0), (5, 1), (6, 1), (7, 0), (8, 1)]:
        replicas.append({"t": 1000.0 + t, "service": "checksum", "revision": "checksum-1", "ready": ready,
                         "pods": ready, "desired": ready, "error": ""})
    replicas.append({"t": 1003.5, "service": "checksum", "revision": "", "ready": None, "pods": None,
                     "desired": None, "error": "pods: HTTP 500"})  # ignored
    requests = [
        {"start": 1000.5, "function": "checksum", "ttfb_ms": 5.0, "response_ms": 6.0, "ok": True},
        {"start": 1004.6, "function": "checksum", "ttfb_ms": 2500.0, "response_ms": 2501.0, "ok": True},
        {"start": 1004.9, "function": "checksum", "ttfb_ms": 2300.0, "response_ms": 2301.0, "ok": True},
        {"start": 1007.2, "function": "checksum", "ttfb_ms": None, "response_ms": 1800.0, "ok": False},
        {"start": 1007.3, "function": "copy", "ttfb_ms": 1.0, "response_ms": 1.0, "ok": True},
    ]
    found = coldstart.cold_starts_in_load(requests, replicas, {"checksum": "checksum", "copy": "copy"})
    assert [(c.t, c.ttfb_s, c.ok, c.phase) for c in found] == [(1004.6, 2.5, True, "load"),
                                                               (1007.2, 1.8, False, "load")]


# -- summary, report, compare on a synthetic run -------------------------------------------------------

def write_run(root: Path, mode: str, latency_ms: float, *, failures: int = 0, knative: bool = False) -> Path:
    root.mkdir(parents=True)
    stages = [{"duration": 5.0, "users": 1, "spawn_rate": 1.0, "label": "step 1"},
              {"duration": 5.0, "users": 2, "spawn_rate": 1.0, "label": "step 2"}]
    (root / "shape.json").write_text(json.dumps({"started": 1000.0, "stages": stages}))
    target = {"kind": "knative" if knative else "local", "functions": {}, "state_dir": None}
    if knative:
        target["knative"] = {"namespace": "ns", "context": None, "kubeconfig": None,
                             "services": {"checksum": "checksum"}}
    (root / "meta.json").write_text(json.dumps({
        "run_id": root.name, "mode": mode, "target": target, "scenario_name": "t", "scenario_source": "x",
        "stages": stages, "started": 1000.0, "ended": 1010.0, "locust_exit_code": 0, "locust_timed_out": False,
        "settings": {"source": "local stack", "services": {"checksum": {"replicas": 1, "env": {"THREADS": "8"}}},
                     "manifests": {"source": "knative/base", "services": {"checksum": {
                         "annotations": {"autoscaling.knative.dev/target": "8"}, "containerConcurrency": 8}}}}}))
    with (root / "requests.csv").open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(COLUMNS)
        for i in range(100):
            name = ["checksum:small-cached", "checksum:small-uncached", "checksum:large", "copy:stream"][i % 4]
            size = 50_000_000 if name == "checksum:large" else 1000
            ok = i >= failures
            w.writerow((1000 + i * 0.1, name, name.split(":")[0], mode, int(ok), "" if ok else "NO_SUCH_OBJECT",
                        latency_ms * (10 if name == "checksum:large" else 1), latency_ms / 2, size, int(ok)))
    with (root / "locust_stats_history.csv").open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["Timestamp", "User Count", "Type", "Name"])
        for t in range(11):
            w.writerow([1000 + t, 2 if t else 0, "", "Aggregated"])
    if knative:
        with (root / "replicas.csv").open("w", newline="") as handle:
            w = csv.writer(handle)
            w.writerow(["t", "elapsed", "service", "revision", "ready", "pods", "terminating", "desired", "actual",
                        "error"])
            for t in range(-5, 11):
                up = 1 if t >= 1 else 0
                w.writerow([1000 + t, t + 5, "checksum", "checksum-1", up, up, 0, up, up, ""])
        with (root / "coldstarts.csv").open("w", newline="") as handle:
            w = csv.writer(handle)
            w.writerow(coldstart.CSV_COLUMNS)
            w.writerow(coldstart.ColdStart(990.0, "checksum", "checksum", 60.0, 2.2, 2.3, 200, True).row())
    return root


def test_summary_numbers(tmp_path):
    run = write_run(tmp_path / "a", "functions", 20.0, failures=3)
    s = report.build_summary(run)
    assert s["requests"] == 100 and s["failures"] == 3 and s["validated"] == 97
    assert s["errors_by_code"] == {"NO_SUCH_OBJECT": 3}
    assert s["latency_ms"]["p50"] == 20.0 and s["latency_ms"]["max"] == 200.0
    assert s["by_task"]["checksum:large"]["latency_ms"]["p50"] == 200.0
    # 25 large objects of 50 MB in 9.9 s (+0.2 s for the last response) -> MB/s aggregate
    large_ok = 25 - sum(1 for i in range(3) if i % 4 == 2)
    assert s["large_checksum_MBps"] == pytest.approx(large_ok * 50 / s["duration_s"], rel=1e-2)
    assert s["large_checksum_MBps_per_request_p50"] == 250.0  # 50 MB in 0.2 s
    assert s["users_max"] == 2
    # per stage of the shape (aligned on shape.json's start): 50 requests each
    assert [(st["label"], st["users"], st["requests"], st["failures"]) for st in s["by_stage"]] == [
        ("step 1", 1, 50, 3), ("step 2", 2, 50, 0)]
    assert s["by_stage"][1]["rps"] == 10.0
    assert s["replicas"]["available"] is False and "not measured" in s["replicas"]["note"]
    assert s["cold_starts"]["available"] is False


def test_report_html_is_self_contained_with_plots(tmp_path):
    run = write_run(tmp_path / "a", "functions", 20.0)
    summary = report.write_report(run)
    page = (run / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 4  # throughput, latency, users, tasks (no replicas/cold starts locally)
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "src='http" not in page and "<script" not in page
    assert "not measured" in page  # says that replicas/cold starts are not available locally
    # the manifests' autoscaling annotations are quoted
    assert "<td>checksum</td><td>target</td><td>8</td>" in page
    assert json.loads((run / "summary.json").read_text())["requests"] == summary["requests"] == 100
    assert sorted(p.name for p in (run / "plots").iterdir()) == ["latency.png", "tasks.png", "throughput.png",
                                                                 "users.png"]


def test_knative_runs_get_replica_and_cold_start_figures(tmp_path):
    run = write_run(tmp_path / "k", "functions", 20.0, knative=True)
    summary = report.write_report(run)
    assert "Per stage of the load shape" in (run / "report.html").read_text()
    assert summary["replicas"]["services"]["checksum"] == {"revisions": ["checksum-1"], "max_ready": 1,
                                                           "max_desired": 1, "errors": 0}
    cold = summary["cold_starts"]
    assert cold["available"] and [c["phase"] for c in cold["probes"]] == ["probe"]
    # the load's first checksum request came right after the zero period
    assert [(c["function"], c["phase"]) for c in cold["in_load"]] == [("checksum", "load")]
    assert cold["count"] == 2
    assert {"replicas.png", "coldstarts.png"} <= {p.name for p in (run / "plots").iterdir()}


def test_compare_two_runs(tmp_path):
    a = write_run(tmp_path / "fast", "functions", 10.0)
    b = write_run(tmp_path / "slow", "baseline", 800.0)
    data = compare.write_comparison(a, b, tmp_path / "out", labels=("functions", "fresh-process"))
    p50 = next(r for r in data["overall"] if r["metric"] == "p50 latency (ms)")
    assert (p50["functions"], p50["fresh-process"], p50["ratio"]) == (10.0, 800.0, 0.01)
    small = next(t for t in data["tasks"] if t["task"] == "checksum:small-cached")
    assert small["p50_speedup"] == 80.0
    md = (tmp_path / "out" / "compare.md").read_text()
    assert "| checksum:small-cached |" in md and "80.0x" in md
    assert [(st["stage"], st["p50_speedup"]) for st in data["stages"]] == [("step 1", 80.0), ("step 2", 80.0)]
    assert "| step 1 | 1 | 1 |" in md
    assert (tmp_path / "out" / "plots" / "compare.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (tmp_path / "out" / "compare.html").read_text()


def test_percentile_matches_numpy():
    import numpy

    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0, 50, 95, 99, 100):
        assert report.percentile(values, q) == pytest.approx(numpy.percentile(values, q))
    assert report.percentile([], 50) is None


def test_cpu_per_request_and_per_gib_of_each_function(tmp_path):
    """cpu.json (written by the runner from /proc around the Locust phase)
    becomes CPU-s per request and per GiB of the answers' bytes, per function."""
    from loadtest import cpu as cpu_accounting

    run = write_run(tmp_path / "a", "functions", 20.0, failures=4)
    cpu_accounting.write(run, {"checksum": 3.0, "copy": 0.5, "seaweedfs": 7.0}, wall_s=10.0)
    s = report.build_summary(run)
    checksum = s["cpu"]["functions"]["checksum"]
    # 75 checksum rows, 3 of them failed (rows 0, 1, 2); 24 large of 50 MB ok
    assert checksum["requests"] == 72
    assert checksum["cpu_ms_per_request"] == pytest.approx(3000 / 72, abs=1e-3)
    processed = 24 * 50_000_000 + 48 * 1000
    assert checksum["cpu_s_per_gib"] == pytest.approx(3.0 / (processed / 1024 ** 3), rel=1e-3)
    assert s["cpu"]["functions"]["copy"]["requests"] == 24
    assert s["cpu"]["other_cpu_s"] == {"seaweedfs": 7.0}
    assert any("checksum CPU: 3.0 s" in line for line in report.headline(s))
    assert "CPU ms / request" in report.render_html(s, {})


def test_cpu_not_recorded_says_why(tmp_path):
    local = report.build_summary(write_run(tmp_path / "a", "functions", 20.0))
    assert local["cpu"] == {"available": False, "note": "no CPU recorded for this run"}
    knative = report.build_summary(write_run(tmp_path / "k", "functions", 20.0, knative=True))
    assert knative["cpu"]["available"] is False and "container_cpu_usage_seconds_total" in knative["cpu"]["note"]
