"""A few seconds of the real workload against the real local stack, through
the runner as `make loadtest` drives it: seed, Locust headless, fresh-process
baseline, report, comparison. Asserts what was produced and that the numbers
are sane; performance itself is for `make loadtest`, not for tests."""
from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest

from loadtest.config import TASKS, load_scenario
from loadtest.runner import RunOptions, run


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)]


@pytest.fixture(scope="module")
def smoke_run(stack, tmp_path_factory) -> Path:
    scenario = load_scenario("smoke", ["shape.hold=4s", "baseline.max_users=1"])
    lines: list[str] = []
    results = run(RunOptions(scenario=scenario, results_root=tmp_path_factory.mktemp("results"), label="smoke",
                             state_dir=stack.state_dir, baseline=True, grace=60), out=lines.append)
    assert lines[-1] == f"results: {results}"
    return results


def test_results_directory_holds_csvs_summary_and_report(smoke_run):
    for name in ("run.json", "objects.json", "meta.json", "shape.json", "requests.csv", "locust_stats.csv",
                 "locust_stats_history.csv", "locust_failures.csv", "summary.json", "report.html"):
        assert (smoke_run / name).is_file(), name
    assert not (smoke_run / "replicas.csv").exists()  # no Kubernetes locally
    page = (smoke_run / "report.html").read_text()
    pngs = embedded_pngs(page)
    assert len(pngs) >= 4 and all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    assert "replicas and cold starts are not measured" in page


def test_numbers_are_sane_and_every_answer_was_validated(smoke_run):
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert summary["target"] == "local" and summary["mode"] == "functions"
    assert summary["requests"] > 0
    assert summary["failures"] == 0, summary["errors_by_code"]
    # checksum validation actually ran: every successful answer was compared with the manifest
    assert summary["validated"] == summary["requests"]
    assert set(summary["by_task"]) == set(TASKS.values())
    assert summary["by_task"]["checksum:large"]["bytes"] > 0
    assert summary["throughput_rps"] > 0 and summary["latency_ms"]["p95"] > 0
    assert summary["replicas"]["available"] is False and summary["cold_starts"]["available"] is False
    # the shape's start was recorded, so requests are attributed to its stages
    assert [st["label"] for st in summary["by_stage"]] == ["plateau"]
    assert summary["by_stage"][0]["requests"] == summary["requests"]
    # Locust's own CSV saw the same requests
    with (smoke_run / "locust_stats.csv").open() as handle:
        aggregated = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    assert int(aggregated["Request Count"]) == summary["requests"]
    assert int(aggregated["Failure Count"]) == 0
    # the settings in force and the manifests' autoscaling annotations are recorded
    services = summary["settings"]["manifests"]["services"]
    assert services["checksum"]["annotations"]["autoscaling.knative.dev/metric"] == "concurrency"
    # CPU per function, from /proc of the stack's gunicorn process trees around the Locust phase
    cpu = summary["cpu"]
    assert cpu["available"] is True, cpu
    checksum = cpu["functions"]["checksum"]
    assert checksum["requests"] == sum(st["requests"] for t, st in summary["by_task"].items()
                                       if t.startswith("checksum:"))
    assert checksum["cpu_s"] > 0 and checksum["cpu_ms_per_request"] > 0 and checksum["cpu_s_per_gib"] > 0
    assert cpu["other_cpu_s"].get("seaweedfs", 0) > 0


def test_baseline_ran_the_same_tasks_and_was_compared(smoke_run):
    base = json.loads((smoke_run / "baseline" / "summary.json").read_text())
    assert base["mode"] == "baseline" and base["requests"] > 0
    assert base["failures"] == 0, base["errors_by_code"]
    assert base["validated"] == base["requests"]
    assert (smoke_run / "compare.md").is_file() and (smoke_run / "compare.html").is_file()
    data = json.loads((smoke_run / "compare.json").read_text())
    assert data["labels"] == ["functions", "fresh-process"]
    assert "Functions vs fresh-process baseline" in (smoke_run / "report.html").read_text()


def test_copies_were_cleaned_up(smoke_run, stack):
    run_id = smoke_run.name
    scenario = load_scenario("smoke")
    for store, bucket in (("default", "demo-copy"), ("archive", "archive")):
        listing = stack.s3_client(store).list_objects_v2(Bucket=bucket,
                                                         Prefix=f"{scenario.objects.prefix}/copies/{run_id}/")
        assert listing.get("KeyCount", 0) == 0
