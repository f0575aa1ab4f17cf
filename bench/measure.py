"""Figures: repeated measurements reduced to best and median, each run with
the CPU seconds every process group spent on it (``bench.cpu``) and the
machine's load average when it ended."""
from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.cpu import CpuMeter

GB = 1e9
MiB = 1024 * 1024
GiB = 1024 * MiB


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
    #: per run, CPU seconds per work unit of each process group (``cpu_unit``)
    cpu_runs: list[dict[str, float]] = dataclasses.field(default_factory=list)
    #: ``s/GiB`` (CPU seconds per GiB processed) or ``ms/request``
    cpu_unit: str = ""
    #: the process group that is "the function" of this figure (checksum, copy, naive)
    service: str | None = None
    #: 1-minute load average at the end of each run
    load: list[float] = dataclasses.field(default_factory=list)

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

    def cpu_series(self, group: str) -> list[float]:
        """CPU per work unit of ``group``, one value per run that recorded it."""
        return [run[group] for run in self.cpu_runs if group in run]

    def cpu_median(self, group: str) -> float | None:
        series = self.cpu_series(group)
        return statistics.median(series) if series else None

    def cpu_medians(self) -> dict[str, float]:
        groups = sorted({g for run in self.cpu_runs for g in run})
        return {g: round(m, 4) for g in groups if (m := self.cpu_median(g)) is not None}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "unit": self.unit, "best": self.best, "median": self.median,
                               "runs": [round(r, 6) for r in self.runs], "note": self.note, "error": self.error}
        if self.cpu_runs:
            out.update({"cpu_unit": self.cpu_unit, "service": self.service, "cpu_median": self.cpu_medians(),
                        "cpu_runs": [{g: round(v, 4) for g, v in run.items()} for run in self.cpu_runs]})
        if self.load:
            out["load_average_1m"] = [round(x, 2) for x in self.load]
        if self.extra:
            out["extra"] = self.extra
        return out


def figure_from_json(data: Mapping[str, Any]) -> Figure:
    """The Figure a summary.json entry was written from (``Figure.to_json``)."""
    return Figure(str(data["name"]), str(data["unit"]), runs=list(data.get("runs") or []), note=data.get("note") or "",
                  error=data.get("error"), extra=dict(data.get("extra") or {}),
                  cpu_runs=[dict(r) for r in data.get("cpu_runs") or []], cpu_unit=data.get("cpu_unit") or "",
                  service=data.get("service"), load=list(data.get("load_average_1m") or []))


def spread(values: Sequence[float]) -> float | None:
    """How far the runs of one quantity moved: (max - min) / median, after
    dropping the lowest and highest run when there are 4 or more (one odd
    run, a page-cache miss or a colleague's test starting, is not a trend)."""
    ordered = sorted(values)
    if len(ordered) >= 4:
        ordered = ordered[1:-1]
    if len(ordered) < 2:
        return None
    middle = statistics.median(ordered)
    return (ordered[-1] - ordered[0]) / middle if middle else None


def seconds_per_gib(figure: Figure, size: int) -> list[float]:
    """Wall seconds per GiB of each run of a GB/s (or s) figure of ``size`` bytes."""
    gib = size / GiB
    if figure.unit == "GB/s":
        return [size / (r * GB) / gib for r in figure.runs if r > 0]
    if figure.unit == "s":
        return [r / gib for r in figure.runs]
    raise ValueError(f"{figure.unit} is not a time or a rate")


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
    #: work units one sample does, for CPU per unit: GiB processed, or requests
    units: float = 0.0


def per_gib(sampler: Sampler, size: int, service: str | None = None) -> Sampler:
    """Record CPU seconds per GiB (``size`` bytes per sample) for this sampler."""
    sampler.units = size / GiB
    sampler.figure.cpu_unit = "s/GiB"
    sampler.figure.service = service
    return sampler


def per_request(sampler: Sampler, requests: int, service: str | None = None) -> Sampler:
    """Record CPU milliseconds per request (``requests`` per sample)."""
    sampler.units = requests / 1000.0  # CPU seconds / (requests / 1000) = CPU ms per request
    sampler.figure.cpu_unit = "ms/request"
    sampler.figure.service = service
    return sampler


def metered(figure: Figure, meter: CpuMeter | None, units: float, work: Callable[[], float]) -> float:
    """Run ``work`` once, recording CPU per unit of every group and the load average."""
    before = meter.snapshot() if meter is not None and units else None
    value = work()
    if before is not None and meter is not None:
        figure.cpu_runs.append({g: s / units for g, s in meter.since(before).items()})
    figure.load.append(os.getloadavg()[0])
    return value


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
               log: Callable[[str], None] = print, meter: CpuMeter | None = None,
               loads: list[Mapping[str, Any]] | None = None, label: str = "") -> None:
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
        load = os.getloadavg()
        log(f"  round {round_number + 1}/{rounds}{f' of {label}' if label else ''}: load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if loads is not None:
            loads.append({"group": label, "round": round_number + 1, "load_average": [round(x, 2) for x in load]})
        for sampler in active[shift:] + active[:shift]:
            if sampler not in active:
                continue
            try:
                value = metered(sampler.figure, meter, sampler.units, sampler.sample)
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
