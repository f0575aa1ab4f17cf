"""Figures: repeated measurements reduced to best and median."""
from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

GB = 1e9
MiB = 1024 * 1024


@dataclasses.dataclass
class Figure:
    """One measured quantity over several runs.

    ``unit`` is ``GB/s`` (higher is better), ``s`` or ``ms`` (lower is
    better) or ``MiB`` (lower is better). ``error`` is set instead of runs
    when it could not be measured.
    """

    name: str
    unit: str
    runs: list[float] = dataclasses.field(default_factory=list)
    note: str = ""
    error: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "GB/s"

    @property
    def best(self) -> float | None:
        if not self.runs:
            return None
        return max(self.runs) if self.higher_is_better else min(self.runs)

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "best": self.best, "median": self.median,
                "runs": [round(r, 6) for r in self.runs], "note": self.note, "error": self.error,
                **({"extra": self.extra} if self.extra else {})}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


@dataclasses.dataclass
class Sampler:
    """One measurement to repeat: ``sample()`` returns one value in the figure's unit."""

    key: str
    figure: Figure
    sample: Callable[[], float]


def throughput(key: str, name: str, size: int, fn: Callable[[], Any], *, note: str = "",
               check: Callable[[Any], None] | None = None) -> Sampler:
    """GB/s of ``size`` bytes processed by ``fn``."""
    def sample() -> float:
        seconds, result = timed(fn)
        if check is not None:
            check(result)
        return size / seconds / GB

    return Sampler(key, Figure(name, "GB/s", note=note), sample)


def duration(key: str, name: str, fn: Callable[[], Any], *, unit: str = "s", note: str = "",
             check: Callable[[Any], None] | None = None) -> Sampler:
    """Wall time of ``fn`` (seconds, or milliseconds with ``unit="ms"``)."""
    scale = 1000.0 if unit == "ms" else 1.0

    def sample() -> float:
        seconds, result = timed(fn)
        if check is not None:
            check(result)
        return seconds * scale

    return Sampler(key, Figure(name, unit, note=note), sample)


def run_rounds(samplers: list[Sampler], rounds: int, figures: dict[str, Figure], *,
               log: Callable[[str], None] = print) -> None:
    """Run every sampler once per round, interleaved and rotated, so that load
    from elsewhere on the machine spreads over all figures instead of biasing
    whichever ran during it. A sampler that fails is reported (its figure
    carries the error) and dropped from later rounds."""
    for sampler in samplers:
        figures[sampler.key] = sampler.figure
    active = list(samplers)
    for round_number in range(rounds):
        # each round starts one further down the list: no figure always runs
        # right after the same neighbour (e.g. after 8 GET streams left the
        # S3 server busy)
        shift = round_number % max(1, len(active))
        for sampler in active[shift:] + active[:shift]:
            if sampler not in active:
                continue
            try:
                value = sampler.sample()
            except Exception as exc:
                sampler.figure.error = f"{type(exc).__name__}: {str(exc)[:300]}"
                active.remove(sampler)
                log(f"  {sampler.key}: ERROR {sampler.figure.error}")
                continue
            sampler.figure.runs.append(value)
            log(f"  [{round_number + 1}/{rounds}] {sampler.key}: {value:.4g} {sampler.figure.unit}")


def guarded(key: str, name: str, unit: str, measure: Callable[[], Figure], figures: dict[str, Figure], *,
            log: Callable[[str], None] = print) -> None:
    """``figures[key] = measure()``, or a Figure carrying the error."""
    try:
        figures[key] = measure()
        log(f"  {key}: best {figures[key].best}")
    except Exception as exc:
        figures[key] = Figure(name, unit, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        log(f"  {key}: ERROR {figures[key].error}")
