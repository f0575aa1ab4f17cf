"""``python -m bench [--quick] [--out DIR] [--runs N]`` (what ``make bench`` runs)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.measure import MiB
from bench.runner import BenchOptions, GiB, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="results directory")
    parser.add_argument("--runs", type=int, default=5, help="rounds of the fast measurements")
    parser.add_argument("--copy-runs", type=int, default=5, help="rounds of the copies")
    parser.add_argument("--size-mib", type=int, default=1024, help="main object size")
    parser.add_argument("--big-mib", type=int, default=4096, help="object size for peak RSS (0: skip)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 128 MiB / 256 MiB objects, 2 rounds (figures not comparable)")
    parser.add_argument("--rejudge", type=Path, metavar="SUMMARY_JSON",
                        help="measure nothing: judge the figures of an earlier run again (into --out)")
    args = parser.parse_args(argv)
    if args.rejudge:
        print(rejudge(args.rejudge, args.out))
        return 0
    options = BenchOptions(out_dir=args.out, size=args.size_mib * MiB, big_size=args.big_mib * MiB, runs=args.runs,
                           copy_runs=args.copy_runs)
    if args.quick:
        options = BenchOptions(out_dir=args.out, size=128 * MiB, big_size=256 * MiB, runs=2, copy_runs=1,
                               small_requests=50, fresh_runs=3, cold_runs=1)
    print(run(options))
    return 0


def rejudge(summary_path: Path, out_dir: Path) -> str:
    """Targets and report of an earlier run's summary.json, by the current rules."""
    import json

    from bench import report
    from bench.measure import figure_from_json
    from bench.targets import evaluate

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    figures = {k: figure_from_json(v) for k, v in summary["figures"].items()}
    environment = summary.get("environment", {})
    targets = evaluate(figures, int(environment["object_size_bytes"]), cores=environment.get("cpus"))
    return report.write(out_dir, figures=figures, targets=targets, environment=environment,
                        profile=summary.get("import_profile"), notes=summary.get("notes", []),
                        loads=summary.get("load_by_round", []))


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["GiB", "main"]
