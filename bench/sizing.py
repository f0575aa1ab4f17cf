"""Knative sizing from measurement: each Service's CPU and memory requests and
limits and its autoscaling target, derived from ``make bench`` figures.

::

    python -m bench.sizing --snapshot bench-results/summary.json   # keep a run's figures
    python -m bench.sizing --apply        # table into docs/knative.md, values into knative/base
    python -m bench.sizing --check        # exit 1 if docs or manifests differ from the rule

The input is ``bench/sizing-input.json``: the figures of one bench run that
the rule reads (committed, so the manifest test is reproducible offline).
containerConcurrency and target-utilization-percentage are read from the
manifests as they are (they follow gunicorn's THREADS and the admission
limit, configured elsewhere).

The rule, per Service (``size_service``)::

    c   = worker CPU-s/GiB ÷ the design request's wall time at this machine's
          limit, max(slowest digest's CPU in memory, Σ CPU of all processes /
          cores), per GiB: the cores one request keeps busy when nothing
          starves it (CPU figures only: they barely move with load)
    L   = cpu limit: the cores of the most parallel request of the Service
          (ceil of its c), at least 1 — a single request is never throttled
    T   = autoscaling target: min(containerConcurrency, max(1, floor(L / c)))
          — as many design requests in flight as the limit runs at full speed;
          beyond that the autoscaler adds pods instead of slicing the CPU
    R   = cpu request: c x T x utilization, rounded up to 50m — what the pod
          burns at the autoscaler's steady state (T x utilization in flight)
    M   = memory limit: 1.25 x (baseline RSS + containerConcurrency x RSS per
          request), rounded up to 64 Mi — the hard limit of requests must fit
    m   = memory request: baseline RSS + ceil(T x utilization) x RSS per
          request, rounded up to 64 Mi

Baseline = RSS of the idle service (gunicorn master + worker, before any
request); RSS per request = peak worker RSS (VmHWM) during one 4 GiB request
minus the idle worker's RSS.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
INPUT = REPO / "bench" / "sizing-input.json"
DOCS = REPO / "docs" / "knative.md"
BASE = REPO / "knative" / "base"
BEGIN, END = "<!-- sizing:begin (python -m bench.sizing --apply) -->", "<!-- sizing:end -->"

GiB, GB, MiB = 1024 ** 3, 1e9, 1024 ** 2
MEMORY_HEADROOM = 1.25
MEMORY_STEP_MIB = 64
CPU_STEP_M = 50


@dataclasses.dataclass(frozen=True)
class Workload:
    """Which bench figures describe a Service's work."""

    #: the request the Service mostly serves (sets the target and the request)
    design: str
    #: every request kind it serves (the most parallel one sets the CPU limit)
    kinds: tuple[str, ...]
    #: peak-RSS figures of one large request
    rss: tuple[str, ...]
    #: the idle-RSS figure of the service that runs this work
    idle: str
    #: the small-request figure (CPU ms per request), if any
    small: str | None = None


#: scrub hashes stored objects with the same engine as checksum (digest_object)
WORKLOADS: dict[str, Workload] = {
    "checksum": Workload("fn.adler32", ("fn.adler32", "fn.md5", "fn.seven"),
                         ("rss.checksum.adler32", "rss.checksum.seven"), "rss.idle.checksum", "fn.small"),
    "scrub": Workload("fn.adler32", ("fn.adler32", "fn.md5", "fn.seven"),
                      ("rss.checksum.adler32", "rss.checksum.seven"), "rss.idle.checksum"),
    "copy": Workload("fn.copy.stream", ("fn.copy.stream",), ("rss.copy.stream", "rss.copy.server"),
                     "rss.idle.copy"),
}
#: figures of a summary.json that the rule reads (what --snapshot keeps)
NEEDED = sorted({k for w in WORKLOADS.values() for k in (*w.kinds, *w.rss, w.idle, *([w.small] if w.small else []))}
                | {"mem.adler32", "mem.crc32", "mem.crc32c", "mem.md5", "mem.sha1", "mem.sha256", "mem.sha512"})


@dataclasses.dataclass(frozen=True)
class ManifestFacts:
    container_concurrency: int
    utilization_pct: float


@dataclasses.dataclass(frozen=True)
class Sizing:
    service: str
    facts: ManifestFacts
    design: str
    cpu_s_per_gib: float
    cores_per_request: float
    baseline_mib: float
    rss_per_request_mib: float
    cpu_request_m: int
    cpu_limit: int
    memory_request_mib: int
    memory_limit_mib: int
    target: int
    small_cpu_ms: float | None

    @property
    def sustained_gbps(self) -> float:
        """GB/s of the design request one pod sustains on its CPU request."""
        return (self.cpu_request_m / 1000) / (self.cpu_s_per_gib * GB / GiB)

    @property
    def small_rps(self) -> float | None:
        """Small requests per second one pod sustains on its CPU request."""
        return None if not self.small_cpu_ms else (self.cpu_request_m / 1000) / (self.small_cpu_ms / 1000)

    def manifest_values(self) -> dict[str, str]:
        return {"requests.cpu": f"{self.cpu_request_m}m", "limits.cpu": str(self.cpu_limit),
                "requests.memory": f"{self.memory_request_mib}Mi", "limits.memory": f"{self.memory_limit_mib}Mi",
                "target": str(self.target)}


# -- the rule ---------------------------------------------------------------------

def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step - 1e-9) * step)


def _figure(figures: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    figure = figures.get(key)
    if not figure or figure.get("error") or not figure.get("runs"):
        raise ValueError(f"the sizing input lacks a measured {key}")
    return figure


#: the digests each kind of request computes (the copy verifies adler32 and
#: sends every part's md5 as Content-MD5)
DIGESTS: dict[str, tuple[str, ...]] = {
    "fn.adler32": ("adler32",), "fn.md5": ("md5",),
    "fn.seven": ("adler32", "crc32", "crc32c", "md5", "sha1", "sha256", "sha512"),
    "fn.copy.stream": ("md5", "adler32"),
}


def cores_per_request(figures: Mapping[str, Any], key: str, cores: int) -> tuple[float, float]:
    """(worker CPU-s/GiB, cores one request keeps busy when nothing starves it).

    From CPU only, which moves little with load: the request's wall time at
    this machine's limit is max(its slowest digest's CPU in memory, Σ CPU of
    every process / cores) per GiB (the bench's machine-limit), and the
    worker's share of it is the cores it keeps busy.
    """
    figure = _figure(figures, key)
    cpu = float(figure["cpu_median"][figure["service"]])
    slowest = max(float(_figure(figures, f"mem.{a}")["cpu_median"]["client"]) for a in DIGESTS[key])
    wall = max(slowest, sum(float(v) for v in figure["cpu_median"].values()) / cores)
    return cpu, cpu / wall


def rss(figures: Mapping[str, Any], keys: Sequence[str], idle: str) -> tuple[float, float]:
    """(baseline MiB, MiB per request).

    Baseline: the idle service (master + worker) before any request. Per
    request: the largest peak worker RSS over ``keys`` minus the idle worker's
    RSS — which also counts what the first requests leave behind (imports,
    the S3 client, pooled buffers), so it errs on the large side.
    """
    quiet = _figure(figures, idle)
    baseline = float(quiet["median"])
    worker = float(quiet["extra"]["worker_mib"])
    per_request = max(0.0, *(float(_figure(figures, key)["median"]) - worker for key in keys))
    return baseline, per_request


def size_service(service: str, figures: Mapping[str, Any], facts: ManifestFacts, cores: int = 2) -> Sizing:
    """The rule of the module docstring for one Service (``cores``: of the bench machine)."""
    work = WORKLOADS[service]
    cpu, c = cores_per_request(figures, work.design, cores)
    limit = max(1, math.ceil(max(cores_per_request(figures, k, cores)[1] for k in work.kinds) - 1e-9))
    target = min(facts.container_concurrency, max(1, math.floor(limit / c)))
    utilization = facts.utilization_pct / 100
    request_m = max(CPU_STEP_M, _round_up(1000 * c * target * utilization, CPU_STEP_M))
    baseline, per_request = rss(figures, work.rss, work.idle)
    memory_limit = _round_up(MEMORY_HEADROOM * (baseline + facts.container_concurrency * per_request),
                             MEMORY_STEP_MIB)
    memory_request = _round_up(baseline + math.ceil(target * utilization) * per_request, MEMORY_STEP_MIB)
    small = _figure(figures, work.small)["cpu_median"]["checksum"] if work.small else None
    return Sizing(service, facts, work.design, cpu, c, baseline, per_request, request_m, limit, memory_request,
                  memory_limit, target, small)


# -- manifests and docs -------------------------------------------------------------

def _load_service(path: Path) -> Mapping[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def service_path(service: str, base: Path = BASE) -> Path:
    return base / f"{service}-service.yaml"


def manifest_facts(svc: Mapping[str, Any]) -> ManifestFacts:
    template = svc["spec"]["template"]
    annotations = template["metadata"].get("annotations") or {}
    return ManifestFacts(int(template["spec"]["containerConcurrency"]),
                         float(annotations.get("autoscaling.knative.dev/target-utilization-percentage", 70)))


def manifest_values(svc: Mapping[str, Any]) -> dict[str, str]:
    """The values the rule sets, as the manifest has them."""
    template = svc["spec"]["template"]
    resources = template["spec"]["containers"][0]["resources"]
    return {"requests.cpu": str(resources["requests"]["cpu"]), "limits.cpu": str(resources["limits"]["cpu"]),
            "requests.memory": str(resources["requests"]["memory"]),
            "limits.memory": str(resources["limits"]["memory"]),
            "target": str(template["metadata"]["annotations"]["autoscaling.knative.dev/target"])}


def sizings(figures: Mapping[str, Any], base: Path = BASE, cores: int = 2) -> list[Sizing]:
    return [size_service(s, figures, manifest_facts(_load_service(service_path(s, base))), cores)
            for s in WORKLOADS]


def apply_to_manifest(text: str, values: Mapping[str, str]) -> str:
    """``text`` (a Service YAML) with the rule's values in place, comments kept:
    the target annotation, and cpu/memory under resources.requests/limits."""
    text = re.sub(r'(autoscaling\.knative\.dev/target: )"[^"]*"', lambda m: f'{m.group(1)}"{values["target"]}"',
                  text, count=1)
    out, section = [], None
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if re.match(r"^(requests|limits):\s*$", stripped):
            section = stripped[:-1]
        elif section and re.match(r"^(cpu|memory):", stripped):
            key = stripped.split(":", 1)[0]
            indent = line[: len(line) - len(line.lstrip())]
            value = values[f"{section}.{key}"]
            line = f'{indent}{key}: {json.dumps(value) if key == "cpu" and value.isdigit() else value}\n'
        elif stripped and not stripped.startswith("#") and section and not re.match(r"^(cpu|memory):", stripped):
            section = None
        out.append(line)
    return "".join(out)


def _n(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def table(rows: Sequence[Sizing], environment: Mapping[str, Any]) -> str:
    lines = [
        BEGIN,
        f"Generated from `bench/sizing-input.json` (make bench of {environment.get('date')}, "
        f"{environment.get('cpus')} cores, SeaweedFS on the same machine).",
        "",
        "| Service | containerConcurrency / utilization | design request | worker CPU-s/GiB | cores per request "
        "| RSS baseline + per request (MiB) | CPU request / limit | memory request / limit | autoscaling target "
        "| one pod at its CPU request sustains |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        sustains = f"{_n(s.sustained_gbps)} GB/s"
        if s.small_rps is not None:
            sustains += f", or {s.small_rps:.0f} small (4 KiB) checksums/s"
        lines.append(
            f"| {s.service} | {s.facts.container_concurrency} / {s.facts.utilization_pct:g} % | `{s.design}` "
            f"| {_n(s.cpu_s_per_gib)} | {_n(s.cores_per_request)} | {s.baseline_mib:.0f} + {s.rss_per_request_mib:.0f} "
            f"| {s.cpu_request_m}m / {s.cpu_limit} | {s.memory_request_mib}Mi / {s.memory_limit_mib}Mi "
            f"| {s.target} | {sustains} |")
    lines.append(END)
    return "\n".join(lines)


def render_docs(text: str, generated: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"{DOCS} has no sizing markers")
    head, rest = text.split(BEGIN, 1)
    return head + generated + rest.split(END, 1)[1]


def snapshot(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What of a summary.json the rule reads (plus the environment, to say where it came from)."""
    keep = ("cpu_unit", "service", "cpu_median", "runs", "unit", "median", "best", "extra", "error", "name")
    env = summary.get("environment", {})
    return {"environment": {k: env.get(k) for k in ("date", "cpus", "load_average_at_start", "load_average_at_end",
                                                    "object_size_bytes", "big_object_size_bytes",
                                                    "digest_implementations_function")},
            "figures": {k: {f: v for f, v in summary["figures"][k].items() if f in keep}
                        for k in NEEDED if k in summary.get("figures", {})}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sizing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=INPUT)
    parser.add_argument("--snapshot", type=Path, metavar="SUMMARY_JSON",
                        help="first copy the figures the rule reads from a bench summary.json into --input")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--apply", action="store_true", help="write the table and the manifests' values")
    mode.add_argument("--check", action="store_true", help="exit 1 when docs or manifests differ")
    args = parser.parse_args(argv)
    if args.snapshot:
        data = snapshot(json.loads(args.snapshot.read_text(encoding="utf-8")))
        args.input.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    data = json.loads(args.input.read_text(encoding="utf-8"))
    rows = sizings(data["figures"], cores=int(data.get("environment", {}).get("cpus") or 2))
    generated = table(rows, data.get("environment", {}))
    print(generated)
    stale = []
    docs = DOCS.read_text(encoding="utf-8")
    if render_docs(docs, generated) != docs:
        stale.append(str(DOCS))
    for s in rows:
        path = service_path(s.service)
        text = path.read_text(encoding="utf-8")
        new = apply_to_manifest(text, s.manifest_values())
        if new != text:
            stale.append(str(path))
            if args.apply:
                path.write_text(new, encoding="utf-8")
    if args.apply:
        DOCS.write_text(render_docs(docs, generated), encoding="utf-8")
    elif stale:
        print("differs from the rule: " + ", ".join(stale), file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["Sizing", "main", "size_service", "sizings", "statistics"]
