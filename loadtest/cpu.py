"""CPU seconds each function spent during a load phase, per request and per
GiB it processed: what a Knative operator pays for.

Local target only: the runner reads the CPU-time clock of every process of each
function's gunicorn (master and workers: ``bench.cpu``) and of the S3 server
before and after the Locust phase and writes ``cpu.json``. On Knative the
pods' CPU is the cluster's to report (``container_cpu_usage_seconds_total``,
``kubectl top``); the report says so instead of guessing.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FILE = "cpu.json"
GiB = 1024 ** 3


def write(run_dir: Path, seconds: Mapping[str, float], *, wall_s: float) -> None:
    """Record the CPU seconds by process group of one phase."""
    (Path(run_dir) / FILE).write_text(json.dumps({"cpu_seconds": dict(seconds), "wall_s": round(wall_s, 3),
                                                  "source": "process CPU-time clocks (bench.cpu), process "
                                                            "trees of the local stack"}, indent=1) + "\n")


def summarize(run_dir: Path, rows: Sequence[Mapping[str, Any]], target_kind: str | None) -> dict[str, Any]:
    """Per function: CPU seconds, successful requests, CPU-s per request, GiB
    it processed (answers' bytes) and CPU-s per GiB; plus the other groups
    (the S3 server) as CPU seconds only."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        note = ("per-pod CPU on Knative is the cluster's metric (container_cpu_usage_seconds_total)"
                if target_kind == "knative" else "no CPU recorded for this run")
        return {"available": False, "note": note}
    data = json.loads(path.read_text())
    seconds: Mapping[str, float] = data.get("cpu_seconds") or {}
    functions: dict[str, Any] = {}
    for function in sorted({str(r["function"]) for r in rows if r.get("function")}):
        mine = [r for r in rows if r.get("function") == function and r.get("ok")]
        cpu = seconds.get(function)
        processed = sum(int(r.get("bytes") or 0) for r in mine)
        functions[function] = {
            "cpu_s": None if cpu is None else round(cpu, 3),
            "requests": len(mine),
            "cpu_ms_per_request": round(cpu * 1000 / len(mine), 3) if cpu is not None and mine else None,
            "gib": round(processed / GiB, 4),
            "cpu_s_per_gib": round(cpu / (processed / GiB), 4) if cpu is not None and processed else None,
        }
    others = {k: round(v, 3) for k, v in seconds.items() if k not in functions}
    return {"available": True, "functions": functions, "other_cpu_s": others, "wall_s": data.get("wall_s"),
            "source": data.get("source")}
