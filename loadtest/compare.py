"""Two runs side by side: functions vs the fresh-process baseline, or two
autoscaling configurations.

Writes into the output directory::

    compare.md            markdown table (per task and overall)
    compare.html          self-contained page: table + overlaid plot
    compare.json          the numbers
    compare.fragment.html the table + plot, embedded in report.html
    plots/compare.png     latency over time (both runs) and median latency per task
"""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtest import report

OVERALL = (
    ("requests", "requests", None),
    ("failures", "failures", None),
    ("of which shed (429)", "shed_429", None),
    ("throughput (req/s)", "throughput_rps", "higher"),
    ("p50 latency (ms)", ("latency_ms", "p50"), "lower"),
    ("p95 latency (ms)", ("latency_ms", "p95"), "lower"),
    ("p99 latency (ms)", ("latency_ms", "p99"), "lower"),
    ("small-object checksums/s", "small_checksums_per_s", "higher"),
    ("small-object checksum p95 (ms)", ("small_checksum_latency_ms", "p95"), "lower"),
    ("large-object checksum MB/s", "large_checksum_MBps", "higher"),
    ("max users", "users_max", None),
)


def _get(summary: Mapping[str, Any], key: str | tuple[str, str]) -> Any:
    if isinstance(key, tuple):
        return (summary.get(key[0]) or {}).get(key[1])
    return summary.get(key)


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return round(a / b, 2)
    return None


def load_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "summary.json"
    if path.is_file():
        return json.loads(path.read_text())
    return report.build_summary(Path(run_dir))


def comparison(a: Mapping[str, Any], b: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """The numbers of both runs, with a/b ratios."""
    overall = [{"metric": name, labels[0]: _get(a, key), labels[1]: _get(b, key),
                "ratio": _ratio(_get(a, key), _get(b, key)), "better": better}
               for name, key, better in OVERALL]
    tasks = []
    for name in sorted(set(a.get("by_task") or {}) | set(b.get("by_task") or {})):
        ta, tb = (a.get("by_task") or {}).get(name, {}), (b.get("by_task") or {}).get(name, {})
        row: dict[str, Any] = {"task": name}
        for label, t in zip(labels, (ta, tb), strict=True):
            row[label] = {"requests": t.get("requests"), "failures": t.get("failures"), "rps": t.get("rps"),
                          "p50": (t.get("latency_ms") or {}).get("p50"), "p95": (t.get("latency_ms") or {}).get("p95")}
        row["p50_speedup"] = _ratio(row[labels[1]]["p50"], row[labels[0]]["p50"])
        row["rps_ratio"] = _ratio(row[labels[0]]["rps"], row[labels[1]]["rps"])
        tasks.append(row)
    stages = []
    for sa, sb in zip(a.get("by_stage") or [], b.get("by_stage") or [], strict=False):
        row = {"stage": sa["label"] or sb["label"]}
        for label, st in zip(labels, (sa, sb), strict=True):
            row[label] = {"users": st["users"], "rps": st["rps"], "p50": st["latency_ms"]["p50"],
                          "p95": st["latency_ms"]["p95"]}
        row["p50_speedup"] = _ratio(row[labels[1]]["p50"], row[labels[0]]["p50"])
        stages.append(row)
    return {"labels": list(labels), "runs": [a.get("run_id"), b.get("run_id")],
            "modes": [a.get("mode"), b.get("mode")], "overall": overall, "tasks": tasks, "stages": stages}


def _fmt(v: Any) -> str:
    return "-" if v is None else str(v)


def to_markdown(data: Mapping[str, Any]) -> str:
    la, lb = data["labels"]
    lines = [f"# {la} vs {lb}", "", f"runs: `{data['runs'][0]}` ({data['modes'][0]}) vs "
             f"`{data['runs'][1]}` ({data['modes'][1]})", "",
             f"| metric | {la} | {lb} | {la}/{lb} |", "|---|---:|---:|---:|"]
    lines += [f"| {r['metric']} | {_fmt(r[la])} | {_fmt(r[lb])} | {_fmt(r['ratio'])} |" for r in data["overall"]]
    lines += ["", f"| task | {la} req/s | {lb} req/s | {la} p50 ms | {lb} p50 ms | {la} p95 ms | {lb} p95 ms "
              f"| p50 speed-up |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in data["tasks"]:
        a, b = t[la], t[lb]
        lines.append(f"| {t['task']} | {_fmt(a['rps'])} | {_fmt(b['rps'])} | {_fmt(a['p50'])} | {_fmt(b['p50'])} "
                     f"| {_fmt(a['p95'])} | {_fmt(b['p95'])} | {_fmt(t['p50_speedup'])}x |")
    if data.get("stages"):
        lines += ["", "Per stage of the load shape (equal user counts compare like with like):", "",
                  f"| stage | {la} users | {lb} users | {la} req/s | {lb} req/s | {la} p50 ms | {lb} p50 ms "
                  f"| {la} p95 ms | {lb} p95 ms | p50 speed-up |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for st in data["stages"]:
            a, b = st[la], st[lb]
            lines.append(f"| {st['stage']} | {a['users']} | {b['users']} | {_fmt(a['rps'])} | {_fmt(b['rps'])} "
                         f"| {_fmt(a['p50'])} | {_fmt(b['p50'])} | {_fmt(a['p95'])} | {_fmt(b['p95'])} "
                         f"| {_fmt(st['p50_speedup'])}x |")
    lines += ["", f"p50 speed-up = {lb} median latency / {la} median latency."]
    return "\n".join(lines) + "\n"


def to_html_fragment(data: Mapping[str, Any], png: bytes | None) -> str:
    la, lb = data["labels"]
    overall = report._table(("metric", la, lb, f"{la}/{lb}"),
                            ((r["metric"], r[la], r[lb], r["ratio"]) for r in data["overall"]))
    tasks = report._table(("task", f"{la} req/s", f"{lb} req/s", f"{la} p50 ms", f"{lb} p50 ms", f"{la} p95 ms",
                           f"{lb} p95 ms", "p50 speed-up"),
                          ((t["task"], t[la]["rps"], t[lb]["rps"], t[la]["p50"], t[lb]["p50"], t[la]["p95"],
                            t[lb]["p95"], t["p50_speedup"]) for t in data["tasks"]))
    if data.get("stages"):
        tasks += "<p>Per stage of the load shape (equal user counts compare like with like):</p>" + report._table(
            ("stage", f"{la} users", f"{lb} users", f"{la} req/s", f"{lb} req/s", f"{la} p50 ms", f"{lb} p50 ms",
             f"{la} p95 ms", f"{lb} p95 ms", "p50 speed-up"),
            ((st["stage"], st[la]["users"], st[lb]["users"], st[la]["rps"], st[lb]["rps"], st[la]["p50"],
              st[lb]["p50"], st[la]["p95"], st[lb]["p95"], st["p50_speedup"]) for st in data["stages"]))
    img = (f"<img alt='comparison' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
           f"<figcaption>Left: p50 and p95 latency over time of both runs. Right: median latency per task "
           f"(log scale).</figcaption>") if png else ""
    return overall + tasks + img


def plot_comparison(dirs: Sequence[Path], summaries: Sequence[Mapping[str, Any]],
                    labels: Sequence[str]) -> bytes | None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    any_data = False
    colors = ("tab:blue", "tab:orange")
    for run_dir, label, color in zip(dirs, labels, colors, strict=True):
        path = Path(run_dir) / "requests.csv"
        rows = [r for r in report.read_rows(path) if r["ok"]] if path.is_file() else []
        if not rows:
            continue
        any_data = True
        t0 = min(r["start"] for r in rows)
        bins: dict[int, list[float]] = {}
        for r in rows:
            bins.setdefault(int((r["start"] - t0) // 5), []).append(r["response_ms"])
        keys = sorted(bins)
        xs = [k * 5 + 2.5 for k in keys]
        left.plot(xs, [report.percentile(bins[k], 50) for k in keys], color=color, label=f"{label} p50")
        left.plot(xs, [report.percentile(bins[k], 95) for k in keys], color=color, linestyle="--",
                  label=f"{label} p95")
    if not any_data:
        return None
    left.set_yscale("log")
    left.set(xlabel="seconds since first request", ylabel="response time (ms, log)", title="Latency over time")
    left.legend(fontsize=8)
    left.grid(alpha=0.3, which="both")
    names = sorted(set().union(*[set(s.get("by_task") or {}) for s in summaries]))
    width = 0.4
    for i, (summary, label, color) in enumerate(zip(summaries, labels, colors, strict=True)):
        values = [((summary.get("by_task") or {}).get(n, {}).get("latency_ms") or {}).get("p50") or 0 for n in names]
        right.barh([y + (i - 0.5) * width for y in range(len(names))], values, height=width, color=color,
                   label=label)
    right.set_yticks(range(len(names)), names)
    right.set_xscale("log")
    right.set(xlabel="median latency (ms, log)", title="Median latency per task")
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)
    right.grid(alpha=0.3, axis="x", which="both")
    return report._png(fig)


def write_comparison(a_dir: Path | str, b_dir: Path | str, out_dir: Path | str,
                     labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Compare run ``a_dir`` with run ``b_dir``; files go to ``out_dir``."""
    a_dir, b_dir, out_dir = Path(a_dir), Path(b_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = [load_summary(a_dir), load_summary(b_dir)]
    labels = list(labels or (a_dir.name, b_dir.name))
    if labels[0] == labels[1]:
        labels = [f"{labels[0]} (a)", f"{labels[1]} (b)"]
    data = comparison(summaries[0], summaries[1], labels)
    png = plot_comparison([a_dir, b_dir], summaries, labels)
    if png:
        (out_dir / "plots").mkdir(exist_ok=True)
        (out_dir / "plots" / "compare.png").write_bytes(png)
    (out_dir / "compare.json").write_text(json.dumps(data, indent=1) + "\n")
    (out_dir / "compare.md").write_text(to_markdown(data))
    fragment = to_html_fragment(data, png)
    (out_dir / "compare.fragment.html").write_text(fragment)
    title = html.escape(f"{labels[0]} vs {labels[1]}")
    (out_dir / "compare.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{report.CSS}</style>"
        f"</head><body><h1>{title}</h1><p>{html.escape(str(data['runs'][0]))} vs "
        f"{html.escape(str(data['runs'][1]))}</p>{fragment}</body></html>")
    return data
