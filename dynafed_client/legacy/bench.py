"""Per-task latency: warm functions vs the legacy fresh process, for one small object.

``python -m dynafed_client.legacy.bench [--state .stack] [-n 30] [--size 4096] [--json]``

Uploads one object of ``--size`` bytes to the local stack, then alternates
the same task through :class:`dynafed_client.Client` (warm functions) and
:class:`LocalBackend` (a fresh ``python worker.py`` per task), after one
warm-up call of each, and prints median / p90 / min wall time per task for a
checksum (adler32, computed: ``cache=none``) and a verified copy.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from dynafed_client import Client, statefile
from dynafed_client.legacy import LocalBackend
from dynafed_client.storefile import s3_client


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 2), "p90_ms": round(p90 * 1000, 2),
            "min_ms": round(ordered[0] * 1000, 2), "n": len(ordered)}


def _time(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def run(state_dir: str | None, n: int, size: int) -> dict[str, Any]:
    root = state_dir or str(statefile.default_state_dir())
    stores = statefile.require(root).stores
    key = f"bench/{uuid.uuid4().hex}.bin"
    s3_client(stores["default"]).put_object(Bucket="demo", Key=key, Body=os.urandom(size))
    client = Client.from_stack(root)
    backend = LocalBackend(stores)
    tasks: dict[str, dict[str, Callable[[], Any]]] = {
        "checksum": {"warm function": lambda: client.checksum(f"demo/{key}", ["adler32"], cache="none"),
                     "fresh process": lambda: backend.checksum(f"demo/{key}", ["adler32"], cache="none")},
        "copy": {"warm function": lambda: client.copy(f"demo/{key}", f"demo-copy/{key}.fn", overwrite=True),
                 "fresh process": lambda: backend.copy(f"demo/{key}", f"demo-copy/{key}.legacy", overwrite=True)},
    }
    results: dict[str, Any] = {"object_bytes": size, "iterations": n, "tasks": {}}
    for task, backends in tasks.items():
        samples: dict[str, list[float]] = {name: [] for name in backends}
        errors: dict[str, str] = {}
        for name, call in backends.items():  # warm-up (first connection, function's first request)
            try:
                call()
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
        for _ in range(n):
            for name, call in backends.items():
                if name not in errors:
                    samples[name].append(_time(call))
        results["tasks"][task] = {name: (_stats(s) if s else {"error": errors.get(name, "no samples")})
                                  for name, s in samples.items()}
    client.close()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynafed_client.legacy.bench", description=__doc__)
    parser.add_argument("--state", help="local stack state dir (default $DYNAFED_FN_STATE_DIR or ./.stack)")
    parser.add_argument("-n", type=int, default=30, help="tasks per backend (default 30)")
    parser.add_argument("--size", type=int, default=4096, help="object size in bytes (default 4096)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    results = run(args.state, args.n, args.size)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"per-task latency, {results['object_bytes']} B object, {results['iterations']} tasks each")
    for task, rows in results["tasks"].items():
        for name, row in rows.items():
            if "error" in row:
                print(f"  {task:9} {name:14} unavailable: {row['error']}")
            else:
                print(f"  {task:9} {name:14} median {row['median_ms']:8.1f} ms   p90 {row['p90_ms']:8.1f} ms"
                      f"   min {row['min_ms']:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
