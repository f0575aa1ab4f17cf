"""summary.json and results.md of one benchmark run."""
from __future__ import annotations

import json
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


def _verdict(target: Target) -> str:
    return {True: "PASS", False: "FAIL", None: "not measured"}[target.passed]


def targets_table(targets: Sequence[Target]) -> str:
    lines = ["| target | measured (best) | median runs | limit | result |", "|---|---|---|---|---|"]
    for t in targets:
        lines.append(f"| {t.name} | {_num(t.value)} | {_num(t.median_value)} | {t.op} {_num(t.limit, 1)} "
                     f"| {_verdict(t)} |")
    return "\n".join(lines)


def figures_table(figures: Mapping[str, Figure]) -> str:
    lines = ["| figure | unit | best | median | runs | note |", "|---|---|---|---|---|---|"]
    for key, f in figures.items():
        note = (f.error and f"ERROR: {f.error}") or f.note
        extra = "; ".join(f"{k}={v}" for k, v in f.extra.items())
        lines.append(f"| {f.name} (`{key}`) | {f.unit} | {_num(f.best)} | {_num(f.median)} | {len(f.runs)} "
                     f"| {'; '.join(x for x in (note, extra) if x)} |")
    return "\n".join(lines)


def write(out_dir: Path, *, figures: Mapping[str, Figure], targets: Sequence[Target], environment: Mapping[str, Any],
          profile: Mapping[str, Any] | None, notes: Sequence[str]) -> str:
    """Write summary.json and results.md into ``out_dir``; returns the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "environment": dict(environment),
        "targets": [t.to_json() for t in targets],
        "figures": {k: f.to_json() for k, f in figures.items()},
        "import_profile": dict(profile or {}),
        "notes": list(notes),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    passed = sum(1 for t in targets if t.passed)
    failed = sum(1 for t in targets if t.passed is False)
    missing = sum(1 for t in targets if t.passed is None)
    env_lines = "\n".join(f"- {k}: {v}" for k, v in environment.items())
    parts = [
        "# Benchmark results",
        f"{passed} targets met, {failed} missed, {missing} not measured. "
        "Ratios from the best run of each figure; the median column uses the median runs.",
        targets_table(targets),
        "## Figures",
        figures_table(figures),
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
