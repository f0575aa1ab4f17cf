"""summary.json and a self-contained report.html for one results directory.

Numbers come from ``requests.csv`` (one row per request: exact
percentiles, bytes/s, error codes, validation counts), Locust's
``locust_stats_history.csv`` (users over time), ``replicas.csv`` and
``coldstarts.csv`` (Knative), ``meta.json`` (what ran, settings in force).

Figures (matplotlib, PNG, embedded base64 in the HTML and also written to
``plots/``):

    throughput.png   completed requests/s per task (5 s moving average)
    latency.png      p50 / p95 / p99 response time over time (5 s windows)
    users.png        Locust users over time, planned vs actual
    replicas.png     ready and desired replicas per revision, users shaded (Knative)
    coldstarts.png   time to first byte of requests after zero replicas (Knative)
    tasks.png        response-time distribution per task (box plot)
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtest import coldstart
from loadtest import cpu as cpu_accounting
from loadtest.config import TASKS
from loadtest.requestlog import read_rows
from loadtest.validation import WRONG_ANSWER

PERCENTILES = (50, 95, 99)
SHED = "TOO_MANY_REQUESTS"
SMALL_CHECKSUMS = (TASKS["checksum_small_cached"], TASKS["checksum_small_uncached"])
LARGE_CHECKSUM = TASKS["checksum_large"]
LOCAL_NOTE = ("local stack: one always-warm gunicorn per function and no autoscaler, so replicas and cold "
              "starts are not measured (run against Knative for those)")


# -- statistics -------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def latency_stats(ms: Sequence[float]) -> dict[str, float | None]:
    return {"p50": _round(percentile(ms, 50)), "p95": _round(percentile(ms, 95)),
            "p99": _round(percentile(ms, 99)), "mean": _round(sum(ms) / len(ms)) if ms else None,
            "max": _round(max(ms)) if ms else None}


def load_window(rows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(first request start, last request end) in epoch seconds."""
    if not rows:
        return 0.0, 0.0
    return min(r["start"] for r in rows), max(r["start"] + r["response_ms"] / 1000 for r in rows)


def task_stats(rows: Sequence[Mapping[str, Any]], duration: float) -> dict[str, Any]:
    ok = [r for r in rows if r["ok"]]
    stats: dict[str, Any] = {
        "requests": len(rows),
        "failures": len(rows) - len(ok),
        "validated": sum(1 for r in rows if r["validated"]),
        "rps": _round(len(ok) / duration, 3) if duration > 0 else None,
        "latency_ms": latency_stats([r["response_ms"] for r in ok]),
        "ttfb_ms": latency_stats([r["ttfb_ms"] for r in ok if r["ttfb_ms"] is not None]),
    }
    moved = sum(r["bytes"] for r in ok)
    if moved:
        per_request = [r["bytes"] / (r["response_ms"] / 1000) / 1e6 for r in ok if r["response_ms"] > 0]
        stats["bytes"] = moved
        stats["MBps"] = _round(moved / duration / 1e6, 2) if duration > 0 else None
        stats["MBps_per_request_p50"] = _round(percentile(per_request, 50), 2)
    return stats


def stage_stats(rows: Sequence[Mapping[str, Any]], stages: Sequence[Mapping[str, Any]],
                shape_t0: float) -> list[dict[str, Any]]:
    """Per stage of the shape: requests that started during it, req/s, latency.
    Compares runs at equal user counts (e.g. the baseline's first step)."""
    out, offset = [], 0.0
    for i, stage in enumerate(stages):
        begin, end = shape_t0 + offset, shape_t0 + offset + stage["duration"]
        # Locust ticks the shape once a second: requests started in the second
        # after the nominal end still belong to the last stage
        if i == len(stages) - 1:
            end = math.inf
        mine = [r for r in rows if begin <= r["start"] < end]
        ok = [r["response_ms"] for r in mine if r["ok"]]
        out.append({"label": stage.get("label") or "", "users": stage["users"], "start_s": offset,
                    "duration_s": stage["duration"], "requests": len(mine), "failures": len(mine) - len(ok),
                    "rps": _round(len(ok) / stage["duration"], 3) if stage["duration"] else None,
                    "latency_ms": latency_stats(ok)})
        offset += stage["duration"]
    return out


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def read_replicas(path: Path) -> list[dict[str, Any]]:
    return [{"t": float(r["t"]), "elapsed": float(r["elapsed"]), "service": r["service"],
             "revision": r["revision"], "ready": _num(r["ready"]), "pods": _num(r["pods"]),
             "desired": _num(r["desired"]), "actual": _num(r["actual"]), "error": r["error"]}
            for r in _read_csv(path)]


def read_coldstarts(path: Path) -> list[dict[str, Any]]:
    return [{"t": float(r["t"]), "function": r["function"], "service": r["service"],
             "waited_for_zero_s": _num(r["waited_for_zero_s"]), "ttfb_s": _num(r["ttfb_s"]),
             "total_s": _num(r["total_s"]), "status": int(r["status"] or 0), "ok": r["ok"] == "1",
             "phase": r["phase"]} for r in _read_csv(path)]


def read_users(path: Path) -> list[tuple[float, int]]:
    """(epoch, users) from Locust's stats history (Aggregated rows)."""
    out = []
    for row in _read_csv(path):
        if row.get("Name") == "Aggregated":
            try:
                out.append((float(row["Timestamp"]), int(float(row["User Count"]))))
            except (KeyError, ValueError):
                continue
    return out


def build_summary(run_dir: Path) -> dict[str, Any]:
    """Everything summary.json holds, computed from the files of ``run_dir``."""
    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    rows = read_rows(run_dir / "requests.csv") if (run_dir / "requests.csv").is_file() else []
    start, end = load_window(rows)
    duration = end - start
    ok = [r for r in rows if r["ok"]]
    by_name: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_name[r["name"]].append(r)
    small = [r for r in ok if r["name"] in SMALL_CHECKSUMS]
    large = [r for r in ok if r["name"] == LARGE_CHECKSUM]
    errors = Counter(r["code"] or "UNKNOWN" for r in rows if not r["ok"])
    target = meta.get("target", {})
    kind = target.get("kind")
    shape = _read_json(run_dir / "shape.json") or {}
    stages = shape.get("stages") or meta.get("stages") or []
    summary: dict[str, Any] = {
        "run_id": meta.get("run_id"),
        "mode": meta.get("mode"),
        "target": kind,
        "scenario": meta.get("scenario_name"),
        "scenario_source": meta.get("scenario_source"),
        "started": meta.get("started"),
        "ended": meta.get("ended"),
        "duration_s": _round(duration, 2),
        "requests": len(rows),
        "failures": len(rows) - len(ok),
        "validated": sum(1 for r in rows if r["validated"]),
        "validation_failures": errors.get(WRONG_ANSWER, 0),
        # 429 = the function shed load beyond its in-flight limit; the users retried after Retry-After
        "shed_429": errors.get(SHED, 0),
        "throughput_rps": _round(len(ok) / duration, 3) if duration > 0 else None,
        "latency_ms": latency_stats([r["response_ms"] for r in ok]),
        "errors_by_code": dict(errors.most_common()),
        "small_checksums_per_s": _round(len(small) / duration, 3) if duration > 0 else None,
        "small_checksum_latency_ms": latency_stats([r["response_ms"] for r in small]),
        "large_checksum_MBps": _round(sum(r["bytes"] for r in large) / duration / 1e6, 2)
        if duration > 0 and large else None,
        "large_checksum_MBps_per_request_p50": _round(percentile(
            [r["bytes"] / (r["response_ms"] / 1000) / 1e6 for r in large if r["response_ms"] > 0], 50), 2),
        "by_task": {name: task_stats(by_name[name], duration) for name in sorted(by_name)},
        "users_max": max((u for _, u in read_users(run_dir / "locust_stats_history.csv")), default=0),
        "stages": stages,
        "shape_started": shape.get("started"),
        "by_stage": stage_stats(rows, stages, shape["started"]) if shape.get("started") else [],
        "settings": meta.get("settings"),
        "locust": _locust_totals(run_dir / "locust_stats.csv", meta),
        "seed": meta.get("seed"),
        "host": meta.get("host"),
    }
    if meta.get("baseline_skipped"):
        summary["baseline_skipped"] = meta["baseline_skipped"]
    summary["cpu"] = cpu_accounting.summarize(run_dir, rows, kind)
    summary["replicas"] = _replica_summary(run_dir, kind, meta)
    summary["cold_starts"] = _cold_summary(run_dir, kind, rows, target)
    return summary


def _locust_totals(path: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    totals: dict[str, Any] = {"exit_code": meta.get("locust_exit_code"), "timed_out": meta.get("locust_timed_out")}
    for row in _read_csv(path):
        if row.get("Name") == "Aggregated":
            totals.update({"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                           "rps": _round(_num(row["Requests/s"]), 3)})
    return totals


def _replica_summary(run_dir: Path, kind: str | None, meta: Mapping[str, Any]) -> dict[str, Any]:
    samples = read_replicas(run_dir / "replicas.csv")
    if not samples:
        note = LOCAL_NOTE if kind == "local" else "no replica samples"
        return {"available": False, "note": note}
    per_service: dict[str, dict[str, Any]] = {}
    for service in sorted({s["service"] for s in samples}):
        mine = [s for s in samples if s["service"] == service and not s["error"]]
        ready_by_t: dict[float, float] = defaultdict(float)
        for s in mine:
            ready_by_t[s["t"]] += s["ready"] or 0
        per_service[service] = {
            "revisions": sorted({s["revision"] for s in mine if s["revision"]}),
            "max_ready": int(max(ready_by_t.values(), default=0)),
            "max_desired": int(max((s["desired"] or 0 for s in mine), default=0)),
            "errors": sum(1 for s in samples if s["service"] == service and s["error"]),
        }
    return {"available": True, "samples": len(samples), "services": per_service,
            "sampler": meta.get("sampler")}


def _cold_summary(run_dir: Path, kind: str | None, rows: Sequence[Mapping[str, Any]],
                  target: Mapping[str, Any]) -> dict[str, Any]:
    if kind != "knative":
        return {"available": False, "note": LOCAL_NOTE}
    probes = read_coldstarts(run_dir / "coldstarts.csv")
    services = (target.get("knative") or {}).get("services") or {}
    replicas = read_replicas(run_dir / "replicas.csv")
    in_load = [c.__dict__ for c in coldstart.cold_starts_in_load(list(rows), list(replicas), services)]
    every = [c for c in probes + in_load if c["ttfb_s"] is not None]
    ttfb = [c["ttfb_s"] for c in every]
    return {"available": True, "probes": probes, "in_load": in_load, "count": len(every),
            "ttfb_s": {"p50": _round(percentile(ttfb, 50), 3), "max": _round(max(ttfb), 3) if ttfb else None,
                       "min": _round(min(ttfb), 3) if ttfb else None},
            "failed_probes": sum(1 for c in probes if not c["ok"])}


def headline(summary: Mapping[str, Any]) -> list[str]:
    """A few lines for the terminal."""
    lat = summary.get("latency_ms") or {}
    shed = summary.get("shed_429") or 0
    failed = f"{summary.get('failures')} failed" + (f" ({shed} shed with 429 and retried)" if shed else "")
    lines = [f"[{summary.get('mode')}] {summary.get('requests')} requests in {summary.get('duration_s')} s, "
             f"{failed}, {summary.get('validated')} answers validated; "
             f"{summary.get('throughput_rps')} req/s, p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, "
             f"p99 {lat.get('p99')} ms"]
    small = summary.get("small_checksum_latency_ms") or {}
    lines.append(f"  small-object checksums: {summary.get('small_checksums_per_s')}/s (p95 {small.get('p95')} ms); "
                 f"large-object checksums: {summary.get('large_checksum_MBps')} MB/s aggregate, "
                 f"{summary.get('large_checksum_MBps_per_request_p50')} MB/s per request (median)")
    for function, c in ((summary.get("cpu") or {}).get("functions") or {}).items():
        lines.append(f"  {function} CPU: {c['cpu_s']} s, {c['cpu_ms_per_request']} ms per request, "
                     f"{c['cpu_s_per_gib']} s per GiB")
    if summary.get("errors_by_code"):
        lines.append("  errors: " + ", ".join(f"{k} x{v}" for k, v in summary["errors_by_code"].items()))
    cold = summary.get("cold_starts") or {}
    if cold.get("available"):
        lines.append(f"  cold starts: {cold.get('count')} measured, time to first byte p50 "
                     f"{cold['ttfb_s'].get('p50')} s, max {cold['ttfb_s'].get('max')} s")
    return lines


# -- figures ---------------------------------------------------------------------------------------

def _figure(width: float = 9.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def _stage_marks(ax: Any, stages: Sequence[Mapping[str, Any]] | None) -> None:
    t = 0.0
    for stage in stages or []:
        if t > 0:
            ax.axvline(t, color="0.8", linewidth=0.8, zorder=0)
        t += stage["duration"]


def plot_throughput(rows: Sequence[Mapping[str, Any]], t0: float, stages: Any = None) -> bytes | None:
    if not rows:
        return None
    def second(r: Mapping[str, Any]) -> int:
        return max(0, int(r["start"] + r["response_ms"] / 1000 - t0))

    end = max(second(r) for r in rows) + 1
    fig, ax = _figure()
    names = sorted({r["name"] for r in rows})
    for name in names:
        counts = [0.0] * end
        for r in rows:
            if r["name"] == name and r["ok"]:
                counts[second(r)] += 1
        ax.plot(range(end), _moving_average(counts, 5), label=name, linewidth=1.4)
    failures = [0.0] * end
    for r in rows:
        if not r["ok"]:
            failures[second(r)] += 1
    if any(failures):
        ax.plot(range(end), _moving_average(failures, 5), label="failures", color="red", linestyle=":")
    _stage_marks(ax, stages)
    ax.set(xlabel="seconds since start", ylabel="completed requests/s", title="Throughput per task (5 s average)")
    ax.legend(fontsize=8, ncols=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_latency(rows: Sequence[Mapping[str, Any]], t0: float, stages: Any = None, window: int = 5) -> bytes | None:
    ok = [r for r in rows if r["ok"]]
    if not ok:
        return None
    bins: dict[int, list[float]] = defaultdict(list)
    for r in ok:
        bins[int((r["start"] + r["response_ms"] / 1000 - t0) // window)].append(r["response_ms"])
    keys = sorted(bins)
    xs = [k * window + window / 2 for k in keys]
    fig, ax = _figure()
    for q, style in zip(PERCENTILES, ("-", "--", ":"), strict=True):
        ax.plot(xs, [percentile(bins[k], q) for k in keys], linestyle=style, label=f"p{q}", linewidth=1.5)
    _stage_marks(ax, stages)
    ax.set_yscale("log")
    ax.set(xlabel="seconds since start", ylabel="response time (ms, log)",
           title=f"Latency percentiles, all tasks ({window} s windows)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def plot_users(users: Sequence[tuple[float, int]], t0: float, stages: Sequence[Mapping[str, Any]] | None,
               load_t0: float | None = None) -> bytes | None:
    if not users and not stages:
        return None
    fig, ax = _figure(height=2.8)
    if stages:
        xs, ys, t = [], [], 0.0
        offset = (load_t0 - t0) if load_t0 else 0.0
        for stage in stages:
            xs += [t + offset, t + offset + stage["duration"]]
            ys += [stage["users"], stage["users"]]
            t += stage["duration"]
        ax.plot(xs, ys, color="0.5", linestyle="--", label="planned (shape)")
    if users:
        ax.step([t - t0 for t, _ in users], [u for _, u in users], where="post", label="running", linewidth=1.5)
    _stage_marks(ax, stages)
    ax.set(xlabel="seconds since start", ylabel="users", title="Locust users over time")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_replicas(samples: Sequence[Mapping[str, Any]], t0: float,
                  users: Sequence[tuple[float, int]] = ()) -> bytes | None:
    good = [s for s in samples if not s["error"]]
    if not good:
        return None
    fig, ax = _figure()
    if users:
        # the load, faintly behind: does the autoscaler follow it?
        twin = ax.twinx()
        twin.fill_between([t - t0 for t, _ in users], [u for _, u in users], step="post", color="0.9", zorder=0)
        twin.set_ylabel("users (shaded)", color="0.5")
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
    for (service, revision) in sorted({(s["service"], s["revision"]) for s in good}):
        mine = [s for s in good if s["service"] == service and s["revision"] == revision]
        xs = [s["t"] - t0 for s in mine]
        line = ax.step(xs, [s["ready"] for s in mine], where="post", label=f"{revision} ready", linewidth=1.5)
        ax.step(xs, [s["desired"] if s["desired"] is not None else math.nan for s in mine], where="post",
                linestyle="--", color=line[0].get_color(), label=f"{revision} desired", linewidth=1)
    errors = [s["t"] - t0 for s in samples if s["error"]]
    if errors:
        ax.plot(errors, [0] * len(errors), "rx", label="API error")
    ax.set(xlabel="seconds since start", ylabel="replicas", title="Replicas per revision: ready vs desired")
    ax.legend(fontsize=8, ncols=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_coldstarts(cold: Sequence[Mapping[str, Any]]) -> bytes | None:
    points = [c for c in cold if c.get("ttfb_s") is not None]
    if not points:
        return None
    fig, ax = _figure(height=3.0)
    groups = sorted({(c["function"], c["phase"]) for c in points})
    for i, (function, phase) in enumerate(groups):
        ys = [c["ttfb_s"] for c in points if c["function"] == function and c["phase"] == phase]
        ax.scatter(ys, [i] * len(ys), s=40, alpha=0.7)
        if ys:
            ax.plot([percentile(ys, 50)] * 2, [i - 0.3, i + 0.3], color="black", linewidth=2)
    ax.set_yticks(range(len(groups)), [f"{f} ({p})" for f, p in groups])
    ax.set(xlabel="time to first byte after zero replicas (s)", title="Cold starts (bar: median)")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def plot_tasks(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    ok = [r for r in rows if r["ok"]]
    names = sorted({r["name"] for r in ok})
    if not names:
        return None
    fig, ax = _figure(height=0.5 * len(names) + 1.4)
    data = [[r["response_ms"] for r in ok if r["name"] == n] for n in names]
    ax.boxplot(data, orientation="horizontal", tick_labels=names, whis=(1, 99), showfliers=False)
    ax.set_xscale("log")
    ax.set(xlabel="response time (ms, log; whiskers p1-p99)", title="Response time per task")
    ax.grid(alpha=0.3, axis="x", which="both")
    return _png(fig)


def make_figures(run_dir: Path, summary: Mapping[str, Any]) -> dict[str, bytes]:
    """name -> PNG bytes of every figure that has data."""
    rows = read_rows(run_dir / "requests.csv") if (run_dir / "requests.csv").is_file() else []
    replicas = read_replicas(run_dir / "replicas.csv")
    users = read_users(run_dir / "locust_stats_history.csv")
    stages = summary.get("stages")
    shape_t0 = summary.get("shape_started")
    if shape_t0 is not None:
        # time 0 = the load shape's start, so stage boundaries line up (replica
        # samples and cold-start probes before it have negative times)
        t0, marks = float(shape_t0), stages
    else:
        starts = [r["start"] for r in rows] + [t for t, _ in users] + [s["t"] for s in replicas]
        t0, marks = (min(starts) if starts else 0.0), None
    cold = summary.get("cold_starts") or {}
    figures = {
        "throughput": plot_throughput(rows, t0, marks),
        "latency": plot_latency(rows, t0, marks),
        "users": plot_users(users, t0, stages, shape_t0 if shape_t0 is not None else (users[0][0] if users else None)),
        "replicas": plot_replicas(replicas, t0, users),
        "coldstarts": plot_coldstarts([*cold.get("probes", []), *cold.get("in_load", [])]),
        "tasks": plot_tasks(rows),
    }
    return {name: png for name, png in figures.items() if png is not None}


# -- HTML ----------------------------------------------------------------------------------------------

FIGURE_TEXT = {
    "throughput": ("Throughput", "Completed requests per second for each task (5 s moving average); "
                   "failures, if any, dotted red. Flat lines while users step up mean the functions are "
                   "saturated (locally: one process per function; on Knative: until the autoscaler adds pods)."),
    "latency": ("Latency over time", "Response-time percentiles over all tasks in 5 s windows (log scale). "
                "p95/p99 jumps right after a step or spike are queueing while capacity catches up; on "
                "Knative a spike after zero shows the cold start here."),
    "users": ("Users", "Simulated users (each runs tasks back to back with the scenario's think time): the "
              "shape's plan (dashed) and what Locust ran."),
    "replicas": ("Replicas", "Ready pods (solid) and the autoscaler's desired scale (dashed) per revision, "
                 "sampled every second from the Kubernetes API, with the users shaded behind. The gap "
                 "between desired and ready is pods starting; the tail shows scale-down and scale to zero."),
    "coldstarts": ("Cold starts", "Time to first byte of a request sent when the Service had zero pods: "
                   "probes (sent by the runner after waiting for zero) and the first request of the load "
                   "after a zero period. Includes scheduling, image start, imports and readiness."),
    "tasks": ("Response time per task", "Distribution of response times per task (box: quartiles, line: "
              "median, whiskers: p1-p99). Cache hits should sit far left of misses; large checksums and "
              "streamed copies are bound by bytes."),
}


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def task_table(summary: Mapping[str, Any]) -> str:
    rows = []
    for name, st in (summary.get("by_task") or {}).items():
        lat = st["latency_ms"]
        rows.append((name, st["requests"], st["failures"], st["validated"], st["rps"], lat["p50"], lat["p95"],
                     lat["p99"], st.get("MBps", "")))
    return _table(("task", "requests", "failures", "validated", "req/s", "p50 ms", "p95 ms", "p99 ms",
                   "MB/s"), rows)


def cpu_html(cpu: Mapping[str, Any]) -> str:
    """CPU seconds per request and per GiB of each function (or why not measured)."""
    if not cpu.get("available"):
        return f"<p>{html.escape(str(cpu.get('note', 'not measured')))}</p>"
    rows = [(f, c["cpu_s"], c["requests"], c["cpu_ms_per_request"], c["gib"], c["cpu_s_per_gib"])
            for f, c in cpu["functions"].items()]
    others = ", ".join(f"{k} {v} s" for k, v in (cpu.get("other_cpu_s") or {}).items())
    return (_table(("function", "CPU s", "requests (ok)", "CPU ms / request", "GiB processed", "CPU s / GiB"), rows)
            + f"<p>Other processes during the {cpu.get('wall_s')} s phase: {html.escape(others or 'none')}. "
              f"Source: {html.escape(str(cpu.get('source')))}.</p>")


def _settings_html(settings_: Mapping[str, Any] | None) -> str:
    if not settings_:
        return "<p>not recorded</p>"
    parts = [f"<p>{html.escape(str(settings_.get('source', '')))}"
             + (f" &mdash; {html.escape(settings_['note'])}" if settings_.get("note") else "") + "</p>"]
    for title, block in (("in force", settings_), ("live Knative Services", {"services": settings_.get("live")}),
                         ("repository manifests", settings_.get("manifests"))):
        services = (block or {}).get("services") or {}
        if not services:
            continue
        rows = []
        for name, s in services.items():
            flat = {**(s.get("annotations") or {}), **{f"env {k}": v for k, v in (s.get("env") or {}).items()}}
            for key in ("containerConcurrency", "timeoutSeconds", "replicas", "error"):
                if s.get(key) is not None:
                    flat[key] = s[key]
            rows += [(name, k.removeprefix("autoscaling.knative.dev/"), v) for k, v in flat.items()]
        source = ""
        if block and block.get("source") and block is not settings_:
            source = f" ({html.escape(str(block['source']))})"
        parts.append(f"<h3>{title}{source}</h3>" + _table(("service", "setting", "value"), rows))
    return "".join(parts)


CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.note{background:#fff8e0;border-left:4px solid #e0b000;padding:.5em 1em}.bad{color:#b00}figcaption{color:#555;
font-size:.9em;margin-bottom:2em}code{background:#f3f3f3;padding:0 .2em}"""


def render_html(summary: Mapping[str, Any], figures: Mapping[str, bytes], comparison_html: str | None = None) -> str:
    lat = summary.get("latency_ms") or {}
    small = summary.get("small_checksum_latency_ms") or {}
    title = f"Load test {summary.get('run_id')} ({summary.get('mode')}, {summary.get('target')})"
    headline_rows = [
        ("scenario", f"{summary.get('scenario')} ({summary.get('scenario_source')})"),
        ("load duration", f"{summary.get('duration_s')} s, up to {summary.get('users_max')} users"),
        ("requests / failures", f"{summary.get('requests')} / {summary.get('failures')}"
                                + (f" (of which {summary['shed_429']} shed with 429 TOO_MANY_REQUESTS: the function "
                                   "was at its in-flight limit; retried after Retry-After)"
                                   if summary.get("shed_429") else "")),
        ("answers validated (checksums compared)", summary.get("validated")),
        ("wrong answers", summary.get("validation_failures")),
        ("throughput", f"{summary.get('throughput_rps')} req/s"),
        ("latency p50 / p95 / p99", f"{lat.get('p50')} / {lat.get('p95')} / {lat.get('p99')} ms"),
        ("small-object checksums", f"{summary.get('small_checksums_per_s')} /s, p95 {small.get('p95')} ms"),
        ("large-object checksums", f"{summary.get('large_checksum_MBps')} MB/s aggregate, "
                                   f"{summary.get('large_checksum_MBps_per_request_p50')} MB/s per request (median)"),
    ]
    cold = summary.get("cold_starts") or {}
    if cold.get("available"):
        headline_rows.append(("cold starts (TTFB)", f"{cold.get('count')} measured, p50 "
                              f"{cold['ttfb_s'].get('p50')} s, max {cold['ttfb_s'].get('max')} s"))
    notes = []
    if not (summary.get("replicas") or {}).get("available"):
        notes.append((summary.get("replicas") or {}).get("note", ""))
    if summary.get("baseline_skipped") and summary.get("baseline_skipped") != "disabled":
        notes.append(f"fresh-process baseline not run: {summary['baseline_skipped']}")
    host = summary.get("host") or {}
    if host.get("load_average_1m_before_after"):
        before, after = host["load_average_1m_before_after"]
        notes.append(f"machine: {host.get('cpus')} CPUs, 1-minute load average {before} before and {after} after "
                     "the load (Locust, the functions and S3 share these cores)")
    if (summary.get("locust") or {}).get("timed_out"):
        notes.append("Locust outlived its load shape and was stopped by the runner")
    errors = summary.get("errors_by_code") or {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes if n]
    parts.append(_table(("", ""), headline_rows))
    parts.append("<h2>Per task</h2>" + task_table(summary))
    parts.append("<h2>CPU per function</h2>" + cpu_html(summary.get("cpu") or {}))
    if summary.get("by_stage"):
        parts.append("<h2>Per stage of the load shape</h2>" + _table(
            ("stage", "users", "from s", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms"),
            ((st["label"], st["users"], st["start_s"], st["requests"], st["failures"], st["rps"],
              st["latency_ms"]["p50"], st["latency_ms"]["p95"], st["latency_ms"]["p99"])
             for st in summary["by_stage"])))
    if errors:
        parts.append("<h2 class='bad'>Errors by code</h2>" + _table(("code", "count"), errors.items()))
    if comparison_html:
        parts.append("<h2>Functions vs fresh-process baseline</h2>" + comparison_html)
    for name, png in figures.items():
        heading, caption = FIGURE_TEXT.get(name, (name, ""))
        data = base64.b64encode(png).decode()
        parts.append(f"<figure><h2>{html.escape(heading)}</h2><img alt='{html.escape(heading)}' "
                     f"src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}</figcaption></figure>")
    missing = [FIGURE_TEXT[n][0] for n in ("replicas", "coldstarts") if n not in figures]
    if missing:
        parts.append(f"<p class='note'>Not plotted (no data in this run): {html.escape(', '.join(missing))}.</p>")
    parts.append("<h2>Autoscaling and function settings</h2>" + _settings_html(summary.get("settings")))
    parts.append("<h2>Load shape</h2>" + _table(("stage", "seconds", "users", "spawn rate/s"),
                 ((s.get("label"), s["duration"], s["users"], s["spawn_rate"]) for s in summary.get("stages") or [])))
    parts.append("<p>Files: <code>summary.json</code>, <code>requests.csv</code> (one row per request), Locust's "
                 "<code>locust_*.csv</code>, <code>replicas.csv</code>/<code>coldstarts.csv</code> (Knative), "
                 "<code>plots/*.png</code>.</p></body></html>")
    return "".join(parts)


def write_report(run_dir: Path | str) -> dict[str, Any]:
    """Write summary.json, plots/*.png and report.html into ``run_dir``; returns the summary."""
    run_dir = Path(run_dir)
    summary = build_summary(run_dir)
    comparison = run_dir / "compare.json"
    if comparison.is_file():
        summary["comparison"] = json.loads(comparison.read_text())
    figures = make_figures(run_dir, summary)
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    for name, png in figures.items():
        (plots / f"{name}.png").write_bytes(png)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    fragment = run_dir / "compare.fragment.html"
    comparison_html = fragment.read_text() if fragment.is_file() else None
    (run_dir / "report.html").write_text(render_html(summary, figures, comparison_html))
    return summary
