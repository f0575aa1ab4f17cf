"""The targets of issue 7, as ratios between figures of one run."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from bench.measure import Figure

SEVEN = ("adler32", "crc32", "crc32c", "md5", "sha1", "sha256", "sha512")


@dataclasses.dataclass
class Target:
    """``value`` compared with ``limit`` (``>=`` or ``<=``); None when a figure is missing."""

    name: str
    op: str
    limit: float
    value: float | None
    detail: str
    #: the same ratio from the median figures, for a sense of the spread
    median_value: float | None = None

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.op == ">=" else self.value <= self.limit

    def to_json(self) -> dict[str, Any]:
        return {"target": self.name, "op": self.op, "limit": self.limit, "value": self.value,
                "median_value": self.median_value, "passed": self.passed, "detail": self.detail}


def _stat(figures: Mapping[str, Figure], key: str, stat: str) -> float | None:
    figure = figures.get(key)
    if figure is None or figure.error:
        return None
    return figure.best if stat == "best" else figure.median


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _both(figures: Mapping[str, Figure], fn: Callable[[str], float | None]) -> tuple[float | None, float | None]:
    return fn("best"), fn("median")


def evaluate(figures: Mapping[str, Figure], size: int) -> list[Target]:
    """Every target that the figures allow to compute (missing ones: value None)."""
    targets: list[Target] = []

    def add(name: str, op: str, limit: float, ratio: Callable[[str], float | None], detail: str) -> None:
        best, median = _both(figures, ratio)
        targets.append(Target(name, op, limit, best, detail, median))

    def best_get(stat: str) -> float | None:
        values = [_stat(figures, k, stat) for k in figures if k.startswith("get.")]
        present = [v for v in values if v is not None]
        return max(present) if present else None

    add("checksum adler32 via the function / best raw GET throughput", ">=", 0.9,
        lambda s: _ratio(_stat(figures, "fn.adler32", s), best_get(s)),
        "fn.adler32 vs max(get.*) (GB/s)")
    add("checksum md5 via the function / in-memory md5", ">=", 0.9,
        lambda s: _ratio(_stat(figures, "fn.md5", s), _stat(figures, "mem.md5", s)),
        "fn.md5 vs mem.md5 (GB/s)")
    add("checksum md5 via the function / rclone hashsum md5 --download (faster than)", ">=", 1.0,
        lambda s: _ratio(_stat(figures, "fn.md5", s), _stat(figures, "rclone.md5", s)),
        "fn.md5 vs rclone.md5 (GB/s)")

    def seven_vs_sum(stat: str) -> float | None:
        rates = [_stat(figures, f"fn.{a}", stat) for a in SEVEN]
        together = _stat(figures, "fn.seven", stat)
        if together is None or any(r is None or r <= 0 for r in rates):
            return None
        return (size / together) / sum(size / r for r in rates if r)

    add("all seven in one request / sum of the seven single requests (time)", "<=", 0.6, seven_vs_sum,
        "size/fn.seven vs sum(size/fn.<algo>)")
    add("all seven in one request / straightforward function (throughput)", ">=", 2.0,
        lambda s: _ratio(_stat(figures, "fn.seven", s), _stat(figures, "naive.seven", s)),
        "fn.seven vs naive.seven (GB/s)")

    def direct_copy(stat: str) -> float | None:
        values = [_stat(figures, k, stat) for k in ("boto3.copy_object", "boto3.managed_copy")]
        present = [v for v in values if v is not None]
        return min(present) if present else None

    add("server-side copy via the function / direct boto3 server-side copy (time)", "<=", 1.2,
        lambda s: _ratio(_stat(figures, "fn.copy.server", s), direct_copy(s)),
        "fn.copy.server vs min(boto3 CopyObject, managed copy) (s)")
    server = figures.get("fn.copy.server")
    moved = server.extra.get("bytes_counted_by_function_per_copy") if server and not server.error else None
    targets.append(Target("bytes through the function during a server-side copy", "<=", 0.0, moved,
                          f"byte counters on /metrics; strategy {server.extra.get('strategy') if server else None}"))
    add("streamed copy via the function / rclone copy (throughput)", ">=", 1.0,
        lambda s: _ratio(_stat(figures, "fn.copy.stream", s), _stat(figures, "rclone.copy", s)),
        "fn.copy.stream vs rclone.copy (GB/s)")
    for key in sorted(k for k in figures if k.startswith("rss.")):
        add(f"peak worker RSS, {figures[key].name} (MiB)", "<=", 200.0,
            lambda s, key=key: _stat(figures, key, s), "VmHWM of the gunicorn worker")  # type: ignore[misc]
    add("small-object (4 KiB) checksum median latency (ms)", "<=", 10.0,
        lambda s: _stat(figures, "fn.small", "median"), "median of sequential requests")

    def fresh_vs_small(stat: str) -> float | None:
        baselines = [_stat(figures, k, "median") for k in ("fresh.legacy", "fresh.python")]
        present = [b for b in baselines if b is not None]
        return _ratio(min(present) if present else None, _stat(figures, "fn.small", "median"))

    add("fresh-process baseline / small-object latency", ">=", 20.0, fresh_vs_small,
        "min(median legacy worker, median python -c) vs median fn.small")
    add("cold start: exec to first successful checksum (s)", "<=", 1.0,
        lambda s: _stat(figures, "cold.checksum", s), "gunicorn command of the image, loopback")
    return targets
