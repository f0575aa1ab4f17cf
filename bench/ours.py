"""Our functions, measured over HTTP exactly as callers use them."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from bench import fixtures
from bench.cpu import CpuMeter
from bench.measure import GB, Figure, Sampler, throughput


class FunctionCaller:
    """POSTs to one function with a keep-alive session; raises on non-200."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()

    def post(self, body: Mapping[str, Any], *, timeout: float = 1800) -> dict[str, Any]:
        response = self.http.post(f"{self.url}/", json=dict(body), timeout=timeout)
        if response.status_code != 200:
            raise RuntimeError(f"{self.url} answered {response.status_code}: {response.text[:300]}")
        return response.json()  # type: ignore[no-any-return]

    def checksum(self, bucket: str, key: str, algorithms: Sequence[str], *, store: str = "default",
                 byte_range: tuple[int, int] | None = None) -> dict[str, str]:
        body: dict[str, Any] = {"store": store, "bucket": bucket, "key": key, "algorithms": list(algorithms)}
        if byte_range is not None:
            body["range"] = list(byte_range)
        return dict(self.post(body)["checksums"])

    def metrics(self) -> str:
        return self.http.get(f"{self.url}/metrics", timeout=10).text


def checksum_sampler(key: str, name: str, caller: FunctionCaller, bucket: str, obj: str, size: int,
                     algorithms: Sequence[str], expected: Mapping[str, str] | None) -> Sampler:
    """GB/s of one checksum request for ``algorithms`` on ``obj``."""
    def check(result: dict[str, str]) -> None:
        if expected is not None:
            wrong = {a: v for a, v in result.items() if a in expected and expected[a] != v}
            if wrong or set(result) != set(algorithms):
                raise RuntimeError(f"{name}: wrong checksums {wrong or result}")

    return throughput(key, name, size, lambda: caller.checksum(bucket, obj, algorithms), check=check)


def fan_out_sampler(state_dir: str, bucket: str, obj: str, size: int, parts: int,
                    expected: Mapping[str, str]) -> Sampler:
    """The client's ``--fan-out``: ``parts`` ranged requests, combined."""
    from dynafed_client import Client
    from dynafed_client.fanout import fanout_checksum
    from dynafed_contract.checksum import ObjectRef

    client = Client.from_stack(state_dir)
    ref = ObjectRef("default", bucket, obj)

    def check(result: Any) -> None:
        if dict(result.checksums) != {"adler32": expected["adler32"]}:
            raise RuntimeError(f"fan-out gave {result.checksums}")

    return throughput(f"fn.fanout{parts}", f"checksum adler32, client fan-out over {parts} ranged requests", size,
                      lambda: fanout_checksum(client, ref, ["adler32"], parts=parts), check=check)


def small_latency(caller: FunctionCaller, bucket: str, obj: str, count: int, expected: str, *,
                  meter: CpuMeter | None = None, service: str = "checksum", blocks: int = 5) -> Figure:
    """Milliseconds per checksum of a small object, sequential keep-alive
    requests; with ``meter``, the CPU milliseconds per request of every
    process group, once per block of ``count / blocks`` requests (the targets
    take the least-disturbed block, as they do the least-disturbed round of
    the references measured in rounds)."""
    caller.checksum(bucket, obj, ["adler32"])  # warm: the S3 client and its pool exist
    figure = Figure("checksum adler32 of 4 KiB over HTTP (loopback, keep-alive)", "ms", cpu_unit="ms/request",
                    service=service)
    load_before = os.getloadavg()[0]

    def one() -> None:
        started = time.perf_counter()
        value = caller.checksum(bucket, obj, ["adler32"])["adler32"]
        figure.runs.append((time.perf_counter() - started) * 1000)
        if value != expected:
            raise RuntimeError(f"got {value}, expected {expected}")

    _in_blocks(figure, meter, count, blocks, one)
    figure.load = [load_before, os.getloadavg()[0]]
    ordered = sorted(figure.runs)
    figure.extra["p90_ms"] = round(ordered[int(0.9 * (len(ordered) - 1))], 3)
    return figure


def _in_blocks(figure: Figure, meter: CpuMeter | None, count: int, blocks: int, request: Any) -> None:
    """``count`` calls of ``request`` in ``blocks`` blocks, CPU ms per request of each block."""
    per_block = max(1, count // max(1, blocks))
    done = 0
    while done < count:
        n = min(per_block, count - done)
        before = meter.snapshot() if meter is not None else None
        for _ in range(n):
            request()
        if before is not None and meter is not None:
            figure.cpu_runs.append({g: s * 1000 / n for g, s in meter.since(before).items()})
        done += n


def serving_floor(caller: FunctionCaller, count: int, *, meter: CpuMeter | None = None,
                  service: str = "checksum", blocks: int = 5) -> Figure:
    """Milliseconds per ``GET /healthz`` (sequential, keep-alive) and, with
    ``meter``, CPU ms per request per block: what serving any request costs
    this process (gunicorn, Flask, the runtime's hooks) before the function
    does anything — the part of a 4 KiB checksum that is not the checksum."""
    caller.http.get(f"{caller.url}/healthz", timeout=10).raise_for_status()
    figure = Figure("GET /healthz over HTTP (the serving floor)", "ms", cpu_unit="ms/request", service=service)

    def one() -> None:
        started = time.perf_counter()
        caller.http.get(f"{caller.url}/healthz", timeout=10).raise_for_status()
        figure.runs.append((time.perf_counter() - started) * 1000)

    _in_blocks(figure, meter, count, blocks, one)
    return figure


# -- copies -------------------------------------------------------------------

def copy_body(source: tuple[str, str, str], destination: tuple[str, str, str]) -> dict[str, Any]:
    return {"source": {"store": source[0], "bucket": source[1], "key": source[2]},
            "destination": {"store": destination[0], "bucket": destination[1], "key": destination[2]},
            "overwrite": True}


def bytes_counters(metrics_text: str) -> dict[str, float]:
    """Every ``*bytes*`` counter series of a Prometheus text page
    (``name_total{label="v",…}`` -> value), parsed by prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.type != "counter" or "bytes" not in family.name:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = float(sample.value)
    return out


def copy_sampler(key: str, name: str, caller: FunctionCaller, source: tuple[str, str, str],
                 destination: tuple[str, str, str], dest_client: Any, size: int, *, unit: str,
                 expected_strategy: str | None) -> Sampler:
    """A copy through the copy function, the destination deleted before (untimed).

    GB/s or seconds; the figure's extra records the strategies the function
    reported and how much its ``*bytes*`` counters moved per copy (a
    server-side copy must move none through the function).
    """
    figure = Figure(name, unit)
    strategies: set[str] = set()
    moved: list[float] = []

    def sample() -> float:
        fixtures.delete_quietly(dest_client, destination[1], destination[2])
        before = bytes_counters(caller.metrics())
        started = time.perf_counter()
        result = caller.post(copy_body(source, destination))
        seconds = time.perf_counter() - started
        after = bytes_counters(caller.metrics())
        fixtures.delete_quietly(dest_client, destination[1], destination[2])
        delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        moved.append(sum(delta.values()))
        strategies.add(str(result.get("strategy")))
        figure.extra["strategy"] = sorted(strategies)
        figure.extra["bytes_counted_by_function_per_copy"] = max(moved)
        figure.extra["last_copy_bytes_by_counter"] = {k: v for k, v in delta.items() if v}
        if expected_strategy and not all(s.startswith(expected_strategy) for s in strategies):
            figure.note = f"strategy {sorted(strategies)}, expected {expected_strategy}*"
        if result.get("status") not in ("completed", "already-present") or int(result.get("bytes", size)) != size:
            raise RuntimeError(f"{name}: unexpected answer {result}")
        return size / seconds / GB if unit == "GB/s" else seconds

    return Sampler(key, figure, sample)


# -- memory ---------------------------------------------------------------------

def peak_rss_during(master_pid: int, work: Callable[[], Any], name: str) -> Figure:
    """Peak RSS (VmHWM) of the gunicorn worker while ``work`` runs, in MiB.

    VmHWM is reset first (clear_refs 5); when that is not permitted the
    worker's RSS is sampled every 20 ms instead.
    """
    workers = fixtures.worker_pids(master_pid)
    if len(workers) != 1:
        raise RuntimeError(f"expected one gunicorn worker under {master_pid}, found {workers}")
    pid = workers[0]
    reset = fixtures.reset_peak_rss(pid)
    peak = [fixtures.status_kib(pid, "VmRSS")]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            with contextlib.suppress(OSError, KeyError):
                peak.append(fixtures.status_kib(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    baseline = peak[0]
    try:
        work()
    finally:
        done.set()
        sampler.join()
    hwm = fixtures.status_kib(pid, "VmHWM") if reset else max(peak)
    figure = Figure(name, "MiB", runs=[hwm / 1024])
    figure.extra = {"rss_before_mib": round(baseline / 1024, 1), "vmhwm_reset": reset,
                    "sampled_peak_mib": round(max(peak) / 1024, 1),
                    "master_rss_mib": round(fixtures.status_kib(master_pid, "VmRSS") / 1024, 1)}
    return figure


def idle_rss(master_pid: int, name: str) -> Figure:
    """RSS of an idle function service (gunicorn master + workers), in MiB:
    the baseline that a pod's memory holds before any request."""
    workers = fixtures.worker_pids(master_pid)
    worker = sum(fixtures.status_kib(pid, "VmRSS") for pid in workers) / 1024
    master = fixtures.status_kib(master_pid, "VmRSS") / 1024
    return Figure(name, "MiB", runs=[worker + master],
                  extra={"worker_mib": round(worker, 1), "master_mib": round(master, 1), "workers": len(workers)})


# -- cold start -------------------------------------------------------------------

def cold_start(repo: Path, stores_file: Path, function: str, body: Mapping[str, Any], runs: int,
               log: Path) -> Figure:
    """Seconds from exec of the function's container command (its gunicorn
    line, its env) to its first successful response to ``body``."""
    from dynafed_client.stack import services

    figure = Figure(f"cold start: exec of the {function} gunicorn command to first 200", "s")
    listening: list[float] = []
    for _ in range(runs):
        port = fixtures.free_port()
        env = services.function_env(function, port=port, stores_file=stores_file, sink=None)
        env["XDG_RUNTIME_DIR"] = str(log.parent)
        http = requests.Session()
        started = time.perf_counter()
        proc = fixtures.spawn(services.function_command(function, repo), env, repo, log)
        first_connect = None
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{function} exited with {proc.returncode} (see {log})")
                try:
                    response = http.post(f"http://127.0.0.1:{port}/", json=dict(body), timeout=30)
                except requests.ConnectionError:
                    if time.perf_counter() - started > 60:
                        raise RuntimeError("no answer within 60 s") from None
                    time.sleep(0.005)
                    continue
                if first_connect is None:
                    first_connect = time.perf_counter() - started
                if response.status_code == 200:
                    figure.runs.append(time.perf_counter() - started)
                    break
                time.sleep(0.005)
        finally:
            fixtures.stop(proc)
            http.close()
        if first_connect is not None:
            listening.append(first_connect)
    figure.extra["first_accepted_connection_s"] = [round(x, 4) for x in listening]
    return figure


def import_profile(repo: Path, stores_file: Path, function: str, top: int = 12) -> dict[str, Any]:
    """``python -X importtime`` of the WSGI module: the slowest imports
    (cumulative, top-level packages), the total, and what the first request
    still has to import (boto3)."""
    env = {**os.environ, "DYNAFED_FN_STORES_FILE": str(stores_file)}
    env = {k: v for k, v in env.items() if not k.startswith("K_")}

    def profile(code: str) -> list[tuple[str, int, int]]:
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, cwd=repo,
                             capture_output=True, text=True, timeout=120, check=True)
        rows = []
        for line in out.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[0].startswith("import time:") and parts[1].strip().isdigit():
                name = parts[2].rstrip()
                depth = (len(name) - len(name.lstrip())) // 2
                rows.append((name.strip(), int(parts[1]), depth))
        return rows

    rows = profile(f"import functions.{function}.wsgi")
    total_us = sum(c for _, c, d in rows if d == 0)
    wsgi_us = next((c for n, c, _ in rows if n == f"functions.{function}.wsgi"), 0)
    top_level = sorted(((n, c) for n, c, d in rows if d == 0), key=lambda r: -r[1])[:top]
    nested = sorted(((n, c) for n, c, _ in rows), key=lambda r: -r[1])[:top]
    heavy_loaded = sorted({n.split(".")[0] for n, _, _ in rows} & {"boto3", "botocore", "s3transfer", "urllib3",
                                                                  "requests", "cloudevents"})
    boto_rows = profile("import boto3")
    return {
        "wsgi_import_ms": round(wsgi_us / 1000, 1),
        "all_imports_ms": round(total_us / 1000, 1),
        "slowest_top_level_ms": [(n, round(c / 1000, 1)) for n, c in top_level],
        "slowest_cumulative_ms": [(n, round(c / 1000, 1)) for n, c in nested],
        "heavy_packages_imported_at_start": heavy_loaded,
        "boto3_import_ms_paid_by_first_request": round(sum(c for _, c, d in boto_rows if d == 0) / 1000, 1),
    }
