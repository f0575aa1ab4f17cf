"""Measure the copy worker's memory: RSS of a real gunicorn copy worker while
rounds of concurrent streamed copies run against a real SeaweedFS (loopback).

    python -m tests.soak.copy_memory --concurrency 8 --rounds 4 --size-mib 64
    python -m tests.soak.copy_memory --env MALLOC_ARENA_MAX=2 --env THREADS=8

Prints one JSON document: the worker's VmRSS (MiB) at start, its peak while
copies run, after each round once idle, and the growth from the first idle
round to the last (what a ratchet would show). A 429 is retried after its
Retry-After, as the client library does. Not part of ``make test``: these are
figures to read (docs/reliability.md), not assertions.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from dynafed_client.stack import Stack
from tests.faults.processes import FunctionProcess, rss_kb

MiB = 1024 * 1024


def _copy(url: str, body: dict[str, Any]) -> int:
    while True:
        response = requests.post(url, json=body, timeout=600)
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code == 200 and response.json().get("status") == "in-progress":
            continue
        return response.status_code


def measure(*, concurrency: int, rounds: int, size: int, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    with Stack.up(workdir / "stack", functions=(), with_events=False, with_gateway=False) as stack:
        s3 = stack.s3_client()
        keys = [f"memory/src-{i}" for i in range(concurrency)]
        block = os.urandom(MiB)
        for key in keys:
            s3.put_object(Bucket="demo", Key=key, Body=block * (size // MiB))
        with FunctionProcess("copy", stack.stores_file, workdir, env=env) as fn:
            (worker,) = fn.wait_workers(1)
            start = rss_kb(worker)
            peak = [start]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kb(worker))
                    stop.wait(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            idle: list[int] = []
            statuses: list[int] = []
            for _ in range(rounds):
                threads = []
                for key in keys:
                    body = {"source": {"store": "default", "bucket": "demo", "key": key},
                            "destination": {"store": "archive", "bucket": "archive",
                                            "key": f"memory/{uuid.uuid4().hex}"}}
                    thread = threading.Thread(target=lambda b=body: statuses.append(_copy(fn.url, b)))
                    thread.start()
                    threads.append(thread)
                for thread in threads:
                    thread.join()
                time.sleep(1.0)  # let the worker settle (freed buffers, finished threads)
                idle.append(rss_kb(worker))
            stop.set()
            sampler.join()
    return {
        "concurrency": concurrency, "rounds": rounds, "object_mib": size // MiB, "env": env,
        "statuses": sorted(set(statuses)),
        "rss_mib": {"start": round(start / 1024), "peak": round(peak[0] / 1024),
                    "idle_after_round": [round(v / 1024) for v in idle],
                    "growth_first_to_last_idle": round((idle[-1] - idle[0]) / 1024) if idle else None},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the copy function")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="copy-memory-") as tmp:
        print(json.dumps(measure(concurrency=args.concurrency, rounds=args.rounds, size=args.size_mib * MiB,
                                 env=env, workdir=Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
