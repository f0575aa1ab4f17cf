"""summary.json and results.md of one benchmark run."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.measure import Figure
from bench.targets import Target


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def targets_table(targets: Sequence[Target]) -> str:
    """The judged targets: value (median of rounds), best run, limit, verdict, what it compares."""
    lines = ["| target | measured (median) | best run | limit | result | detail |", "|---|---|---|---|---|---|"]
    for t in targets:
        if t.kind == "info":
            continue
        why = f" — {t.inconclusive}" if t.inconclusive else ""
        lines.append(f"| {t.name} | {_num(t.value)} | {_num(t.best_value)} | {t.op} {_num(t.limit, 2)} "
                     f"| {t.verdict} | {t.detail}{why} |")
    return "\n".join(lines)


def comparisons_table(targets: Sequence[Target]) -> str:
    """Wall-clock comparisons, listed for information (never judged)."""
    lines = ["| comparison | median | best | earlier limit |", "|---|---|---|---|"]
    for t in targets:
        if t.kind == "info":
            lines.append(f"| {t.name} | {_num(t.value)} | {_num(t.best_value)} | {t.op} {_num(t.limit, 2)} |")
    return "\n".join(lines)


def _cpu_cell(f: Figure) -> str:
    medians = f.cpu_medians()
    if not medians:
        return "—"
    shown = {g: v for g, v in medians.items() if v >= 0.0005 or g in (f.service, "client")}
    return ", ".join(f"{'**' + g + '**' if g == f.service else g} {_num(v)}" for g, v in shown.items())


def figures_table(figures: Mapping[str, Figure]) -> str:
    lines = ["| figure | unit | best | median | runs | CPU per unit (median; the function in bold) | note |",
             "|---|---|---|---|---|---|---|"]
    for key, f in figures.items():
        note = (f.error and f"ERROR: {f.error}") or f.note
        extra = "; ".join(f"{k}={v}" for k, v in f.extra.items())
        cpu = f"{_cpu_cell(f)} {f.cpu_unit}" if f.cpu_runs else "—"
        lines.append(f"| {f.name} (`{key}`) | {f.unit} | {_num(f.best)} | {_num(f.median)} | {len(f.runs)} "
                     f"| {cpu} | {'; '.join(x for x in (note, extra) if x)} |")
    return "\n".join(lines)


def loads_table(loads: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| measurements | round | load average (1, 5, 15 min) |", "|---|---|---|"]
    lines += [f"| {r['group']} | {r['round']} | {' '.join(str(x) for x in r['load_average'])} |" for r in loads]
    return "\n".join(lines)


def write(out_dir: Path, *, figures: Mapping[str, Figure], targets: Sequence[Target], environment: Mapping[str, Any],
          profile: Mapping[str, Any] | None, notes: Sequence[str],
          loads: Sequence[Mapping[str, Any]] = ()) -> str:
    """Write summary.json and results.md into ``out_dir``; returns the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "environment": dict(environment),
        "targets": [t.to_json() for t in targets],
        "figures": {k: f.to_json() for k, f in figures.items()},
        "import_profile": dict(profile or {}),
        "notes": list(notes),
        "load_by_round": list(loads),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    counts = Counter(t.verdict for t in targets if t.kind != "info")
    env_lines = "\n".join(f"- {k}: {v}" for k, v in environment.items())
    parts = [
        "# Benchmark results",
        f"{counts['PASS']} targets met, {counts['FAIL']} missed, {counts['inconclusive (machine load)']} "
        f"inconclusive (machine load), {counts['not measured']} not measured. Wall-clock ratios from the median "
        "of the rounds (best run beside it); CPU ratios of figures measured in the same rounds from the median "
        "of the per-round ratios (the extreme rounds beside it), the 4 KiB ratio from each series' "
        "least-disturbed (smallest) block; CPU per GiB or per request from each process's CPU-time clock, by "
        "process group.",
        targets_table(targets),
        "## Wall-clock comparisons (information only: they move with the machine's load)",
        comparisons_table(targets),
        "## Figures",
        figures_table(figures),
        "## Load average per round",
        loads_table(loads),
        "## Environment",
        env_lines,
    ]
    if profile:
        parts += ["## Import profile (python -X importtime)",
                  "\n".join(f"- {k}: {v}" for k, v in profile.items())]
    if notes:
        parts += ["## Notes", "\n".join(f"- {n}" for n in notes)]
    markdown = "\n\n".join(parts) + "\n"
    (out_dir / "results.md").write_text(markdown, encoding="utf-8")
    return markdown
